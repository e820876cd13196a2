package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// A second Gatehouse is the upstream OpenID Provider: Gatehouse A ("a")
// logs people in at Gatehouse B ("b") with its own client there.
const upstreamClientID = "gatehouse-a"

var upstreamSecret = mustSecret()

type federation struct {
	a, b *testServer
	// bFront serves B's issuer: B's handler, or 503 while bDown; it
	// counts B's refresh-token grants.
	bFront    *httptest.Server
	bDown     atomic.Bool
	bRefreshs atomic.Int64
	logs      *testenv.LogBuffer // A's log
	rp        *relyingParty      // an app of A's
	// aStore counts A's reads of stored upstream identities.
	aStore *identityReadCounter
}

// identityReadCounter counts GetIdentity calls: each is a storage round
// trip with PostgreSQL.
type identityReadCounter struct {
	storage.Store
	reads atomic.Int64
}

func (c *identityReadCounter) GetIdentity(ctx context.Context, subject string, now time.Time) (storage.Identity, error) {
	c.reads.Add(1)
	return c.Store.GetIdentity(ctx, subject, now)
}

// newFederation starts B, with alice (groups admins and team:orders) and a
// client for A, and A, whose only source is B. B answers on localhost and
// A on 127.0.0.1: browsers keep cookies by host, not port, and the two
// servers' cookies share names.
func newFederation(t *testing.T) *federation {
	t.Helper()
	f := &federation{logs: &testenv.LogBuffer{}}
	f.b = newTestServer(t)
	withOIDC(t, f.b)
	f.bFront = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.bDown.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == endpoints.TokenPath && r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if q, err := url.ParseQuery(string(body)); err == nil && q.Get("grant_type") == "refresh_token" {
				f.bRefreshs.Add(1)
			}
		}
		f.b.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(f.bFront.Close)
	bURL := strings.Replace(f.bFront.URL, "127.0.0.1", "localhost", 1)
	f.a = newTestServerWith(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
		f.aStore = &identityReadCounter{Store: o.Store}
		o.Store = f.aStore
	})
	withOIDC(t, f.a)
	f.b.update(func(s *config.Snapshot) {
		s.Issuer, s.Endpoints = bURL, endpoints.For(bURL)
		s.Clients = s.Clients.With(&config.Client{
			ID: upstreamClientID, DisplayName: "Gatehouse A", AuthMethod: oauthv1.AuthClientSecretBasic,
			GrantTypes:   map[oauthv1.GrantType]bool{oauthv1.GrantAuthorizationCode: true, oauthv1.GrantRefreshToken: true},
			RedirectURIs: []string{f.a.URL + UpstreamCallbackPath}, RequirePKCE: true, SecretHashes: secretHash(upstreamSecret),
			AllowedScopes: []string{"openid", "profile", "email", "groups", "offline_access"},
		})
	})
	f.a.update(func(s *config.Snapshot) { s.Identity = identity.NewSet(f.upstream(bURL, upstreamSecret)) })
	f.rp = newRelyingParty(t, f.a, "openid", "profile", "email", "groups", "offline_access")
	return f
}

func (f *federation) upstream(issuer, secret string) *identity.OIDCSource {
	return identity.NewOIDC(identity.OIDCConfig{
		Name: "corp", DisplayName: "Corp SSO", Issuer: issuer, ClientID: upstreamClientID, ClientSecret: secret,
		Scopes: []string{"profile", "email", "groups"},
	})
}

// run follows a browser through A and B: B's login form gets alice's
// password, every consent page is approved. It returns the last response
// that left both servers (or redirects to A's upstream callback, when
// toCallback), or the page it stopped at.
func (f *federation) run(t *testing.T, b *browser, start string, toCallback bool) (*http.Response, string) {
	t.Helper()
	resp, page := b.get(start)
	for range 16 {
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			return resp, page
		}
		u := location(t, resp)
		if u.Port() != portOf(f.a.URL) && u.Port() != portOf(f.bFront.URL) || toCallback && u.Path == UpstreamCallbackPath {
			return resp, page
		}
		resp, page = b.get(u.String())
		if resp.StatusCode != http.StatusOK {
			continue
		}
		form := hiddenFields(page)
		switch u.Path {
		case endpoints.LoginPath:
			form.Set("username", testUser)
			form.Set("password", testPassword)
		case endpoints.ConsentPath:
			form.Set("decision", "approve")
		default:
			return resp, page
		}
		u.RawQuery = ""
		resp, page = b.post(u.String(), form)
	}
	t.Fatal("too many redirects")
	return nil, ""
}

func portOf(raw string) string { u, _ := url.Parse(raw); return u.Port() }

func newFederatedBrowser(t *testing.T, f *federation) *browser { return newBrowser(t, f.a) }

// The whole federated login: app → A → (one upstream, no form: straight
// on) → B's login and consent → back to A's consent → app. The groups and
// email B holds for alice reach A's ID token, access token claims at
// userinfo, and a refresh made while B is down.
func TestUpstreamOIDCLogin(t *testing.T) {
	f := newFederation(t)
	b := newFederatedBrowser(t, f)
	v := oauth2.GenerateVerifier()
	resp, page := f.run(t, b, f.rp.cfg.AuthCodeURL("app-state", oauth2.S256ChallengeOption(v)), false)
	back := location(t, resp)
	if !strings.HasPrefix(back.String(), oidcRedirect) || back.Query().Get("code") == "" {
		t.Fatalf("did not return to the app with a code: %d %s %s", resp.StatusCode, back, page)
	}
	readsBefore := f.aStore.reads.Load()
	tok, err := f.rp.cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	// The access token's groups and the ID token's claims come from one
	// read of the stored identity.
	if n := f.aStore.reads.Load() - readsBefore; n != 1 {
		t.Errorf("the code exchange read the stored identity %d times, want 1", n)
	}
	_, claims := f.rp.verify(t, tok)
	sub, _ := claims["sub"].(string)
	if prov, ok := identity.ProviderOf(sub); !ok || prov != "corp" {
		t.Fatalf("sub %q is not namespaced by the provider", sub)
	}
	if claims["preferred_username"] != testUser || claims["email"] != "alice@example.com" || claims["email_verified"] != true {
		t.Fatalf("ID token claims: %v", claims)
	}
	if g := toStrings(claims["groups"]); !slices.Equal(g, []string{"admins", "team:orders"}) {
		t.Fatalf("groups from B = %v, want [admins team:orders]", g)
	}
	at, _ := f.a.parseAccessToken(t, tok.AccessToken)
	if at["sub"] != sub || !slices.Equal(toStrings(at["groups"]), []string{"admins", "team:orders"}) {
		t.Fatalf("access token sub %v (ID token sub %v), groups %v", at["sub"], sub, at["groups"])
	}
	// Userinfo and introspection answer from what the login stored.
	resp = userinfoRequest(t, f.a, http.MethodGet, "Bearer "+tok.AccessToken, "")
	var ui map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&ui); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if ui["sub"] != sub || ui["email"] != "alice@example.com" || !slices.Equal(toStrings(ui["groups"]), []string{"admins", "team:orders"}) {
		t.Fatalf("userinfo for the upstream person: %v", ui)
	}
	if info := f.a.introspect(t, tok.AccessToken); info["active"] != true || info["sub"] != sub {
		t.Fatalf("introspection: %v", info)
	}

	// No request to B on the token path (no re-checks configured here):
	// refresh with B gone.
	f.bDown.Store(true)
	refreshed, err := f.rp.cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh while the upstream is down: %v", err)
	}
	_, claims = f.rp.verify(t, refreshed)
	if claims["sub"] != sub || !slices.Equal(toStrings(claims["groups"]), []string{"admins", "team:orders"}) {
		t.Fatalf("refreshed ID token: %v", claims)
	}

	// A provider removed from the spec ends its people's grants.
	f.a.update(func(s *config.Snapshot) { s.Identity = identity.NewSet() })
	if _, err := f.rp.cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh after the provider was removed: %v, want invalid_grant", err)
	}

	for _, secret := range []string{upstreamSecret, testPassword, tok.AccessToken, tok.RefreshToken, back.Query().Get("code")} {
		if strings.Contains(f.logs.String(), secret) {
			t.Fatalf("A's log carries a secret, password, code or token:\n%s", f.logs)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// startUpstream goes from the app to A's redirect to B, and returns B's
// authorization URL.
func (f *federation) startUpstream(t *testing.T, b *browser) *url.URL {
	t.Helper()
	resp, _ := b.get(f.rp.cfg.AuthCodeURL("app-state", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	for range 3 {
		u := location(t, resp)
		if u.Port() == portOf(f.bFront.URL) {
			return u
		}
		resp, _ = b.get(u.String())
	}
	t.Fatal("A did not send the browser to B")
	return nil
}

// Callbacks A did not ask for in this browser, or asks to see twice, are
// refused with a page, and nobody is logged in.
func TestUpstreamCallbackRefusals(t *testing.T) {
	f := newFederation(t)
	victim := newFederatedBrowser(t, f)
	victim.get(f.startUpstream(t, victim).String())

	// The attacker's own login at B yields a code for A's callback.
	attacker := newFederatedBrowser(t, f)
	resp, _ := f.run(t, attacker, f.startUpstream(t, attacker).String(), true)
	cb := location(t, resp)
	if !strings.HasPrefix(cb.String(), f.a.URL+UpstreamCallbackPath) {
		t.Fatalf("B did not send the attacker back to A's callback: %s", cb)
	}
	// Login CSRF: the victim's browser is made to open it.
	resp, page := victim.get(cb.String())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "could not be verified") {
		t.Fatalf("a callback for another browser's login: %d %s", resp.StatusCode, page)
	}
	// The attacker finishes, then replays the callback: without the
	// cookie (cleared by the first), and with it restored.
	flow := upstreamFlowCookie(t, attacker)
	resp, _ = attacker.get(cb.String())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the genuine callback: %d", resp.StatusCode)
	}
	resp, page = attacker.get(cb.String())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "no sign-in waiting") {
		t.Fatalf("a replayed callback: %d %s", resp.StatusCode, page)
	}
	setUpstreamFlowCookie(t, attacker, flow)
	resp, page = attacker.get(cb.String())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "no sign-in waiting") {
		t.Fatalf("a callback replayed with its cookie restored: %d %s", resp.StatusCode, page)
	}
	if !strings.Contains(f.logs.String(), "a replayed callback") {
		t.Errorf("the restored-cookie replay is not logged as one:\n%s", f.logs)
	}
	// A callback with no cookie at all.
	resp, _ = newFederatedBrowser(t, f).get(f.a.URL + UpstreamCallbackPath + "?code=x&state=y")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a callback out of nowhere: %d", resp.StatusCode)
	}
	// Each refusal is a security event an operator can alert on.
	if n := strings.Count(f.logs.String(), "event="+EventUpstreamCallbackRejected); n != 4 {
		t.Fatalf("%d %s events for 4 refused callbacks:\n%s", n, EventUpstreamCallbackRejected, f.logs)
	}
}

// upstreamFlowCookie is the browser's gatehouse-upstream cookie at A.
func upstreamFlowCookie(t *testing.T, b *browser) string {
	t.Helper()
	u, _ := url.Parse(b.ts.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == upstreamCookie {
			return c.Value
		}
	}
	t.Fatal("no upstream sign-in cookie")
	return ""
}

func setUpstreamFlowCookie(t *testing.T, b *browser, v string) {
	t.Helper()
	u, _ := url.Parse(b.ts.URL)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: upstreamCookie, Value: v, Path: "/"}})
}

// The upstream sign-in cookie is sealed: it shows neither the state nor
// the PKCE verifier, and one made up (the plain JSON it once was) or
// changed in one character is refused, with a security event, before the
// provider's answer is looked at.
func TestUpstreamFlowCookieIsSealed(t *testing.T) {
	f := newFederation(t)
	b := newFederatedBrowser(t, f)
	atB := f.startUpstream(t, b)
	state := atB.Query().Get("state")
	sealed := upstreamFlowCookie(t, b)
	if state == "" || strings.Contains(sealed, state) {
		t.Fatalf("the cookie %q shows the state %q", sealed, state)
	}
	_, body, _ := strings.Cut(sealed, ".")
	if raw, err := base64.RawURLEncoding.DecodeString(body); err != nil || strings.Contains(string(raw), state) || json.Valid(raw) {
		t.Fatalf("the cookie's body is not ciphertext: %v", err)
	}
	resp, _ := f.run(t, b, atB.String(), true)
	cb := location(t, resp)

	forged, _ := json.Marshal(pendingUpstream{Provider: "corp", Pending: identity.Pending{State: state, Nonce: "n", Verifier: "v"},
		Expires: time.Now().Add(time.Hour).Unix()})
	changed := []byte(sealed)
	changed[len(changed)-5] ^= 1
	for name, v := range map[string]string{
		"plain JSON":          base64.RawURLEncoding.EncodeToString(forged),
		"a changed character": string(changed),
	} {
		before := strings.Count(f.logs.String(), "event="+EventUpstreamCallbackRejected)
		setUpstreamFlowCookie(t, b, v)
		resp, page := b.get(cb.String())
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "no sign-in waiting") {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, page)
		}
		if strings.Count(f.logs.String(), "event="+EventUpstreamCallbackRejected) != before+1 {
			t.Errorf("%s: no security event", name)
		}
	}
	// The genuine cookie still finishes the sign-in.
	setUpstreamFlowCookie(t, b, sealed)
	if resp, page := b.get(cb.String()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the genuine cookie: %d %s", resp.StatusCode, page)
	}
}

// A provider the operator found unreachable is not sent anyone: its
// button, and the login page that would go straight to it, lead to a 503
// page; once the condition clears, sign-in goes to the provider again.
func TestUnreachableProviderIsNotSentAnyone(t *testing.T) {
	f := newFederation(t)
	f.a.update(func(s *config.Snapshot) {
		s.Unreachable = map[string]string{"corp": "discovery at https://login.example.com: dial tcp: connection refused"}
	})
	b := newFederatedBrowser(t, f)
	resp, page := f.run(t, b, f.rp.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), false)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "Corp SSO is not available") || resp.Header.Get("Location") != "" {
		t.Fatalf("sign-in with an unreachable provider: %d %s", resp.StatusCode, page)
	}
	if f.bRefreshs.Load() != 0 || strings.Contains(page, f.bFront.URL) {
		t.Fatal("the page points at the provider")
	}
	f.a.update(func(s *config.Snapshot) { s.Unreachable = nil })
	if u := f.startUpstream(t, b); u.Port() != portOf(f.bFront.URL) {
		t.Fatalf("after the condition cleared: %s", u)
	}
}

// An upstream that is down, or that refuses A's credentials, gets a page
// that says so: never a 500, never a stack.
func TestUpstreamFailurePages(t *testing.T) {
	f := newFederation(t)
	f.a.update(func(s *config.Snapshot) {
		s.Identity = identity.NewSet(f.upstream("http://127.0.0.1:1", upstreamSecret))
	})
	resp, page := f.run(t, newFederatedBrowser(t, f), f.rp.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), false)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "Corp SSO is not available") || strings.Contains(page, "goroutine") {
		t.Fatalf("upstream down: %d %s", resp.StatusCode, page)
	}

	bURL := f.b.snap().Issuer
	f.a.update(func(s *config.Snapshot) { s.Identity = identity.NewSet(f.upstream(bURL, "not-"+upstreamSecret)) })
	resp, page = f.run(t, newFederatedBrowser(t, f), f.rp.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), false)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "could not be verified") {
		t.Fatalf("credentials refused by B: %d %s", resp.StatusCode, page)
	}
	if strings.Contains(f.logs.String(), upstreamSecret) {
		t.Fatal("A's log carries the upstream client secret")
	}
}
