package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// TestUserinfoWithGoOIDC: go-oidc reads userinfo with the access token of
// a code flow and gets the ID token's subject and the scopes' claims.
func TestUserinfoWithGoOIDC(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid", "email", "groups")
	tok := rp.login(t, newBrowser(t, ts), "n", false)
	idt, _ := rp.verify(t, tok)
	ui, err := rp.provider.UserInfo(ctx(t), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("go-oidc userinfo: %v", err)
	}
	if ui.Subject != idt.Subject || ui.Email != "alice@example.com" || !ui.EmailVerified {
		t.Errorf("userinfo = %+v", ui)
	}
	var claims map[string]any
	if err := ui.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if _, ok := claims["preferred_username"]; ok || mustJSON(claims["groups"]) != `["admins","team:orders"]` {
		t.Errorf("userinfo released %v; want email and groups, not profile", claims)
	}
}

func userinfoRequest(t *testing.T, ts *testServer, method, authz, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+endpoints.UserinfoPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// assertBearerError checks an RFC 6750 §3 error: status, and the error
// code in the WWW-Authenticate: Bearer challenge (none without a token).
func assertBearerError(t *testing.T, ts *testServer, resp *http.Response, status int, code string) {
	t.Helper()
	resp.Body.Close()
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != status || !strings.HasPrefix(challenge, `Bearer realm="`+ts.URL+`"`) {
		t.Fatalf("got %d %q, want %d with a Bearer challenge", resp.StatusCode, challenge, status)
	}
	if code == "" && strings.Contains(challenge, "error=") || code != "" && !strings.Contains(challenge, `error="`+code+`"`) {
		t.Fatalf("challenge %q, want error %q", challenge, code)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Error("a userinfo error may be cached")
	}
}

// TestUserinfoRefusals: RFC 6750 errors for every token userinfo must not
// answer: none, garbage, expired, revoked, a client's own, a removed
// person's, one without openid; the token sent twice.
func TestUserinfoRefusals(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	b := newBrowser(t, ts)
	tok := newRelyingParty(t, ts, "openid", "profile").login(t, b, "n", true)
	bearer := "Bearer " + tok.AccessToken

	// GET with the header and POST with the form both work.
	for _, resp := range []*http.Response{
		userinfoRequest(t, ts, http.MethodGet, bearer, ""),
		userinfoRequest(t, ts, http.MethodPost, "", url.Values{"access_token": {tok.AccessToken}}.Encode()),
	} {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d", resp.Request.Method, resp.StatusCode)
		}
	}

	assertBearerError(t, ts, userinfoRequest(t, ts, http.MethodGet, "", ""), http.StatusUnauthorized, "")
	assertBearerError(t, ts, userinfoRequest(t, ts, http.MethodGet, "Basic YTpi", ""), http.StatusUnauthorized, "")
	assertBearerError(t, ts, userinfoRequest(t, ts, http.MethodGet, "Bearer not.a.token", ""), http.StatusUnauthorized, ErrInvalidToken)
	assertBearerError(t, ts, userinfoRequest(t, ts, http.MethodPost, bearer, url.Values{"access_token": {tok.AccessToken}}.Encode()),
		http.StatusBadRequest, ErrInvalidRequest)

	// A token without openid: insufficient_scope, naming the scope.
	plain := newRelyingParty(t, ts, "orders:read").login(t, b, "", true)
	resp := userinfoRequest(t, ts, http.MethodGet, "Bearer "+plain.AccessToken, "")
	assertBearerError(t, ts, resp, http.StatusForbidden, ErrInsufficientScope)
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="openid"`) {
		t.Errorf("challenge %q names no scope", resp.Header.Get("WWW-Authenticate"))
	}
	// A client's own token has no person.
	cc, err := ts.ccConfig(ccClientID, ccSecret, "orders:read").Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	assertBearerError(t, ts, userinfoRequest(t, ts, http.MethodGet, "Bearer "+cc.AccessToken, ""), http.StatusUnauthorized, ErrInvalidToken)

	// Revoked (RFC 7009 by its client).
	revoked := newRelyingParty(t, ts, "openid").login(t, b, "n", true)
	r := ts.postForm(t, endpoints.RevokePath, url.Values{"token": {revoked.AccessToken}}, oidcClientID, oidcSecret)
	r.Body.Close()
	assertBearerError(t, ts, userinfoRequest(t, ts, http.MethodGet, "Bearer "+revoked.AccessToken, ""), http.StatusUnauthorized, ErrInvalidToken)

	// A person removed from the users Secret.
	other, err := users.Parse([]byte("users: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	keep := ts.snap().Users
	ts.update(func(s *config.Snapshot) { s.Users = other })
	assertBearerError(t, ts, userinfoRequest(t, ts, http.MethodGet, bearer, ""), http.StatusUnauthorized, ErrInvalidToken)
	ts.update(func(s *config.Snapshot) { s.Users = keep })

	// Expired.
	ts.clock.Advance(config.DefaultAccessTokenTTL + time.Second)
	assertBearerError(t, ts, userinfoRequest(t, ts, http.MethodGet, bearer, ""), http.StatusUnauthorized, ErrInvalidToken)

	resp = userinfoRequest(t, ts, http.MethodPut, bearer, "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("PUT: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestUserinfoCORS: a single-page app (public client) may call userinfo
// from its origin; other origins get no CORS headers.
func TestUserinfoCORS(t *testing.T) {
	ts := newTestServer(t)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, ts.URL+endpoints.UserinfoPath, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight("http://localhost:3000")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET, POST" {
		t.Errorf("preflight from the SPA: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example"); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", resp.StatusCode, resp.Header)
	}
	get := userinfoRequest(t, ts, http.MethodGet, "", "")
	get.Body.Close()
	if get.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS headers without an Origin")
	}
}
