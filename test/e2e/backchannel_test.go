package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

const (
	backchannelRP = "backchannel-rp"
	// backchannelEvent is the events member of a logout token
	// (Back-Channel Logout 1.0 §2.4).
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
)

// TestBackchannelLogoutReachesRelyingParty is OpenID Connect Back-Channel
// Logout 1.0 end to end. A small relying party in the test keeps its own
// sessions, keyed by the ID token's sid: it signs people in with
// golang.org/x/oauth2 and go-oidc, and its back-channel endpoint verifies
// each logout token with go-oidc (signature against Gatehouse's JWKS, iss,
// aud = its client_id, exp) and checks typ logout+jwt, the events claim,
// sid and no nonce before it deletes that session. Its OAuthClient sets
// spec.backchannelLogout.uri. Alice signs in to it in Chromium; a logout
// token signed by another key and an unsigned one are refused and her
// session stays; then another client's RP-initiated logout, confirmed in
// the same browser, ends her Gatehouse session, and Gatehouse's logout
// token makes the relying party's session disappear.
func TestBackchannelLogoutReachesRelyingParty(t *testing.T) {
	t.Parallel()
	s := get(t)
	browser := chromium(t)
	rp := s.rp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := "http://" + l.Addr().String()
	s.applyYAML(t, fmt.Sprintf(`apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: %[1]s}
spec:
  serverRef: {name: %[2]s}
  displayName: Back-channel app
  grantTypes: [authorization_code]
  redirectURIs: [%[3]q]
  scopes: [openid, profile, email]
  secretName: %[1]s-oauth
  backchannelLogout: {uri: %[4]q, sessionRequired: true}
`, backchannelRP, rpServer, app+"/callback", app+"/backchannel-logout"))
	if err := waitCondition(ctx, s.c, &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: backchannelRP}}, oauthv1.ConditionReady); err != nil {
		t.Fatal(err)
	}
	sec := s.appSecret(t, backchannelRP+"-oauth")
	clientID := sec[oauthv1.SecretKeyClientID]

	// The relying party's codes and tokens join what the suite searches
	// its logs for (secrets_test.go).
	octx := oidc.ClientContext(ctx, &http.Client{Transport: recordingTransport{next: rp.transport}})
	provider, err := oidc.NewProvider(octx, rp.issuer)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Supported        bool `json:"backchannel_logout_supported"`
		SessionSupported bool `json:"backchannel_logout_session_supported"`
	}
	if err := provider.Claims(&meta); err != nil || !meta.Supported || !meta.SessionSupported {
		t.Errorf("discovery: backchannel_logout_supported %v, backchannel_logout_session_supported %v (%v)", meta.Supported, meta.SessionSupported, err)
	}
	app2 := &bclApp{ctx: octx, verifier: provider.Verifier(&oidc.Config{ClientID: clientID}),
		cfg: oauth2.Config{ClientID: clientID, ClientSecret: sec[oauthv1.SecretKeyClientSecret], RedirectURL: app + "/callback",
			Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email"}},
		flows: map[string]bclFlow{}, sessions: map[string]string{}}
	srv := &http.Server{Handler: app2.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	// Alice signs in to the relying party in Chromium.
	bctx := newChromium(t, ctx, browser, chromedp.Flag("ignore-certificate-errors-spki-list", rp.spki))
	fail := func(err error) {
		t.Helper()
		if err != nil {
			page, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
			t.Fatalf("browser: %v\npage:\n%s", err, page)
		}
	}
	fail(chromedp.Do(bctx, chromedp.Navigate(app+"/login"), chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), rpUserOps), chromedp.SendKeys(chromedp.CSS("#password"), rp.password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS(`button[name=decision][value=approve]`)),
		chromedp.Click(chromedp.CSS(`button[name=decision][value=approve]`)),
		chromedp.WaitVisible(chromedp.CSS("#signedin"))))
	sid, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#sid")))
	fail(err)
	sub, ok := app2.session(sid)
	if sid == "" || !ok {
		t.Fatalf("the relying party has no session for sid %q: %v", sid, app2.sids())
	}

	// Logout tokens Gatehouse did not sign are refused, and the session
	// stays: the verifier's checks can fail.
	claims := map[string]any{"iss": rp.issuer, "aud": clientID, "sub": sub, "sid": sid, "jti": oauth2.GenerateVerifier(),
		"iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Minute).Unix(), "events": map[string]any{backchannelEvent: map[string]any{}}}
	forged := map[string]string{"signed by another key": forgeLogoutToken(t, claims), "unsigned (alg none)": unsignedLogoutToken(t, claims)}
	for what, token := range forged {
		status, body := postLogoutToken(t, ctx, app+"/backchannel-logout", token)
		if status != http.StatusBadRequest {
			t.Errorf("a logout token %s: the relying party answered %d %s", what, status, body)
		} else {
			t.Logf("a logout token %s: refused: %s", what, strings.TrimSpace(body))
		}
	}
	if _, ok := app2.session(sid); !ok {
		t.Fatal("a forged logout token ended the relying party's session")
	}

	// Another client's RP-initiated logout (no id_token_hint: Gatehouse
	// asks the person to confirm) ends alice's Gatehouse session in this
	// browser; Gatehouse sends the relying party a logout token for it.
	began := time.Now()
	fail(chromedp.Do(bctx, chromedp.Navigate(rp.issuer+"/logout?"+url.Values{"client_id": {s.clientID(rpOtherAudience)}}.Encode()),
		chromedp.WaitVisible(chromedp.CSS(`button[name=decision][value=logout]`)),
		chromedp.Click(chromedp.CSS(`button[name=decision][value=logout]`))))
	eventually(t, 30*time.Second, "the relying party's session ending", func() error {
		if _, ok := app2.session(sid); ok {
			return fmt.Errorf("session %s still there; logout tokens refused: %v", sid, app2.refusals())
		}
		return nil
	})
	t.Logf("confirmed logout → logout token verified → session gone: %s", time.Since(began).Round(time.Millisecond))
	if r := app2.refusals(); len(r) != len(forged) {
		t.Errorf("the relying party refused %d logout tokens, want only the %d forged ones: %v", len(r), len(forged), r)
	}
	title, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#page-title")))
	fail(err)
	if title != "Signed out" {
		t.Errorf("after confirming, the page says %q", title)
	}
}

// bclApp is the relying party: the code flow with golang.org/x/oauth2 and
// go-oidc, sessions by sid, and a back-channel logout endpoint.
type bclApp struct {
	ctx      context.Context // its HTTP client trusts the https Gatehouse
	cfg      oauth2.Config
	verifier *oidc.IDTokenVerifier

	mu       sync.Mutex
	flows    map[string]bclFlow // by state
	sessions map[string]string  // sid → sub
	refused  []string
}

type bclFlow struct{ verifier, nonce string }

func (a *bclApp) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		state, f := oauth2.GenerateVerifier(), bclFlow{verifier: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier()}
		a.mu.Lock()
		a.flows[state] = f
		a.mu.Unlock()
		http.Redirect(w, r, a.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)), http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		recordValues(q)
		a.mu.Lock()
		f, ok := a.flows[q.Get("state")]
		delete(a.flows, q.Get("state"))
		a.mu.Unlock()
		if !ok || q.Get("code") == "" {
			http.Error(w, "unknown state or no code: "+q.Get("error"), http.StatusBadRequest)
			return
		}
		tok, err := a.cfg.Exchange(a.ctx, q.Get("code"), oauth2.VerifierOption(f.verifier))
		if err != nil {
			http.Error(w, "code exchange: "+err.Error(), http.StatusBadGateway)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := a.verifier.Verify(a.ctx, raw)
		if err != nil || idt.Nonce != f.nonce {
			http.Error(w, fmt.Sprintf("ID token: %v (nonce match %v)", err, err == nil && idt.Nonce == f.nonce), http.StatusBadGateway)
			return
		}
		var c struct {
			SID string `json:"sid"`
		}
		if err := idt.Claims(&c); err != nil || c.SID == "" {
			http.Error(w, "the ID token has no sid", http.StatusBadGateway)
			return
		}
		a.mu.Lock()
		a.sessions[c.SID] = idt.Subject
		a.mu.Unlock()
		fmt.Fprintf(w, "<!doctype html><title>app</title><p id=signedin>%s</p><p id=sid>%s</p>", html.EscapeString(idt.Subject), html.EscapeString(c.SID))
	})
	mux.HandleFunc("POST /backchannel-logout", func(w http.ResponseWriter, r *http.Request) {
		// §2.8: 200 when the session is ended (or was unknown), 400 when
		// the logout token is not valid.
		raw := r.PostFormValue("logout_token")
		recordValues(r.PostForm)
		sid, err := a.verifyLogoutToken(r.Context(), raw)
		if err != nil {
			a.mu.Lock()
			a.refused = append(a.refused, err.Error())
			a.mu.Unlock()
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		delete(a.sessions, sid)
		a.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
	})
	return mux
}

// verifyLogoutToken validates a logout token as Back-Channel Logout 1.0
// §2.6 says, and returns its sid.
func (a *bclApp) verifyLogoutToken(ctx context.Context, raw string) (string, error) {
	if raw == "" {
		return "", errors.New("no logout_token")
	}
	var h struct {
		Typ string `json:"typ"`
	}
	head, _, _ := strings.Cut(raw, ".")
	if b, err := base64.RawURLEncoding.DecodeString(head); err != nil || json.Unmarshal(b, &h) != nil {
		return "", errors.New("the logout token's header is not JSON")
	}
	// go-oidc checks the signature against the issuer's JWKS, iss, aud
	// and exp.
	tok, err := a.verifier.Verify(oidc.ClientContext(ctx, oauth2HTTPClient(a.ctx)), raw)
	if err != nil {
		return "", fmt.Errorf("go-oidc: %w", err)
	}
	if h.Typ != "logout+jwt" {
		return "", fmt.Errorf("typ %q, want logout+jwt", h.Typ)
	}
	var c struct {
		SID    string                     `json:"sid"`
		Events map[string]json.RawMessage `json:"events"`
		Nonce  *string                    `json:"nonce"`
		IAT    int64                      `json:"iat"`
		JTI    string                     `json:"jti"`
	}
	if err := tok.Claims(&c); err != nil {
		return "", err
	}
	switch ev, ok := c.Events[backchannelEvent]; {
	case !ok:
		return "", errors.New("no back-channel logout event")
	case strings.TrimSpace(string(ev)) != "{}":
		return "", fmt.Errorf("the event is %s, want {}", ev)
	case c.Nonce != nil:
		return "", errors.New("a logout token must not have a nonce")
	case c.IAT == 0 || c.JTI == "":
		return "", errors.New("no iat or jti")
	case c.SID == "":
		// The client registered sessionRequired: true.
		return "", errors.New("no sid")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if sub, ok := a.sessions[c.SID]; ok && tok.Subject != "" && sub != tok.Subject {
		return "", fmt.Errorf("sub %q is not the session's %q", tok.Subject, sub)
	}
	return c.SID, nil
}

func (a *bclApp) session(sid string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sub, ok := a.sessions[sid]
	return sub, ok
}

func (a *bclApp) sids() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for sid := range a.sessions {
		out = append(out, sid)
	}
	return out
}

func (a *bclApp) refusals() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.refused...)
}

// oauth2HTTPClient is the HTTP client ctx carries for golang.org/x/oauth2
// and go-oidc.
func oauth2HTTPClient(ctx context.Context) *http.Client {
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok {
		return c
	}
	return http.DefaultClient
}

// forgeLogoutToken signs claims as a logout token with a key Gatehouse
// never published.
func forgeLogoutToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", "forged"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unsignedLogoutToken is claims as a logout token with alg none.
func unsignedLogoutToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"logout+jwt"}`)) + "." + enc(payload) + "."
}

// postLogoutToken posts a logout token to a back-channel logout URI as
// the OpenID provider would.
func postLogoutToken(t *testing.T, ctx context.Context, uri, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(b)
}
