package server

// One test (or more) per invariant of docs/architecture.md that the token
// server touches.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/throttle"
)

// codeFor runs a web-client flow and returns a fresh code and its verifier.
func (ts *testServer) codeFor(t *testing.T, b *browser, scopes ...string) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	back := b.authorize(ts.webConfig(scopes...).AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "approve", true)
	code = back.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", back)
	}
	return code, verifier
}

func (ts *testServer) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	resp := ts.postForm(t, endpoints.IntrospectPath, url.Values{"token": {token}}, ccClientID, ccSecret)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("introspect: %d %s", resp.StatusCode, b)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Invariant: authorization codes are ≥128 bits, single use, and a replay
// revokes what the first redemption issued.
func TestInvariantCodeReplayRevokesFirstRedemption(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.webConfig("orders:read")
	code, verifier := ts.codeFor(t, newBrowser(t, ts), "orders:read")
	if raw := len(code) * 6; raw < 128 {
		t.Errorf("code carries at most %d bits", raw)
	}
	first, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if ts.introspect(t, first.AccessToken)["active"] != true {
		t.Fatal("first access token should be active")
	}
	_, err = cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if re := retrieveError(t, err); re.ErrorCode != ErrInvalidGrant || re.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("replay: %d %s", re.Response.StatusCode, re.ErrorCode)
	}
	if ts.introspect(t, first.AccessToken)["active"] != false {
		t.Error("the replay must revoke the first access token")
	}
	resp := ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, webClientID, webSecret)
	assertOAuthError(t, resp, http.StatusBadRequest, ErrInvalidGrant)
}

// Invariant: codes expire (60 s by default, redeemable for
// ClockSkewLeeway more at a replica whose clock is ahead).
func TestInvariantCodeExpires(t *testing.T) {
	ts := newTestServer(t)
	code, verifier := ts.codeFor(t, newBrowser(t, ts), "orders:read")
	ts.clock.Advance(61*time.Second + ClockSkewLeeway)
	_, err := ts.webConfig().Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if re := retrieveError(t, err); re.ErrorCode != ErrInvalidGrant {
		t.Fatalf("expired code: %s", re.ErrorCode)
	}
}

// Invariant: codes are bound to client, redirect URI and PKCE challenge.
func TestInvariantCodeBindings(t *testing.T) {
	ts := newTestServer(t)
	b := newBrowser(t, ts)
	cases := []struct {
		name   string
		mutate func(form url.Values) (user, pass string)
		status int
		want   string
	}{
		{"other client", func(f url.Values) (string, string) { return noPKCEClientID, legacySecret }, 400, ErrInvalidGrant},
		{"other redirect_uri", func(f url.Values) (string, string) {
			f.Set("redirect_uri", webRedirect+"/x")
			return webClientID, webSecret
		}, 400, ErrInvalidGrant},
		{"wrong verifier", func(f url.Values) (string, string) {
			f.Set("code_verifier", oauth2.GenerateVerifier())
			return webClientID, webSecret
		}, 400, ErrInvalidGrant},
		{"missing verifier", func(f url.Values) (string, string) { f.Del("code_verifier"); return webClientID, webSecret }, 400, ErrInvalidGrant},
		{"malformed verifier", func(f url.Values) (string, string) { f.Set("code_verifier", "short"); return webClientID, webSecret }, 400, ErrInvalidRequest},
		{"missing redirect_uri", func(f url.Values) (string, string) { f.Del("redirect_uri"); return webClientID, webSecret }, 400, ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, verifier := ts.codeFor(t, b, "orders:read")
			f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}}
			user, pass := tc.mutate(f)
			assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, f, user, pass), tc.status, tc.want)
		})
	}
}

// Invariant: refresh tokens rotate on every use; reuse revokes the family.
func TestInvariantRefreshReuseRevokesFamily(t *testing.T) {
	ts := newTestServer(t)
	code, verifier := ts.codeFor(t, newBrowser(t, ts), "orders:read", "orders:write")
	tok, err := ts.webConfig().Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt string, scope string) *http.Response {
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if scope != "" {
			f.Set("scope", scope)
		}
		return ts.postForm(t, endpoints.TokenPath, f, webClientID, webSecret)
	}
	// Narrowing is allowed; widening is not.
	assertOAuthError(t, refresh(tok.RefreshToken, "orders:read basic"), 400, ErrInvalidScope)
	resp := refresh(tok.RefreshToken, "orders:read")
	var second tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&second); err != nil || resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if second.Scope != "orders:read" || second.RefreshToken == tok.RefreshToken {
		t.Fatalf("narrowed refresh = %+v", second)
	}
	// The client moves on with the successor. Then the rotated token is
	// reused: invalid_grant, and the family dies. (Presented again before
	// the successor was used, it would be a retry of the same rotation,
	// spec.refreshTokenRetry; TestRefreshRetryAfterLostAnswer.)
	resp = refresh(second.RefreshToken, "")
	var third tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&third); err != nil || resp.StatusCode != 200 {
		t.Fatalf("refresh with the successor: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	assertOAuthError(t, refresh(tok.RefreshToken, ""), 400, ErrInvalidGrant)
	assertOAuthError(t, refresh(third.RefreshToken, ""), 400, ErrInvalidGrant)
}

// Bad input changes nothing: another client presenting a refresh token
// fails without rotating it away from its owner.
func TestInvariantRefreshByOtherClientChangesNothing(t *testing.T) {
	ts := newTestServer(t)
	code, verifier := ts.codeFor(t, newBrowser(t, ts), "orders:read")
	tok, err := ts.webConfig().Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	ts.update(func(s *config.Snapshot) {
		cp := *s.Clients.Get(noPKCEClientID)
		cp.GrantTypes = map[oauthv1.GrantType]bool{"refresh_token": true}
		s.Clients = s.Clients.With(&cp)
	})
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
	assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, f, noPKCEClientID, legacySecret), 400, ErrInvalidGrant)
	resp := ts.postForm(t, endpoints.TokenPath, f, webClientID, webSecret)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the owner's refresh failed after another client's attempt: %d", resp.StatusCode)
	}
}

// Invariant: redirect URIs match exactly, and a bad client_id or
// redirect_uri never redirects.
func TestInvariantNoOpenRedirect(t *testing.T) {
	ts := newTestServer(t)
	v := oauth2.GenerateVerifier()
	good := ts.webConfig("orders:read")
	variants := []string{
		webRedirect + "/",
		webRedirect + "x",
		webRedirect + "?a=b",
		strings.Replace(webRedirect, "callback", "CALLBACK", 1),
		strings.Replace(webRedirect, "127.0.0.1", "127.0.0.1.evil.test", 1),
		"https://evil.test/callback",
		"",
	}
	for _, redirect := range variants {
		cfg := *good
		cfg.RedirectURL = redirect
		resp, body := newBrowser(t, ts).get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("redirect_uri %q: status %d, Location %q; want an error page", redirect, resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.Contains(body, "Invalid return address") {
			t.Errorf("redirect_uri %q: page does not explain the problem", redirect)
		}
	}
	for _, id := range []string{"", "apps.unknown", webClientID + " "} {
		cfg := *good
		cfg.ClientID = id
		resp, _ := newBrowser(t, ts).get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("client_id %q: status %d, Location %q", id, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// Repeated client_id or redirect_uri: error page too.
	u := good.AuthCodeURL("s", oauth2.S256ChallengeOption(v)) + "&redirect_uri=" + url.QueryEscape("https://evil.test/")
	if resp, _ := newBrowser(t, ts).get(u); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("repeated redirect_uri: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Invariant: errors after client and redirect validation redirect back
// with RFC 6749 §4.1.2.1 error, state and iss (RFC 9207).
func TestInvariantAuthorizeErrorRedirects(t *testing.T) {
	ts := newTestServer(t)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	base := url.Values{"client_id": {webClientID}, "redirect_uri": {webRedirect}, "response_type": {"code"}, "state": {"st8"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "scope": {"orders:read"}}
	cases := []struct {
		name   string
		mutate func(url.Values)
		want   string
	}{
		{"token response type", func(q url.Values) { q.Set("response_type", "token") }, ErrUnsupportedResponseType},
		{"missing response type", func(q url.Values) { q.Del("response_type") }, ErrInvalidRequest},
		{"unknown scope", func(q url.Values) { q.Set("scope", "admin") }, ErrInvalidScope},
		{"scope not allowed", func(q url.Values) {
			q.Set("client_id", spaClientID)
			q.Set("redirect_uri", spaRedirect)
			q.Set("scope", "orders:write")
		}, ErrInvalidScope},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, ErrInvalidRequest},
		{"PKCE method missing", func(q url.Values) { q.Del("code_challenge_method") }, ErrInvalidRequest},
		{"PKCE required by default", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, ErrInvalidRequest},
		{"PKCE required for public", func(q url.Values) {
			q.Set("client_id", spaClientID)
			q.Set("redirect_uri", spaRedirect)
			q.Del("code_challenge")
			q.Del("code_challenge_method")
		}, ErrInvalidRequest},
		{"malformed challenge", func(q url.Values) { q.Set("code_challenge", "abc") }, ErrInvalidRequest},
		{"client without the grant", func(q url.Values) { q.Set("client_id", ccClientID) }, ""},
		{"repeated state", func(q url.Values) { q.Add("scope", "orders:write") }, ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range base {
				q[k] = append([]string(nil), v...)
			}
			tc.mutate(q)
			resp, _ := newBrowser(t, ts).get(ts.URL + endpoints.AuthorizePath + "?" + q.Encode())
			if tc.want == "" { // client has no redirect URI registered: error page
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
					t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
				}
				return
			}
			u := location(t, resp)
			got := u.Query()
			if !strings.HasPrefix(u.String(), q.Get("redirect_uri")+"?") {
				t.Fatalf("redirected to %s", u)
			}
			if got.Get("error") != tc.want || got.Get("error_description") == "" || got.Get("state") != "st8" || got.Get("iss") != ts.URL || got.Get("code") != "" {
				t.Fatalf("redirect query = %v, want error %s with state and iss", got, tc.want)
			}
		})
	}
}

// Invariant: PKCE may be skipped only by a confidential client that opted
// out; a verifier for a code without a challenge is a downgrade.
func TestInvariantPKCEOptOut(t *testing.T) {
	ts := newTestServer(t)
	cfg := &oauth2.Config{ClientID: noPKCEClientID, ClientSecret: legacySecret, RedirectURL: webRedirect, Scopes: []string{"orders:read"},
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + endpoints.AuthorizePath, TokenURL: ts.URL + endpoints.TokenPath, AuthStyle: oauth2.AuthStyleInHeader}}
	b := newBrowser(t, ts)
	back := b.authorize(cfg.AuthCodeURL("s"), "approve", false)
	if _, err := cfg.Exchange(ctx(t), back.Query().Get("code")); err != nil {
		t.Fatalf("opted-out client without PKCE: %v", err)
	}
	back = b.authorize(cfg.AuthCodeURL("s"), "approve", false)
	_, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	if re := retrieveError(t, err); re.ErrorCode != ErrInvalidGrant {
		t.Fatalf("verifier without challenge: %s", re.ErrorCode)
	}
}

// Invariant: §5.2 errors exactly, with 401 + WWW-Authenticate for failed
// Basic client authentication.
func TestInvariantTokenErrorShapes(t *testing.T) {
	ts := newTestServer(t)
	cc := url.Values{"grant_type": {"client_credentials"}}
	e := assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, cc, ccClientID, "wrong"), 401, ErrInvalidClient)
	if !strings.HasPrefix(e.Header.Get("WWW-Authenticate"), "Basic realm=") {
		t.Errorf("WWW-Authenticate = %q", e.Header.Get("WWW-Authenticate"))
	}
	// An unknown client looks exactly like a wrong secret.
	e2 := assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, cc, "apps.nobody", "wrong"), 401, ErrInvalidClient)
	if e2.Description != e.Description {
		t.Errorf("unknown client and wrong secret differ: %q vs %q", e2.Description, e.Description)
	}
	post := url.Values{"grant_type": {"client_credentials"}, "client_id": {postClientID}, "client_secret": {"wrong"}}
	e = assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, post, "", ""), 400, ErrInvalidClient)
	if e.Header.Get("WWW-Authenticate") != "" {
		t.Error("no Basic challenge when the client did not use Basic")
	}
	// No credentials at all: 401 with the scheme to use.
	e = assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"client_credentials"}}, "", ""), 401, ErrInvalidClient)
	if !strings.HasPrefix(e.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("WWW-Authenticate = %q", e.Header.Get("WWW-Authenticate"))
	}
	assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"password"}}, ccClientID, ccSecret), 400, ErrUnsupportedGrantType)
	assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, url.Values{}, ccClientID, ccSecret), 400, ErrInvalidRequest)
	assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, ccClientID, ccSecret), 400, ErrUnauthorizedClient)
	assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {"basic"}}, ccClientID, ccSecret), 400, ErrInvalidScope)
	assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {"a  b"}}, ccClientID, ccSecret), 400, ErrInvalidScope)
	// Credentials in two places at once (RFC 6749 §2.3).
	both := url.Values{"grant_type": {"client_credentials"}, "client_secret": {ccSecret}}
	assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, both, ccClientID, ccSecret), 400, ErrInvalidRequest)
	// Repeated parameter (RFC 6749 §3.2).
	rep := url.Values{"grant_type": {"client_credentials", "client_credentials"}}
	assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, rep, ccClientID, ccSecret), 400, ErrInvalidRequest)
	// Not a form, or not POST.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+endpoints.TokenPath, strings.NewReader(`{"grant_type":"client_credentials"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(ccClientID, ccSecret)
	resp, _ := http.DefaultClient.Do(req)
	assertOAuthError(t, resp, 400, ErrInvalidRequest)
	resp, _ = http.Get(ts.URL + endpoints.TokenPath)
	assertOAuthError(t, resp, 405, ErrInvalidRequest)
	// Expired secret hash: refused.
	ts.update(func(s *config.Snapshot) {
		cp := *s.Clients.Get(ccClientID)
		cp.SecretHashes = append(secretHash(mustSecret()), config.SecretHash{Hash: cp.SecretHashes[0].Hash, NotAfter: ts.clock.Now().Add(-time.Second)})
		s.Clients = s.Clients.With(&cp)
	})
	assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, cc, ccClientID, ccSecret), 401, ErrInvalidClient)
}

// Invariant: secrets never appear in errors.
func TestInvariantSecretsNotEchoed(t *testing.T) {
	ts := newTestServer(t)
	wrong := mustSecret()
	for _, f := range []url.Values{
		{"grant_type": {"client_credentials"}, "client_id": {postClientID}, "client_secret": {wrong}},
		{"grant_type": {"client_credentials"}, "client_id": {ccClientID}, "client_secret": {wrong}},
		{"grant_type": {"nonsense"}, "client_id": {postClientID}, "client_secret": {postSecret}},
	} {
		e := decodeError(t, ts.postForm(t, endpoints.TokenPath, f, "", ""))
		if strings.Contains(e.Body, wrong) || strings.Contains(e.Body, postSecret) {
			t.Errorf("error body carries a secret: %s", e.Body)
		}
	}
}

// Invariant: every form has CSRF protection; pages send the security
// headers; cookies are HttpOnly and SameSite.
func TestInvariantPagesCSRFAndHeaders(t *testing.T) {
	ts := newTestServer(t)
	b := newBrowser(t, ts)
	resp, _ := b.get(ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	loginURL := location(t, resp)
	resp, page := b.get(loginURL.String())
	checkPageHeaders(t, resp)
	f := hiddenFields(page)
	if len(f.Get("csrf_token")) < 43 || f.Get("auth_request") == "" {
		t.Fatalf("login form hidden fields = %v", f)
	}
	for _, c := range resp.Cookies() {
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s: HttpOnly %v SameSite %v", c.Name, c.HttpOnly, c.SameSite)
		}
	}
	if !strings.Contains(page, `<label for="username">`) || !strings.Contains(page, `autocomplete="current-password"`) || !strings.Contains(page, "Orders Web") {
		t.Error("login page lacks labels, autocomplete or the client's name")
	}
	// Without the CSRF field, or with another value: refused, no login.
	for _, token := range []string{"", mustSecret()} {
		g := url.Values{"auth_request": {f.Get("auth_request")}, "username": {testUser}, "password": {testPassword}, "csrf_token": {token}}
		resp, _ = b.post(ts.URL+endpoints.LoginPath, g)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("login with csrf %q: %d", token, resp.StatusCode)
		}
		for _, c := range resp.Cookies() {
			if strings.Contains(c.Name, sessionCookie) {
				t.Error("a session cookie was set despite the failed CSRF check")
			}
		}
	}
	// Log in properly, then check the consent page.
	f.Set("username", testUser)
	f.Set("password", testPassword)
	resp, _ = b.post(ts.URL+endpoints.LoginPath, f)
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Secure {
		t.Fatalf("session cookie = %+v (http issuer: not Secure)", session)
	}
	resp, page = b.get(location(t, resp).String())
	checkPageHeaders(t, resp)
	cf := hiddenFields(page)
	if cf.Get("csrf_token") != f.Get("csrf_token") {
		t.Error("consent form lacks the CSRF token")
	}
	if !strings.Contains(page, "Read your orders") || !strings.Contains(page, "Orders Web") || !strings.Contains(page, "Remember this decision") {
		t.Error("consent page lacks the scope description, client name or remember option")
	}
	cf.Set("decision", "approve")
	cf.Set("csrf_token", "forged")
	if resp, _ = b.post(ts.URL+endpoints.ConsentPath, cf); resp.StatusCode != http.StatusForbidden {
		t.Errorf("consent with forged CSRF: %d", resp.StatusCode)
	}
}

func checkPageHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "default-src 'none'", "base-uri 'none'", "form-action 'self' http://127.0.0.1:9999"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Error("CSP allows unsafe-inline")
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}

// Cookies are Secure (and __Host-) when the issuer is https.
func TestInvariantSecureCookiesForHTTPSIssuer(t *testing.T) {
	snap := &config.Snapshot{Issuer: "https://auth.example.test"}
	rec := httptest.NewRecorder()
	setCookie(rec, snap, sessionCookie, "v", 60)
	c := rec.Result().Cookies()[0]
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Name != "__Host-"+sessionCookie || c.Path != "/" {
		t.Fatalf("cookie = %+v", c)
	}
}

// Failed logins are throttled per username.
func TestLoginThrottled(t *testing.T) {
	ts := newTestServer(t)
	b := newBrowser(t, ts)
	resp, _ := b.get(ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	_, page := b.get(location(t, resp).String())
	f := hiddenFields(page)
	f.Set("username", testUser)
	f.Set("password", "wrong")
	for i := range throttle.Default.UserBurst {
		if resp, _ = b.post(ts.URL+endpoints.LoginPath, f); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	f.Set("password", testPassword) // even the right password waits
	if resp, _ = b.post(ts.URL+endpoints.LoginPath, f); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d, want 429", throttle.Default.UserBurst, resp.StatusCode)
	}
	ts.clock.Advance(throttle.Default.UserInterval)
	if resp, _ = b.post(ts.URL+endpoints.LoginPath, f); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the bucket refilled: %d", resp.StatusCode)
	}
}

// Invariant: key rotation never breaks validation: the next key is in the
// JWKS before it signs, and signing switches by time.
func TestInvariantKeyRotation(t *testing.T) {
	ts := newTestServer(t)
	now := ts.clock.Now()
	next := activeKey(t, keyset.ES256, now.Add(time.Hour))
	next.State = keyset.StateNext
	ts.update(func(s *config.Snapshot) {
		s.Keys = &keyset.Set{Keys: append([]keyset.Key{next}, s.Keys.Keys...)}
	})
	resp, err := http.Get(ts.URL + endpoints.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var jwks keyset.JWKS
	_ = json.Unmarshal(raw, &jwks)
	var members []map[string]any
	var generic struct{ Keys []map[string]any }
	_ = json.Unmarshal(raw, &generic)
	members = generic.Keys
	if len(jwks.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want active and next", len(jwks.Keys))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("JWKS Cache-Control = %q", cc)
	}
	for _, k := range members {
		if _, ok := k["d"]; ok {
			t.Fatal("private material in JWKS")
		}
	}
	tok, err := ts.ccConfig(ccClientID, ccSecret).Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, h := ts.parseAccessToken(t, tok.AccessToken); h["kid"] == next.ID {
		t.Fatal("signed with the next key before it activates")
	}
	ts.clock.Advance(time.Hour + time.Second)
	tok, err = ts.ccConfig(ccClientID, ccSecret).Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, h := ts.parseAccessToken(t, tok.AccessToken); h["kid"] != next.ID {
		t.Fatalf("signed with %v after activation, want %s", h["kid"], next.ID)
	}
}

// The strict CSP allows the inline stylesheet only by its hash: the hash
// must be of exactly what the page carries, or browsers drop the styles.
func TestCSPHashMatchesInlineStyle(t *testing.T) {
	ts := newTestServer(t)
	resp, page := newBrowser(t, ts).get(ts.URL + endpoints.AuthorizePath + "?client_id=unknown")
	start, end := strings.Index(page, "<style>"), strings.Index(page, "</style>")
	if start < 0 || end < start {
		t.Fatal("no inline style")
	}
	sum := sha256.Sum256([]byte(page[start+len("<style>") : end]))
	want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, want) {
		t.Fatalf("CSP %q lacks %q", csp, want)
	}
}

// Validators may cache the JWKS for at most half the prepublish period
// (and 5 minutes), so a prepublished key reaches them before it signs.
func TestJWKSMaxAgeStaysBelowPrepublish(t *testing.T) {
	for prepublish, want := range map[time.Duration]string{24 * time.Hour: "300", 10 * time.Minute: "300", time.Minute: "30"} {
		if got := jwksMaxAge(prepublish); got != want {
			t.Errorf("prepublish %v: max-age %s, want %s", prepublish, got, want)
		}
	}
}

// A person removed from the users Secret is logged out at once: their
// session cookie no longer skips the login page.
func TestRemovedUserLosesSession(t *testing.T) {
	ts := newTestServer(t)
	b := newBrowser(t, ts)
	authURL := func() string {
		return ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	}
	b.authorize(authURL(), "approve", true)

	// With the session and the remembered consent, /authorize goes straight
	// back to the app.
	resp, _ := b.get(authURL())
	if u := location(t, resp); strings.HasPrefix(u.String(), ts.URL) {
		t.Fatalf("a logged-in user with remembered consent was sent to %s", u)
	}

	empty, err := users.Parse([]byte("users: []"))
	if err != nil {
		t.Fatal(err)
	}
	ts.update(func(s *config.Snapshot) { s.Users = empty })
	resp, _ = b.get(authURL())
	if u := location(t, resp); u.Path != endpoints.LoginPath {
		t.Errorf("after the user was removed, /authorize redirected to %s; want the login page", u)
	}
}
