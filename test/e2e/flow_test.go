package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// chromium finds the browser, or ends the test as a missing dependency.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv(chromiumEnv)
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		testenv.MissingDependency(t, errors.New("no Chromium at "+path+": install the Debian package chromium, or set "+chromiumEnv))
	}
	return path
}

// TestAuthorizationCodeFlow is the flow Gatehouse exists for (RFC 6749
// §4.1 with PKCE): a person logs in and consents in a real browser, the
// web app of the samples exchanges the code with golang.org/x/oauth2 using
// the credentials from its generated Secret, calls the orders API, then
// refreshes, introspects and revokes.
func TestAuthorizationCodeFlow(t *testing.T) {
	t.Parallel()
	s := get(t)
	browser := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The app's configuration comes from the Secret the operator wrote.
	sec := s.appSecret(t, webClientSecret)
	if sec[oauthv1.SecretKeyIssuer] != s.issuer {
		t.Fatalf("Secret %s: issuer %q, want %q", webClientSecret, sec[oauthv1.SecretKeyIssuer], s.issuer)
	}
	cfg := oauth2.Config{
		ClientID:     sec[oauthv1.SecretKeyClientID],
		ClientSecret: sec[oauthv1.SecretKeyClientSecret],
		Endpoint: oauth2.Endpoint{
			AuthURL:   sec[oauthv1.SecretKeyAuthorizationEndpoint],
			TokenURL:  sec[oauthv1.SecretKeyTokenEndpoint],
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: s.callback.url,
		Scopes:      []string{"orders:read", "orders:write"},
	}
	verifier, state := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))

	// The browser: /authorize → login → consent → callback.
	began := time.Now()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	err := chromedp.Do(bctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	)
	var loginTitle, consentText string
	if err == nil {
		loginTitle, err = chromedp.Run(bctx, chromedp.Title())
	}
	if err == nil {
		err = chromedp.Do(bctx,
			chromedp.SendKeys(chromedp.CSS("#username"), username),
			chromedp.SendKeys(chromedp.CSS("#password"), s.password),
			chromedp.Submit(chromedp.CSS("#password")),
			chromedp.WaitVisible(chromedp.CSS(`button[name=decision][value=approve]`)),
		)
	}
	if err == nil {
		consentText, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
	}
	if err == nil {
		err = chromedp.Do(bctx,
			chromedp.Click(chromedp.CSS(`button[name=decision][value=approve]`)),
			chromedp.WaitVisible(chromedp.CSS("#done")),
		)
	}
	if err != nil {
		html, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
		t.Fatalf("browser: %v\npage:\n%s", err, html)
	}
	t.Logf("login page %q, consent, redirect: %s in Chromium", loginTitle, time.Since(began).Round(time.Millisecond))
	for _, want := range []string{"See your orders and their delivery status", "Place and cancel orders on your behalf"} {
		if !strings.Contains(consentText, want) {
			t.Errorf("consent page does not show the scope description %q:\n%s", want, consentText)
		}
	}
	var q url.Values
	select {
	case q = <-s.callback.hits:
	case <-ctx.Done():
		t.Fatal("the callback was never called")
	}
	if q.Get("state") != state || q.Get("iss") != s.issuer || q.Get("code") == "" {
		t.Fatalf("callback query %v: want our state, iss=%s (RFC 9207) and a code", q, s.issuer)
	}

	// The app's back end exchanges the code, with the PKCE verifier.
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	if h := jwtHeader(t, tok.AccessToken); h["typ"] != "at+jwt" || h["alg"] != "ES256" {
		t.Errorf("access token header %v: want typ at+jwt, alg ES256", h)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token although the client may use refresh_token")
	}

	// The orders API accepts it.
	if code, body, err := callAPI(ctx, http.MethodGet, s.orders+"/orders", tok.AccessToken, ""); err != nil || code != http.StatusOK {
		t.Fatalf("GET /orders: %d %s %v", code, body, err)
	}
	if code, body, err := callAPI(ctx, http.MethodPost, s.orders+"/orders", tok.AccessToken, `{"item":"tea","quantity":2}`); err != nil || code >= 300 {
		t.Fatalf("POST /orders: %d %s %v", code, body, err)
	}
	if code, body, _ := callAPI(ctx, http.MethodGet, s.orders+"/me", tok.AccessToken, ""); !strings.Contains(body, `"`+username+`"`) {
		t.Errorf("GET /me: %d %s: the token's subject is not the user who logged in", code, body)
	}
	if code, body, _ := callAPI(ctx, http.MethodGet, s.orders+"/orders", "", ""); code != http.StatusUnauthorized || !strings.HasPrefix(body, "Bearer") {
		t.Errorf("GET /orders without a token: %d %q, want 401 with a Bearer challenge", code, body)
	}
	// A token for another API is refused: audience (RFC 9068 §4).
	if code, _, _ := callAPI(ctx, http.MethodGet, s.inventory+"/me", tok.AccessToken, ""); code != http.StatusUnauthorized {
		t.Errorf("inventory API accepted a token for the orders API: %d", code)
	}

	// Refresh: a new access token and a rotated refresh token.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	tok2, err := cfg.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh did not issue a new access token and a rotated refresh token")
	}
	if code, body, _ := callAPI(ctx, http.MethodGet, s.orders+"/orders", tok2.AccessToken, ""); code != http.StatusOK {
		t.Fatalf("GET /orders with the refreshed token: %d %s", code, body)
	}

	// Introspection (RFC 7662) and revocation (RFC 7009).
	ep := endpoints.For(s.issuer)
	introspect := func(token string) map[string]any {
		t.Helper()
		code, out, err := postForm(ctx, ep.Introspection, cfg.ClientID, cfg.ClientSecret, url.Values{"token": {token}})
		if err != nil || code != http.StatusOK {
			t.Fatalf("introspect: %d %v %v", code, out, err)
		}
		return out
	}
	revoke := func(token, hint string) {
		t.Helper()
		code, out, err := postForm(ctx, ep.Revocation, cfg.ClientID, cfg.ClientSecret, url.Values{"token": {token}, "token_type_hint": {hint}})
		if err != nil || code != http.StatusOK {
			t.Fatalf("revoke: %d %v %v", code, out, err)
		}
	}
	info := introspect(tok2.AccessToken)
	if info["active"] != true || info["client_id"] != cfg.ClientID || info["sub"] != username || info["iss"] != s.issuer ||
		!strings.Contains(info["scope"].(string), "orders:read") {
		t.Errorf("introspection of a live access token: %v", info)
	}
	revoke(tok2.AccessToken, "access_token")
	if info := introspect(tok2.AccessToken); info["active"] != false {
		t.Errorf("introspection of a revoked access token: %v", info)
	}
	if info := introspect(tok2.RefreshToken); info["active"] != true {
		t.Errorf("introspection of a live refresh token: %v", info)
	}
	revoke(tok2.RefreshToken, "refresh_token")
	if info := introspect(tok2.RefreshToken); info["active"] != false {
		t.Errorf("introspection of a revoked refresh token: %v", info)
	}
	expired2 := *tok2
	expired2.Expiry = time.Now().Add(-time.Minute)
	if _, err := cfg.TokenSource(ctx, &expired2).Token(); tokenError(err) != "invalid_grant" {
		t.Errorf("refresh with a revoked refresh token: %v, want invalid_grant", err)
	}
	// The first refresh token was rotated away: using it again fails.
	if _, err := cfg.TokenSource(ctx, &expired).Token(); tokenError(err) != "invalid_grant" {
		t.Errorf("reuse of a rotated refresh token: %v, want invalid_grant", err)
	}
	// The code was single use (RFC 6749 §4.1.2).
	if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); tokenError(err) != "invalid_grant" {
		t.Errorf("replayed authorization code: %v, want invalid_grant", err)
	}
}
