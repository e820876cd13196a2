package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

func (ts *testServer) ccConfig(id, secret string, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: ts.URL + endpoints.TokenPath,
		Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
}

func (ts *testServer) webConfig(scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: webClientID, ClientSecret: webSecret, RedirectURL: webRedirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + endpoints.AuthorizePath, TokenURL: ts.URL + endpoints.TokenPath, AuthStyle: oauth2.AuthStyleInHeader}}
}

func (ts *testServer) spaConfig(scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: spaClientID, RedirectURL: spaRedirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + endpoints.AuthorizePath, TokenURL: ts.URL + endpoints.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
}

// retrieveError unwraps x/oauth2's error for a failed token request.
func retrieveError(t testing.TB, err error) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want an OAuth error response", err)
	}
	return re
}

func TestClientCredentialsIssuesRFC9068Token(t *testing.T) {
	ts := newTestServer(t)
	tok, err := ts.ccConfig(ccClientID, ccSecret, "orders:read").Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.RefreshToken != "" {
		t.Errorf("token type %q, refresh %q: want Bearer and no refresh token (RFC 6749 §4.4.3)", tok.TokenType, tok.RefreshToken)
	}
	if tok.Extra("scope") != "orders:read" {
		t.Errorf("scope = %v", tok.Extra("scope"))
	}
	claims, header := ts.parseAccessToken(t, tok.AccessToken)
	if header["typ"] != "at+jwt" || header["kid"] != ts.snap().Keys.Keys[0].ID || header["alg"] != "ES256" {
		t.Errorf("header = %v", header)
	}
	aud, _ := claims.GetAudience()
	if claims["sub"] != "client:"+ccClientID || claims["client_id"] != ccClientID || claims["scope"] != "orders:read" ||
		!slices.Equal(aud, []string{"https://billing.internal", "https://orders.example.test"}) {
		t.Errorf("claims = %v", claims)
	}
	for _, c := range []string{"iss", "sub", "aud", "client_id", "scope", "jti", "iat", "exp"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("claim %s missing", c)
		}
	}
	exp, _ := claims.GetExpirationTime()
	if d := exp.Sub(ts.clock.Now()); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("token lives %v, want the 10m default", d)
	}
}

func TestClientCredentialsDefaultsToAllowedScopes(t *testing.T) {
	ts := newTestServer(t)
	tok, err := ts.ccConfig(ccClientID, ccSecret).Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("scope") != "orders:read orders:write" {
		t.Errorf("scope = %v", tok.Extra("scope"))
	}
}

func TestClientSecretBasicIsFormURLDecoded(t *testing.T) {
	ts := newTestServer(t)
	// x/oauth2 escapes id and secret before base64, as RFC 6749 §2.3.1 says.
	if _, err := ts.ccConfig(ccClientID, oddSecret).Token(ctx(t)); err != nil {
		t.Fatalf("a secret with reserved characters must work in Basic auth: %v", err)
	}
}

func TestClientSecretPost(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.ccConfig(postClientID, postSecret)
	cfg.AuthStyle = oauth2.AuthStyleInParams
	if _, err := cfg.Token(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// The same client with Basic: wrong method, invalid_client.
	cfg.AuthStyle = oauth2.AuthStyleInHeader
	re := retrieveError(t, func() error { _, err := cfg.Token(ctx(t)); return err }())
	if re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != ErrInvalidClient {
		t.Errorf("got %d %s", re.Response.StatusCode, re.ErrorCode)
	}
}

// A client that pinned no method (the default OAuthClient) may send its
// secret either way, as relying-party libraries do by default
// (x/oauth2 tries the header first, openid-client and the OpenID
// certification suite's client send it in the body); a pinned method is
// enforced, in both directions.
func TestUnpinnedClientAcceptsBasicAndPost(t *testing.T) {
	ts := newTestServer(t)
	unpinned := (&oauthv1.OAuthClient{}).AuthMethods()
	ts.update(func(s *config.Snapshot) {
		web := *s.Clients.Get(webClientID)
		web.AuthMethods = unpinned
		s.Clients = s.Clients.With(&web)
	})
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams, oauth2.AuthStyleAutoDetect} {
		cfg := ts.webConfig("orders:read")
		cfg.Endpoint.AuthStyle = style
		verifier := oauth2.GenerateVerifier()
		back := newBrowser(t, ts).authorize(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "approve", false)
		tok, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("auth style %d: %v", style, err)
		}
		if _, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
			t.Fatalf("auth style %d, refresh: %v", style, err)
		}
	}

	// Pinned to client_secret_basic (ccClientID): the body is refused.
	cfg := ts.ccConfig(ccClientID, ccSecret)
	cfg.AuthStyle = oauth2.AuthStyleInParams
	re := retrieveError(t, func() error { _, err := cfg.Token(ctx(t)); return err }())
	if re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != ErrInvalidClient {
		t.Errorf("client_secret_post for a client pinned to client_secret_basic: %d %s", re.Response.StatusCode, re.ErrorCode)
	}
}

func TestAuthorizationCodeFlowWithPKCEAndRefresh(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.webConfig("orders:read", "basic")
	verifier := oauth2.GenerateVerifier()
	back := newBrowser(t, ts).authorize(cfg.AuthCodeURL("xyz-state", oauth2.S256ChallengeOption(verifier)), "approve", false)
	q := back.Query()
	if got := back.Scheme + "://" + back.Host + back.Path; got != webRedirect {
		t.Fatalf("redirected to %s", back)
	}
	if q.Get("state") != "xyz-state" || q.Get("iss") != ts.URL || len(q.Get("code")) < 43 {
		t.Fatalf("redirect query = %v; want code, state and iss (RFC 9207)", q)
	}
	tok, err := cfg.Exchange(ctx(t), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := ts.parseAccessToken(t, tok.AccessToken)
	if claims["sub"] != testSubject || claims["client_id"] != webClientID || claims["scope"] != "orders:read basic" || claims["auth_time"] == nil {
		t.Errorf("claims = %v", claims)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for a client allowed refresh_token")
	}

	// Refresh through x/oauth2's token source: rotation gives a new one.
	tok.Expiry = time.Now().Add(-time.Minute)
	next, err := cfg.TokenSource(ctx(t), tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
		t.Error("refresh must rotate the refresh token and issue a new access token")
	}
	claims, _ = ts.parseAccessToken(t, next.AccessToken)
	if claims["sub"] != testSubject {
		t.Errorf("refreshed sub = %v", claims["sub"])
	}
}

func TestPublicClientFlow(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.spaConfig("orders:read")
	verifier := oauth2.GenerateVerifier()
	back := newBrowser(t, ts).authorize(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "approve", false)
	tok, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
	// A public client cannot use client_credentials.
	resp := ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"client_credentials"}, "client_id": {spaClientID}}, "", "")
	assertOAuthError(t, resp, http.StatusBadRequest, ErrUnauthorizedClient)
}

func TestConsentRememberedAndSkipped(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.webConfig("orders:read")
	b := newBrowser(t, ts)
	v := oauth2.GenerateVerifier()
	b.authorize(cfg.AuthCodeURL("a", oauth2.S256ChallengeOption(v)), "approve", true)
	// Logged in and consent remembered: straight back with a code.
	resp, _ := b.get(cfg.AuthCodeURL("b", oauth2.S256ChallengeOption(v)))
	u := location(t, resp)
	if !strings.HasPrefix(u.String(), webRedirect) || u.Query().Get("code") == "" || u.Query().Get("state") != "b" {
		t.Fatalf("second authorization went to %s, want straight back to the app", u)
	}
	// A scope that needs no consent does not ask either.
	resp, _ = b.get(ts.webConfig("basic").AuthCodeURL("c", oauth2.S256ChallengeOption(v)))
	if u := location(t, resp); !strings.HasPrefix(u.String(), webRedirect) {
		t.Fatalf("basic-only authorization went to %s", u)
	}
	// A new scope that needs consent asks.
	resp, _ = b.get(ts.webConfig("orders:write").AuthCodeURL("d", oauth2.S256ChallengeOption(v)))
	if u := location(t, resp); u.Path != endpoints.ConsentPath {
		t.Fatalf("orders:write authorization went to %s, want the consent page", u)
	}
}

func TestConsentDenyIsAccessDenied(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.webConfig("orders:read")
	back := newBrowser(t, ts).authorize(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "deny", false)
	q := back.Query()
	if q.Get("error") != ErrAccessDenied || q.Get("state") != "st" || q.Get("iss") != ts.URL || q.Get("code") != "" {
		t.Fatalf("deny redirect = %v", q)
	}
}

func TestMetadata(t *testing.T) {
	ts := newTestServer(t)
	resp, err := http.Get(ts.URL + endpoints.MetadataWellKnown)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer": ts.URL, "authorization_endpoint": ts.URL + "/authorize", "token_endpoint": ts.URL + "/token",
		"jwks_uri": ts.URL + "/jwks", "revocation_endpoint": ts.URL + "/revoke", "introspection_endpoint": ts.URL + "/introspect",
		"authorization_response_iss_parameter_supported": true,
	}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("%s = %v, want %v", k, md[k], v)
		}
	}
	asStrings := func(k string) []string {
		var out []string
		for _, x := range md[k].([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	if got := asStrings("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v", got)
	}
	if got := asStrings("scopes_supported"); !slices.Equal(got, []string{"basic", "email", "groups", "offline_access", "openid", "orders:read", "orders:write", "profile"}) {
		t.Errorf("scopes_supported = %v", got)
	}
	if got := asStrings("response_types_supported"); !slices.Equal(got, []string{"code"}) {
		t.Errorf("response_types_supported = %v", got)
	}
}

func TestMetadataPathInsertionForIssuerWithPath(t *testing.T) {
	ts := newTestServer(t)
	ts.update(func(s *config.Snapshot) {
		s.Issuer = ts.URL + "/tenants/a"
		s.Endpoints = endpoints.For(s.Issuer)
	})
	resp, err := http.Get(ts.URL + "/.well-known/oauth-authorization-server/tenants/a")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md["issuer"] != ts.URL+"/tenants/a" || md["token_endpoint"] != ts.URL+"/tenants/a/token" {
		t.Fatalf("metadata = %v", md)
	}
	if _, err := ts.ccConfig(ccClientID, ccSecret).Token(ctx(t)); err == nil {
		t.Error("the token endpoint must move under the issuer path")
	}
	cfg := ts.ccConfig(ccClientID, ccSecret)
	cfg.TokenURL = ts.URL + "/tenants/a/token"
	if _, err := cfg.Token(ctx(t)); err != nil {
		t.Error(err)
	}
}

// A single-page app (public client) may call the token endpoint from its
// redirect URI's origin; nobody else gets CORS.
func TestCORSForPublicClientOrigins(t *testing.T) {
	ts := newTestServer(t)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, ts.URL+endpoints.TokenPath, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight("http://localhost:3000")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Fatalf("SPA preflight: %d %v", resp.StatusCode, resp.Header)
	}
	for _, origin := range []string{"http://127.0.0.1:9999", "https://evil.test", "null"} {
		if resp := preflight(origin); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("origin %s: %d %q", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+endpoints.IntrospectPath, strings.NewReader("token=x"))
	req.Header.Set("Origin", "http://localhost:3000")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(ccClientID, ccSecret)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("introspection must not be open to browsers")
	}
}

// A client's own token and a user's token never share a sub, even when
// the user's subject is exactly the client's client_id (RFC 9700 §4.15):
// the client's is "client:<client_id>".
func TestClientAndUserSubjectsDisjoint(t *testing.T) {
	ts := newTestServer(t)
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), users.MinBcryptCost)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := users.Parse([]byte("users:\n- username: " + testUser + "\n  passwordHash: " + string(h) + "\n  subject: " + ccClientID + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	ts.update(func(s *config.Snapshot) { s.Users = dir })

	cc, err := ts.ccConfig(ccClientID, ccSecret, "orders:read").Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := ts.webConfig("orders:read")
	verifier := oauth2.GenerateVerifier()
	back := newBrowser(t, ts).authorize(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "approve", false)
	user, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	ccClaims, _ := ts.parseAccessToken(t, cc.AccessToken)
	userClaims, _ := ts.parseAccessToken(t, user.AccessToken)
	if ccClaims["sub"] != "client:"+ccClientID || userClaims["sub"] != ccClientID {
		t.Fatalf("client token sub %v, user token sub %v: want client:%s and %s", ccClaims["sub"], userClaims["sub"], ccClientID, ccClientID)
	}
	if info := ts.introspect(t, cc.AccessToken); info["sub"] != "client:"+ccClientID {
		t.Errorf("introspection of the client's token: sub %v", info["sub"])
	}
}
