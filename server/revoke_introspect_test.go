package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

func TestIntrospectionReflectsRevocationAndExpiry(t *testing.T) {
	ts := newTestServer(t)
	tok, err := ts.ccConfig(ccClientID, ccSecret, "orders:read").Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := ts.introspect(t, tok.AccessToken)
	if got["active"] != true || got["client_id"] != ccClientID || got["scope"] != "orders:read" || got["sub"] != "client:"+ccClientID || got["iss"] != ts.URL {
		t.Fatalf("introspection = %v", got)
	}
	// Revoke (RFC 7009) by the owning client: then inactive.
	resp := ts.postForm(t, endpoints.RevokePath, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}, ccClientID, ccSecret)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if got := ts.introspect(t, tok.AccessToken); len(got) != 1 || got["active"] != false {
		t.Fatalf("revoked token introspects as %v, want only active=false", got)
	}
	// Expiry.
	tok, _ = ts.ccConfig(ccClientID, ccSecret).Token(ctx(t))
	ts.clock.Advance(10*time.Minute + time.Second)
	if got := ts.introspect(t, tok.AccessToken); got["active"] != false {
		t.Fatalf("expired token introspects as %v", got)
	}
	// Garbage and foreign JWTs are inactive, not errors.
	for _, junk := range []string{"nope", "a.b.c", tok.AccessToken[:len(tok.AccessToken)-4] + "AAAA"} {
		if got := ts.introspect(t, junk); got["active"] != false {
			t.Errorf("%q introspects as %v", junk, got)
		}
	}
}

func TestRevokeRefreshTokenRevokesFamily(t *testing.T) {
	ts := newTestServer(t)
	code, verifier := ts.codeFor(t, newBrowser(t, ts), "orders:read")
	tok, err := ts.webConfig().Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	// Refresh tokens introspect as active for their own client only.
	resp := ts.postForm(t, endpoints.IntrospectPath, url.Values{"token": {tok.RefreshToken}}, webClientID, webSecret)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"active":true`) || !strings.Contains(string(body), `"token_type":"refresh_token"`) {
		t.Fatalf("refresh token introspection: %s", body)
	}
	if got := ts.introspect(t, tok.RefreshToken); got["active"] != false {
		t.Fatalf("another client sees the refresh token as %v", got)
	}
	// Another client cannot revoke it.
	assertOAuthError(t, ts.postForm(t, endpoints.RevokePath, url.Values{"token": {tok.RefreshToken}}, noPKCEClientID, legacySecret), 400, ErrUnauthorizedClient)
	resp = ts.postForm(t, endpoints.RevokePath, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, webClientID, webSecret)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
	assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, f, webClientID, webSecret), 400, ErrInvalidGrant)
	// Unknown tokens: 200 (RFC 7009 §2.2).
	resp = ts.postForm(t, endpoints.RevokePath, url.Values{"token": {"unknown"}}, webClientID, webSecret)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoking an unknown token: %d", resp.StatusCode)
	}
}

func TestRevokeAndIntrospectRequireClientAuthentication(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{endpoints.RevokePath, endpoints.IntrospectPath} {
		assertOAuthError(t, ts.postForm(t, path, url.Values{"token": {"x"}}, "", ""), 401, ErrInvalidClient)
		assertOAuthError(t, ts.postForm(t, path, url.Values{"token": {"x"}}, ccClientID, "wrong"), 401, ErrInvalidClient)
		assertOAuthError(t, ts.postForm(t, path, url.Values{}, ccClientID, ccSecret), 400, ErrInvalidRequest)
	}
	// Public clients may revoke their tokens but not introspect.
	assertOAuthError(t, ts.postForm(t, endpoints.IntrospectPath, url.Values{"token": {"x"}, "client_id": {spaClientID}}, "", ""), 400, ErrInvalidClient)
	resp := ts.postForm(t, endpoints.RevokePath, url.Values{"token": {"x"}, "client_id": {spaClientID}}, "", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("public client revoke: %d", resp.StatusCode)
	}
}

func TestOpsEndpoints(t *testing.T) {
	ts := newTestServer(t)
	if _, err := ts.ccConfig(ccClientID, ccSecret).Token(ctx(t)); err != nil {
		t.Fatal(err)
	}
	_ = ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"client_credentials"}}, ccClientID, "wrong").Body.Close()
	ops := httptestServer(t, ts.srv.OpsHandler())
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200} {
		resp, err := http.Get(ops + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
		if path == "/metrics" {
			for _, line := range []string{
				`gatehouse_server_requests_total{endpoint="token",grant="client_credentials",outcome="success"} 1`,
				`gatehouse_server_requests_total{endpoint="token",grant="client_credentials",outcome="invalid_client"} 1`,
				`gatehouse_server_request_duration_seconds_bucket{endpoint="token",grant="client_credentials"`,
			} {
				if !strings.Contains(string(body), line) {
					t.Errorf("metrics lack %s", line)
				}
			}
		}
	}
	// Without a signing key the server is not ready, and says why.
	ts.update(func(s *config.Snapshot) { s.Keys = nil })
	resp, _ := http.Get(ops + "/readyz")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "signing key") {
		t.Errorf("readyz without keys: %d %s", resp.StatusCode, body)
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// RFC 7009 §2.1: revoking a refresh token revokes the access tokens of its
// grant, the ones issued with it and after each rotation; other grants'
// tokens stay active.
func TestRevokeRefreshTokenRevokesItsAccessTokens(t *testing.T) {
	ts := newTestServer(t)
	b := newBrowser(t, ts)
	cfg := ts.webConfig("orders:read")
	exchange := func() *oauth2.Token {
		code, verifier := ts.codeFor(t, b, "orders:read")
		tok, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	first, other := exchange(), exchange()
	rotated, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: first.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := ts.ccConfig(ccClientID, ccSecret).Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}

	resp := ts.postForm(t, endpoints.RevokePath, url.Values{"token": {rotated.RefreshToken}, "token_type_hint": {"refresh_token"}}, webClientID, webSecret)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	for name, at := range map[string]string{"issued with the code": first.AccessToken, "issued on refresh": rotated.AccessToken} {
		if got := ts.introspect(t, at); len(got) != 1 || got["active"] != false {
			t.Errorf("access token %s introspects as %v after its refresh token was revoked", name, got)
		}
	}
	for name, at := range map[string]string{"of another grant": other.AccessToken, "of client_credentials": cc.AccessToken} {
		if got := ts.introspect(t, at); got["active"] != true {
			t.Errorf("access token %s introspects as %v", name, got)
		}
	}
}

// Refresh-token reuse revokes the family's access tokens too: whoever
// stole the rotated refresh token may hold them.
func TestRefreshReuseRevokesAccessTokens(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.webConfig("orders:read")
	code, verifier := ts.codeFor(t, newBrowser(t, ts), "orders:read")
	first, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	second, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: first.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if ts.introspect(t, second.AccessToken)["active"] != true {
		t.Fatal("the refreshed access token should be active")
	}
	// The client moves on with the successor; then the first token is
	// reuse (before, it would be a retry of the same rotation).
	third, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: second.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: first.RefreshToken}).Token()
	if re := retrieveError(t, err); re.ErrorCode != ErrInvalidGrant {
		t.Fatalf("reuse: %s", re.ErrorCode)
	}
	for i, at := range []string{first.AccessToken, second.AccessToken, third.AccessToken} {
		if got := ts.introspect(t, at); got["active"] != false {
			t.Errorf("access token %d introspects as %v after refresh-token reuse", i, got)
		}
	}
}
