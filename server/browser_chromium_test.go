package server

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// chromiumEnv names the Chromium binary; /usr/bin/chromium (Debian's
// package) by default, as in test/e2e.
const chromiumEnv = "GATEHOUSE_E2E_CHROMIUM"

// headlessChromium starts a fresh headless Chromium for one test, or ends
// the test as a missing dependency. consoleProblems returns what the
// browser reported as errors or warnings so far: CSP violations among
// them ("Refused to ...").
func headlessChromium(t *testing.T, extra ...chromedp.ExecAllocatorOption) (bctx context.Context, consoleProblems func() []string) {
	t.Helper()
	path := os.Getenv(chromiumEnv)
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		testenv.MissingDependency(t, errors.New("no Chromium at "+path+": install the Debian package chromium, or set "+chromiumEnv))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
	}, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	// Start the browser, then read its console (browser log included,
	// where CSP violations go) until the test ends.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// A page without a favicon is no problem.
			if strings.HasSuffix(m.URL, "/favicon.ico") {
				continue
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				problems = append(problems, m.String()+" ("+m.URL+")")
				mu.Unlock()
			}
		}
	}()
	return bctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// appSite is a client's web app on 127.0.0.1: /login/generic_oauth takes the
// form_post (and query) responses, /start (to be opened as
// http://localhost:<port>/start, another site than the server's
// 127.0.0.1) has a button that POSTs an authorization request, and
// /csp-canary is a page whose CSP refuses its own inline script.
type appSite struct {
	*httptest.Server
	port      string
	responses chan url.Values
	startForm url.Values
	authorize string
}

func newAppSite(t *testing.T) *appSite {
	t.Helper()
	rp := &appSite{responses: make(chan url.Values, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("/login/generic_oauth", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		v := url.Values{"method": {r.Method}}
		for k, vs := range r.Form {
			v[k] = vs
		}
		rp.responses <- v
		fmt.Fprint(w, `<!DOCTYPE html><title>app</title><p id="done">signed in</p>`)
	})
	mux.HandleFunc("/start", func(w http.ResponseWriter, _ *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, `<!DOCTYPE html><title>app</title><form method="post" action="%s">`, html.EscapeString(rp.authorize))
		for k, vs := range rp.startForm {
			for _, v := range vs {
				fmt.Fprintf(&b, `<input type="hidden" name="%s" value="%s">`, html.EscapeString(k), html.EscapeString(v))
			}
		}
		b.WriteString(`<button id="go" type="submit">Sign in</button></form>`)
		fmt.Fprint(w, b.String())
	})
	mux.HandleFunc("/csp-canary", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'none'")
		fmt.Fprint(w, `<!DOCTYPE html><title>canary</title><p id="canary">x</p><script>document.title="ran"</script>`)
	})
	rp.Server = httptest.NewServer(mux)
	t.Cleanup(rp.Close)
	_, rp.port, _ = net.SplitHostPort(rp.Listener.Addr().String())
	return rp
}

// cspCanary opens the canary page and waits until the browser reports
// its CSP violation, which shows that violations are seen at all; it
// returns how many problems the console holds by then.
func (rp *appSite) cspCanary(t *testing.T, bctx context.Context, consoleProblems func() []string) int {
	t.Helper()
	if err := chromedp.Do(bctx, chromedp.Navigate(rp.URL+"/csp-canary"), chromedp.WaitVisible(chromedp.ID("canary"))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, p := range consoleProblems() {
			if strings.Contains(p, "Content Security Policy") {
				return nil
			}
		}
		return fmt.Errorf("the canary's CSP violation was not reported: %q", consoleProblems())
	})
	return len(consoleProblems())
}

func (rp *appSite) next(t *testing.T) url.Values {
	t.Helper()
	select {
	case v := <-rp.responses:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("the app's callback was never called")
		return nil
	}
}

// In Chromium, response_mode=form_post delivers the code to the app (a
// go-oidc relying party): the page's form posts itself to the redirect URI
// under the strict CSP, with no violation reported. Then the app's own page, on another site, POSTs
// an authorization request with prompt=none: the browser leaves the
// SameSite=Lax session cookie off that POST, and the GET it is sent on
// carries it, so single sign-on answers, again by form_post.
func TestFormPostInChromium(t *testing.T) {
	ts := newTestServer(t)
	app := newAppSite(t)
	bctx, consoleProblems := headlessChromium(t)

	// The canary shows that a CSP violation is seen.
	seen := app.cspCanary(t, bctx, consoleProblems)

	// A loopback redirect URI matches the registered one on any port.
	withOIDC(t, ts)
	oidcRP := newRelyingParty(t, ts, "openid", "profile")
	cfg := *oidcRP.cfg
	cfg.RedirectURL = "http://127.0.0.1:" + app.port + "/login/generic_oauth"
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("chromium-state", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-chromium"),
		oauth2.SetAuthURLParam("response_mode", "form_post"))
	err := chromedp.Do(bctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), testUser),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`button[name=decision][value=approve]`)),
		chromedp.Click(chromedp.CSS(`input[name=remember]`)),
		chromedp.Click(chromedp.CSS(`button[name=decision][value=approve]`)),
		chromedp.WaitVisible(chromedp.ID("done")),
	)
	if err != nil {
		page, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
		t.Fatalf("browser: %v\n%s", err, page)
	}
	got := app.next(t)
	if got.Get("method") != http.MethodPost || got.Get("state") != "chromium-state" || got.Get("iss") != ts.URL || got.Get("code") == "" {
		t.Fatalf("the app received %v, want a POST with code, state and iss", got)
	}
	tok, err := cfg.Exchange(ctx(t), got.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code posted by the form_post page: %v", err)
	}
	if idt, _ := oidcRP.verify(t, tok); idt.Nonce != "n-chromium" {
		t.Errorf("ID token nonce %q", idt.Nonce)
	}

	// The app's page on another site POSTs to /authorize.
	app.authorize = ts.URL + "/authorize"
	app.startForm = authorizeQuery(t, cfg.AuthCodeURL("sso-state", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("response_mode", "form_post"), oauth2.SetAuthURLParam("prompt", "none")))
	startURL := "http://localhost:" + app.port + "/start"
	err = chromedp.Do(bctx,
		chromedp.Navigate(startURL),
		chromedp.Click(chromedp.ID("go")),
		chromedp.WaitVisible(chromedp.ID("done")),
	)
	if err != nil {
		t.Fatalf("POST from the app's page: %v", err)
	}
	got = app.next(t)
	if got.Get("method") != http.MethodPost || got.Get("state") != "sso-state" || got.Get("code") == "" {
		t.Fatalf("prompt=none by POST from %s: the app received %v", startURL, got)
	}
	if _, err := cfg.Exchange(ctx(t), got.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("code of the POSTed request: %v", err)
	}
	if p := consoleProblems()[seen:]; len(p) > 0 {
		t.Errorf("Chromium reported problems on the server's pages: %q", p)
	}
}
