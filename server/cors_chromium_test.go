package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// In Chromium, a page on an origin the client lists in allowedCORSOrigins
// redeems an authorization code with fetch and reads the tokens; the same
// fetch from a page on another origin is blocked by the browser, which
// never lets the page read the answer (RFC 6749 §3.2 leaves CORS to the
// server; the browser enforces it).
func TestCORSInChromium(t *testing.T) {
	ts := newTestServer(t)
	page := func() *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `<!DOCTYPE html><title>app</title><p>app</p>`)
		}))
		t.Cleanup(s.Close)
		return s
	}
	allowed, other := page(), page()
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(spaClientID)
		c.CORSOrigins = []string{allowed.URL}
		s.Clients = s.Clients.With(&c)
	})
	bctx, consoleProblems := headlessChromium(t)

	// redeem gets a fresh code for the SPA (a public client, PKCE) and
	// has the page at origin POST it to the token endpoint with fetch.
	redeem := func(origin string) string {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		back := newBrowser(t, ts).authorize(ts.spaConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "approve", false)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
			"redirect_uri": {spaRedirect}, "client_id": {spaClientID}, "code_verifier": {verifier}}
		script := fmt.Sprintf(`fetch(%q, {method: "POST", body: new URLSearchParams(%q)})
			.then(r => r.json()).then(j => j.access_token ? "tokens" : "error " + JSON.stringify(j))
			.catch(e => "blocked: " + e)`, ts.URL+endpoints.TokenPath, form.Encode())
		if err := chromedp.Do(bctx, chromedp.Navigate(origin+"/")); err != nil {
			t.Fatalf("opening %s: %v", origin, err)
		}
		got, err := chromedp.Run(bctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch from %s: %v", origin, err)
		}
		return got
	}
	if got := redeem(allowed.URL); got != "tokens" {
		t.Errorf("a page on the listed origin %s: %q, want it to read the tokens", allowed.URL, got)
	}
	if got := redeem(other.URL); !strings.HasPrefix(got, "blocked: TypeError") {
		t.Errorf("a page on another origin %s: %q, want the browser to block the answer", other.URL, got)
	}
	// The console reports the block asynchronously, after the fetch has
	// already failed in the page.
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, p := range consoleProblems() {
			if strings.Contains(p, "blocked by CORS policy") {
				return nil
			}
		}
		return fmt.Errorf("Chromium reported no CORS block: %q", consoleProblems())
	})
}
