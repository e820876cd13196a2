package server

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

const (
	oidcClientID  = "apps.grafana"
	oidcRedirect  = "http://127.0.0.1:9998/login/generic_oauth"
	oidcLoggedOut = "http://127.0.0.1:9998/logged-out"
)

var oidcSecret = mustSecret()

// withOIDC adds an RS256 key next to the ES256 access-token key (as the
// operator's key set has), a confidential client allowed the built-in
// scopes, and gives alice a name, a verified email and groups.
func withOIDC(t testing.TB, ts *testServer) {
	t.Helper()
	dir, err := users.Parse(append(usersYAML(), []byte("  name: Alice Example\n  email: alice@example.com\n  emailVerified: true\n  groups: [admins, \"team:orders\"]\n")...))
	if err != nil {
		t.Fatal(err)
	}
	ts.update(func(s *config.Snapshot) {
		s.Users = dir
		s.Keys = &keyset.Set{
			Keys:                 append(slices.Clone(s.Keys.Keys), activeKey(t, keyset.RS256, ts.clock.Now().Add(-time.Hour))),
			AccessTokenAlgorithm: keyset.ES256,
		}
		s.Clients = s.Clients.With(&config.Client{
			ID: oidcClientID, DisplayName: "Grafana", AuthMethod: oauthv1.AuthClientSecretBasic,
			GrantTypes:   map[oauthv1.GrantType]bool{oauthv1.GrantAuthorizationCode: true, oauthv1.GrantRefreshToken: true},
			RedirectURIs: []string{oidcRedirect}, RequirePKCE: true, SecretHashes: secretHash(oidcSecret),
			PostLogoutRedirectURIs: []string{oidcLoggedOut},
			AllowedScopes:          []string{"openid", "profile", "email", "groups", "offline_access", "orders:read"},
		})
	})
}

// relyingParty is a client set up the way OpenID Connect libraries do it:
// discovery, then an oauth2.Config and an ID-token verifier from it.
type relyingParty struct {
	provider *oidc.Provider
	cfg      *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newRelyingParty(t *testing.T, ts *testServer, scopes ...string) *relyingParty {
	t.Helper()
	p, err := oidc.NewProvider(ctx(t), ts.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{
		provider: p,
		cfg:      &oauth2.Config{ClientID: oidcClientID, ClientSecret: oidcSecret, RedirectURL: oidcRedirect, Endpoint: p.Endpoint(), Scopes: scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: oidcClientID, Now: ts.clock.Now}),
	}
}

// login runs the code flow in b and exchanges the code.
func (rp *relyingParty) login(t *testing.T, b *browser, nonce string, remember bool) *oauth2.Token {
	t.Helper()
	v := oauth2.GenerateVerifier()
	back := b.authorize(rp.cfg.AuthCodeURL("st", oidc.Nonce(nonce), oauth2.S256ChallengeOption(v)), "approve", remember)
	if back.Query().Get("code") == "" {
		t.Fatalf("no code: %s", back)
	}
	tok, err := rp.cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// idTokenClaimsOf verifies the ID token of a token response with go-oidc:
// signature against the discovered JWKS, iss, aud and expiry.
func (rp *relyingParty) verify(t *testing.T, tok *oauth2.Token) (*oidc.IDToken, map[string]any) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("the token response has no id_token")
	}
	idt, err := rp.verifier.Verify(ctx(t), raw)
	if err != nil {
		t.Fatalf("go-oidc rejects the ID token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return idt, claims
}

func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestOpenIDConnectCodeFlow drives the code flow with go-oidc as the
// relying party: the ID token verifies (RS256 signature via discovery,
// iss, aud, expiry), echoes the nonce exactly, binds the access token by
// at_hash and carries the person's claims; a refresh returns a new ID
// token for the same login without the nonce (Core §12.2).
func TestOpenIDConnectCodeFlow(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid", "profile", "email", "groups", "offline_access", "orders:read")
	const nonce = "n-0S6_WzA2Mj +/=ü" // echoed byte for byte
	loginAt := ts.clock.Now()
	tok := rp.login(t, newBrowser(t, ts), nonce, false)

	idt, claims := rp.verify(t, tok)
	if idt.Nonce != nonce {
		t.Errorf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	if h := jwtHeader(t, tok.Extra("id_token").(string)); h["alg"] != "RS256" || h["kid"] == nil {
		t.Errorf("ID token header %v, want RS256 with a kid", h)
	}
	if _, h := ts.parseAccessToken(t, tok.AccessToken); h["alg"] != "ES256" {
		t.Errorf("the access token is %v, want ES256 still", h["alg"])
	}
	if idt.Subject != testSubject || !slices.Equal(idt.Audience, []string{oidcClientID}) || claims["azp"] != oidcClientID {
		t.Errorf("sub %s, aud %v, azp %v", idt.Subject, idt.Audience, claims["azp"])
	}
	if claims["auth_time"] != float64(loginAt.Unix()) || claims["sid"] == "" || claims["sid"] == nil {
		t.Errorf("auth_time %v (want %d), sid %v", claims["auth_time"], loginAt.Unix(), claims["sid"])
	}
	want := map[string]any{
		"preferred_username": testUser, "name": "Alice Example", "email": "alice@example.com", "email_verified": true,
		"groups": []any{"admins", "team:orders"}, "amr": []any{"pwd"}, "iss": ts.URL,
	}
	for k, v := range want {
		if b1, _ := json.Marshal(claims[k]); string(b1) != mustJSON(v) {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if tok.RefreshToken == "" {
		t.Fatal("offline_access was granted but no refresh token was issued")
	}

	// Refresh, later: a new ID token for the same login.
	ts.clock.Advance(2 * time.Minute)
	tok.Expiry = time.Now().Add(-time.Minute) // x/oauth2 looks at the real clock
	next, err := rp.cfg.TokenSource(ctx(t), tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	idt2, claims2 := rp.verify(t, next)
	if idt2.Nonce != "" || idt2.Subject != idt.Subject || claims2["sid"] != claims["sid"] || claims2["auth_time"] != claims["auth_time"] ||
		!idt2.IssuedAt.After(idt.IssuedAt) || claims2["email"] != "alice@example.com" {
		t.Errorf("refreshed ID token claims %v; want the first login's sub, sid and auth_time, a new iat, no nonce", claims2)
	}
	if err := idt2.VerifyAccessToken(next.AccessToken); err != nil {
		t.Errorf("refreshed at_hash: %v", err)
	}

	// go-oidc refuses the token for another audience and once expired.
	other := rp.provider.Verifier(&oidc.Config{ClientID: webClientID, Now: ts.clock.Now})
	if _, err := other.Verify(ctx(t), next.Extra("id_token").(string)); err == nil {
		t.Error("another client accepted the ID token")
	}
	ts.clock.Advance(config.DefaultAccessTokenTTL + time.Minute)
	if _, err := rp.verifier.Verify(ctx(t), next.Extra("id_token").(string)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired ID token verified: %v", err)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestOpenIDScopesReleaseOnlyTheirClaims: openid alone says who, nothing
// more; without offline_access an OpenID Connect request gets no refresh
// token, while a plain OAuth request of the same client still does.
func TestOpenIDScopesReleaseOnlyTheirClaims(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	b := newBrowser(t, ts)
	tok := newRelyingParty(t, ts, "openid").login(t, b, "n1", true)
	_, claims := newRelyingParty(t, ts).verify(t, tok)
	for _, c := range []string{"preferred_username", "name", "email", "email_verified", "groups"} {
		if _, ok := claims[c]; ok {
			t.Errorf("openid alone released %s", c)
		}
	}
	if tok.RefreshToken != "" {
		t.Error("an OpenID Connect request without offline_access got a refresh token")
	}

	plain := newRelyingParty(t, ts, "orders:read").login(t, b, "", true)
	if plain.RefreshToken == "" || plain.Extra("id_token") != nil {
		t.Errorf("a plain OAuth request: refresh token %q, id_token %v; want a refresh token and no ID token", plain.RefreshToken, plain.Extra("id_token"))
	}
}

// TestIDTokenFallsBackWhileRS256IsPrepublished: a key set upgraded from
// before ID tokens has its RS256 key published but not yet signing; ID
// tokens are then signed with the access-token key, whose algorithm
// discovery lists, and go-oidc verifies them.
func TestIDTokenFallsBackWhileRS256IsPrepublished(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	ts.update(func(s *config.Snapshot) {
		keys := slices.Clone(s.Keys.Keys)
		keys[1].State, keys[1].ActivatesAt = keyset.StateNext, ts.clock.Now().Add(time.Hour)
		s.Keys = &keyset.Set{Keys: keys, AccessTokenAlgorithm: keyset.ES256}
	})
	rp := newRelyingParty(t, ts, "openid")
	tok := rp.login(t, newBrowser(t, ts), "n", false)
	idt, _ := rp.verify(t, tok)
	if h := jwtHeader(t, tok.Extra("id_token").(string)); h["alg"] != "ES256" {
		t.Errorf("ID token alg %v, want the access-token key's ES256", h["alg"])
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
}

// TestIDTokenAlgorithmOfTheClient: a client that registered ES256 gets
// ES256 ID tokens, which go-oidc verifies when told to expect ES256; with
// no ES256 key signing yet, it gets temporarily_unavailable rather than a
// token its relying party would refuse.
func TestIDTokenAlgorithmOfTheClient(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(oidcClientID)
		c.IDTokenAlg = keyset.ES256
		s.Clients = s.Clients.With(&c)
	})
	rp := newRelyingParty(t, ts, "openid")
	rp.verifier = rp.provider.Verifier(&oidc.Config{ClientID: oidcClientID, Now: ts.clock.Now, SupportedSigningAlgs: []string{oidc.ES256}})
	tok := rp.login(t, newBrowser(t, ts), "n", false)
	idt, _ := rp.verify(t, tok)
	if h := jwtHeader(t, tok.Extra("id_token").(string)); h["alg"] != "ES256" {
		t.Errorf("ID token alg %v, want ES256", h["alg"])
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}

	// An EdDSA server whose ES256 key is not signing yet.
	ts.update(func(s *config.Snapshot) {
		keys := []keyset.Key{activeKey(t, keyset.EdDSA, ts.clock.Now().Add(-time.Hour)), activeKey(t, keyset.RS256, ts.clock.Now().Add(-time.Hour))}
		next := activeKey(t, keyset.ES256, ts.clock.Now().Add(time.Hour))
		next.State = keyset.StateNext
		s.Keys = &keyset.Set{Keys: append(keys, next), AccessTokenAlgorithm: keyset.EdDSA}
	})
	v := oauth2.GenerateVerifier()
	back := newBrowser(t, ts).authorize(rp.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), "approve", false)
	_, err := rp.cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(v))
	if re := retrieveError(t, err); re.ErrorCode != ErrTemporarilyUnavailable {
		t.Errorf("exchange without an ES256 key: %v", re)
	}
}

// authorizeRedirect starts an authorization in b and returns where the
// server sends the browser.
func authorizeRedirect(t *testing.T, b *browser, rp *relyingParty, extra ...oauth2.AuthCodeOption) *url.URL {
	t.Helper()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(oauth2.GenerateVerifier())}, extra...)
	resp, _ := b.get(rp.cfg.AuthCodeURL("st", opts...))
	return location(t, resp)
}

// TestPromptMaxAgeAndLoginHint: Core §3.1.2.1's prompt, max_age and
// login_hint. prompt=none answers through the redirect and stores
// nothing when it fails.
func TestPromptMaxAgeAndLoginHint(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid", "email")
	b := newBrowser(t, ts)
	param := oauth2.SetAuthURLParam
	stored := func() int {
		t.Helper()
		n, err := ts.store.DeleteExpired(ctx(t), ts.clock.Now().Add(365*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	wantError := func(u *url.URL, code string) {
		t.Helper()
		q := u.Query()
		if !strings.HasPrefix(u.String(), oidcRedirect) || q.Get("error") != code || q.Get("state") != "st" || q.Get("iss") != ts.URL || q.Get("error_description") == "" {
			t.Fatalf("redirect %s, want error %s with state and iss", u, code)
		}
	}

	// Not signed in: login_required, and nothing stored.
	wantError(authorizeRedirect(t, b, rp, param("prompt", "none")), ErrLoginRequired)
	if n := stored(); n != 0 {
		t.Errorf("a failed prompt=none stored %d objects", n)
	}
	// login_hint pre-fills the username.
	u := authorizeRedirect(t, b, rp, param("login_hint", "alice@example.com"))
	if _, page := b.get(u.String()); !strings.Contains(page, `value="alice@example.com"`) {
		t.Error("login_hint did not pre-fill the username")
	}
	// Bad values: invalid_request through the redirect.
	for _, bad := range [][2]string{{"prompt", "select_account"}, {"prompt", "none login"}, {"prompt", "bogus"}, {"max_age", "-1"}, {"max_age", "1h"}, {"nonce", strings.Repeat("n", 513)}} {
		wantError(authorizeRedirect(t, b, rp, param(bad[0], bad[1])), ErrInvalidRequest)
	}

	// Signed in, consent not remembered: consent_required.
	rp.login(t, b, "n", false)
	wantError(authorizeRedirect(t, b, rp, param("prompt", "none")), ErrConsentRequired)
	// Consent remembered: a code without any page.
	rp.login(t, b, "n", true)
	if u := authorizeRedirect(t, b, rp, param("prompt", "none")); u.Query().Get("code") == "" {
		t.Fatalf("prompt=none with a session and consent went to %s", u)
	}
	// prompt=consent shows the consent page although consent is remembered.
	if u := authorizeRedirect(t, b, rp, param("prompt", "consent")); u.Path != endpoints.ConsentPath {
		t.Errorf("prompt=consent went to %s", u)
	}
	// prompt=login asks for the password again.
	if u := authorizeRedirect(t, b, rp, param("prompt", "login")); u.Path != endpoints.LoginPath {
		t.Errorf("prompt=login went to %s", u)
	}
	// max_age: a login 10 minutes old is fresh enough for 3600, not for 60;
	// with prompt=none that is login_required.
	ts.clock.Advance(10 * time.Minute)
	if u := authorizeRedirect(t, b, rp, param("max_age", "3600")); u.Query().Get("code") == "" {
		t.Errorf("max_age=3600 went to %s", u)
	}
	if u := authorizeRedirect(t, b, rp, param("max_age", "60")); u.Path != endpoints.LoginPath {
		t.Errorf("max_age=60 went to %s", u)
	}
	wantError(authorizeRedirect(t, b, rp, param("prompt", "none"), param("max_age", "60")), ErrLoginRequired)

	// A plain OAuth request ignores the OpenID Connect parameters.
	plain := newRelyingParty(t, ts, "orders:read")
	if u := authorizeRedirect(t, b, plain, param("prompt", "bogus"), param("max_age", "x")); u.Query().Get("error") != "" {
		t.Errorf("a plain OAuth request was refused for OpenID Connect parameters: %s", u)
	}
}

// TestAtHash pins Core §3.1.3.6 with the example of Core's appendix A.3:
// the left half of SHA-256 of the access token.
func TestAtHash(t *testing.T) {
	got, err := leftHalfHash(keyset.RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y")
	if err != nil || got != "77QmUPtjPfzWtF2AnpK9RQ" {
		t.Errorf("at_hash = %q, %v; want 77QmUPtjPfzWtF2AnpK9RQ", got, err)
	}
	if h, _ := leftHalfHash(keyset.EdDSA, "token"); len(h) != 43 {
		t.Errorf("EdDSA at_hash %q: want the left half of SHA-512 (32 bytes)", h)
	}
	if _, err := leftHalfHash("HS256", "token"); err == nil {
		t.Error("at_hash for HS256")
	}
}

// TestConsentPageDescribesBuiltinScopes: the person sees what each
// built-in scope releases before approving.
func TestConsentPageDescribesBuiltinScopes(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid", "profile", "email", "groups", "offline_access")
	b := newBrowser(t, ts)
	u := authorizeRedirect(t, b, rp, oidc.Nonce("n"))
	_, page := b.get(u.String())
	f := hiddenFields(page)
	f.Set("username", testUser)
	f.Set("password", testPassword)
	resp, _ := b.post(ts.URL+endpoints.LoginPath, f)
	if u = location(t, resp); u.Path != endpoints.ConsentPath {
		t.Fatalf("after login: %s, want the consent page", u)
	}
	_, page = b.get(u.String())
	for _, sc := range config.BuiltinScopes() {
		if !strings.Contains(page, sc.Description) {
			t.Errorf("the consent page does not describe %s (%q)", sc.Name, sc.Description)
		}
	}
}

// TestIDTokenHint: Core §3.1.2.1's id_token_hint. The hint of the person
// signed in lets prompt=none answer; a hint about someone else makes the
// session not count (login_required with prompt=none); a hint this server
// did not sign, or an access token, is invalid_request. An expired hint
// is still a hint.
func TestIDTokenHint(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid")
	b := newBrowser(t, ts)
	tok := rp.login(t, b, "n", true)
	hint := tok.Extra("id_token").(string)
	param := oauth2.SetAuthURLParam

	ts.clock.Advance(config.DefaultAccessTokenTTL + time.Hour) // the hint has expired
	if u := authorizeRedirect(t, b, rp, param("prompt", "none"), param("id_token_hint", hint)); u.Query().Get("code") == "" {
		t.Fatalf("prompt=none with the signed-in person's hint went to %s", u)
	}

	snap := ts.snap()
	bob, e := ts.srv.signIDToken(snap, idTokenGrant{tokenGrant: tokenGrant{Client: snap.Clients.Get(oidcClientID), Subject: "bob"}}, "at", ts.clock.Now())
	if e != nil {
		t.Fatal(e)
	}
	if u := authorizeRedirect(t, b, rp, param("prompt", "none"), param("id_token_hint", bob)); u.Query().Get("error") != ErrLoginRequired {
		t.Errorf("a hint about someone else with prompt=none went to %s, want login_required", u)
	}
	if u := authorizeRedirect(t, b, rp, param("id_token_hint", bob)); u.Path != endpoints.LoginPath {
		t.Errorf("a hint about someone else went to %s, want the login page", u)
	}

	// Signed by a key the server does not have.
	foreign := &config.Snapshot{Issuer: snap.Issuer, AccessTokenTTL: time.Hour,
		Keys: &keyset.Set{Keys: []keyset.Key{activeKey(t, keyset.RS256, ts.clock.Now().Add(-time.Hour))}}}
	forged, e := ts.srv.signIDToken(foreign, idTokenGrant{tokenGrant: tokenGrant{Client: snap.Clients.Get(oidcClientID), Subject: testSubject}}, "at", ts.clock.Now())
	if e != nil {
		t.Fatal(e)
	}
	for name, bad := range map[string]string{"forged": forged, "garbage": "a.b.c", "an access token": tok.AccessToken} {
		if u := authorizeRedirect(t, b, rp, param("id_token_hint", bad)); u.Query().Get("error") != ErrInvalidRequest {
			t.Errorf("%s hint went to %s, want invalid_request", name, u)
		}
	}
}
