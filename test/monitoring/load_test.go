package monitoring_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// loadStats counts what the load did, for the log.
type loadStats struct {
	tokens, refused, logins, failedLogins, refreshes, reused, outageErrors int
}

func (l loadStats) String() string {
	return fmt.Sprintf("%d client_credentials tokens, %d refused (wrong secret), %d logins with code exchange, %d failed logins, "+
		"%d refreshes, %d refresh-token reuses refused, %d requests failed during the database outage",
		l.tokens, l.refused, l.logins, l.failedLogins, l.refreshes, l.reused, l.outageErrors)
}

// load drives, in about 20 seconds, the traffic every panel shows:
// client_credentials tokens and refused client secrets, password logins
// (wrong and right passwords, an unknown account until it is throttled),
// the code flow with PKCE through golang.org/x/oauth2, refreshes and a
// reused refresh token, then a 4-second database outage during which
// revocations and code exchanges fail.
func (s *system) load(t *testing.T) loadStats {
	t.Helper()
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, s.https)
	var st loadStats
	cc := &clientcredentials.Config{ClientID: s.machine.id, ClientSecret: s.machine.secret, TokenURL: s.issuer + "/token",
		Scopes: []string{"orders:read"}, AuthStyle: oauth2.AuthStyleInHeader}
	wrong := *cc
	wrong.ClientSecret = "not-the-secret"
	web := &oauth2.Config{ClientID: s.web.id, ClientSecret: s.web.secret, RedirectURL: webRedirect, Scopes: []string{"orders:read"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/authorize", TokenURL: s.issuer + "/token", AuthStyle: oauth2.AuthStyleInHeader}}

	end := time.Now().Add(14 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		if _, err := cc.Token(ctx); err != nil {
			t.Fatalf("client_credentials: %v", err)
		}
		st.tokens++
		if i%5 == 0 {
			if _, err := wrong.Token(ctx); err == nil {
				t.Fatal("a wrong client secret got a token")
			}
			st.refused++
		}
		// Two logins, the first after a typo: each password checked
		// spends the account's login-throttle budget (5, then one per 30 s).
		if i%40 == 0 && st.logins < 2 {
			tok, failed := s.loginFlow(t, ctx, web, st.logins == 0)
			st.logins++
			st.failedLogins += failed
			// Refresh twice, then present the first refresh token again:
			// refused, and its family revoked. (Presented again before
			// its successor was used, it would be a retry of the same
			// rotation: spec.refreshTokenRetry.)
			next, err := web.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if _, err := web.TokenSource(ctx, &oauth2.Token{RefreshToken: next.RefreshToken}).Token(); err != nil {
				t.Fatalf("refresh with the successor: %v", err)
			}
			st.refreshes += 2
			if _, err := web.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
				t.Fatal("a rotated refresh token was accepted again")
			}
			st.reused++
		}
		time.Sleep(20 * time.Millisecond)
	}
	st.failedLogins += s.guessPasswords(t, 8)

	// A database outage: requests that need storage are answered 503
	// temporarily_unavailable with Retry-After, never a 500 (and the
	// driver counts connection errors), until it is back.
	tok, failed := s.loginFlow(t, ctx, web, false)
	st.failedLogins += failed
	if err := s.setConnections(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	outageEnd := time.Now().Add(4 * time.Second)
	for time.Now().Before(outageEnd) {
		resp, err := s.postForm(s.issuer+"/revoke", url.Values{"token": {tok.RefreshToken}}, s.web)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
			st.outageErrors++
		case resp.StatusCode >= 500:
			t.Fatalf("revocation while the database refuses connections: %s (Retry-After %q), want 503 with Retry-After",
				resp.Status, resp.Header.Get("Retry-After"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.setConnections(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if st.outageErrors == 0 {
		t.Fatal("no request failed while the database refused connections")
	}
	// Served again once the pool reconnects.
	waitFor(t, 30*time.Second, "token server ready after the outage", func() error {
		return httpOK(http.DefaultClient, "http://"+s.serverMetrics+"/readyz")
	})
	return st
}

// browser is a cookie-keeping client that stops at the client's redirect
// URI instead of following it.
func (s *system) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: s.https.Transport, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), webRedirect) {
				return http.ErrUseLastResponse
			}
			return nil
		}}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenRe   = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// loginPage fetches a page and returns its form's action and hidden fields.
func loginForm(t *testing.T, resp *http.Response) (string, url.Values) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := formAction.FindSubmatch(body)
	if m == nil {
		t.Fatalf("%s %s: no form in the page (%s):\n%.800s", resp.Request.Method, resp.Request.URL, resp.Status, body)
	}
	form := url.Values{}
	for _, h := range hiddenRe.FindAllSubmatch(body, -1) {
		form.Set(string(h[1]), html.UnescapeString(string(h[2])))
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		t.Fatal(err)
	}
	return action.String(), form
}

// loginFlow runs the authorization code flow with PKCE as a browser and
// the web app would: the login page, optionally a wrong password first,
// the right one, the code exchanged by golang.org/x/oauth2. It returns the
// tokens and the number of failed logins.
func (s *system) loginFlow(t *testing.T, ctx context.Context, web *oauth2.Config, typo bool) (*oauth2.Token, int) {
	t.Helper()
	b := s.browser(t)
	verifier := oauth2.GenerateVerifier()
	resp, err := b.Get(web.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	action, form := loginForm(t, resp)
	failed := 0
	if typo {
		form.Set("username", testUsername)
		form.Set("password", "wrong-"+s.password)
		resp, err = b.PostForm(action, form)
		if err != nil {
			t.Fatal(err)
		}
		action, form = loginForm(t, resp)
		failed++
	}
	form.Set("username", testUsername)
	form.Set("password", s.password)
	resp, err = b.PostForm(action, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("login: %s, no redirect to the app: %v", resp.Status, err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("login redirected to %s without a code", loc)
	}
	tok, err := web.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	return tok, failed
}

// guessPasswords tries n wrong passwords for an account nobody has, from
// one browser, until the login throttle refuses to check them.
func (s *system) guessPasswords(t *testing.T, n int) int {
	t.Helper()
	b := s.browser(t)
	verifier := oauth2.GenerateVerifier()
	web := &oauth2.Config{ClientID: s.web.id, RedirectURL: webRedirect, Scopes: []string{"orders:read"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/authorize"}}
	resp, err := b.Get(web.AuthCodeURL("state-2", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	action, form := loginForm(t, resp)
	for i := range n {
		form.Set("username", "mallory")
		form.Set("password", fmt.Sprintf("guess-%d", i))
		resp, err := b.PostForm(action, form)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			resp.Body.Close()
			continue
		}
		action, form = loginForm(t, resp)
	}
	return n
}

// postForm posts a form with HTTP Basic client authentication.
func (s *system) postForm(u string, form url.Values, c clientCreds) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	resp, err := s.https.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}
