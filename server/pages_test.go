package server

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage/memory"
)

// newTLSTestServer is newTestServer with an https issuer.
func newTLSTestServer(t testing.TB) *testServer {
	t.Helper()
	ts := &testServer{clock: &clock{t: time.Now()}, store: memory.New()}
	ts.Server = httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	ts.src = config.NewStatic(testSnapshot(t, ts.URL, ts.clock.Now()))
	srv, err := New(Options{Source: ts.src, Store: ts.store, Now: ts.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	ts.Config.Handler = srv
	return ts
}

// newTLSBrowser is a browser that trusts the test server's certificate.
func newTLSBrowser(t testing.TB, ts *testServer) *browser {
	b := newBrowser(t, ts)
	jar, _ := cookiejar.New(nil)
	b.client.Transport = ts.Client().Transport
	b.client.Jar = jar
	return b
}

// responses records the headers of every response the server sends from
// here on, by request path.
func (ts *testServer) responses() func() map[string][]http.Header {
	var mu sync.Mutex
	seen := map[string][]http.Header{}
	inner := ts.Config.Handler
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r)
		mu.Lock()
		defer mu.Unlock()
		seen[r.Method+" "+r.URL.Path] = append(seen[r.Method+" "+r.URL.Path], w.Header().Clone())
	})
	return func() map[string][]http.Header { mu.Lock(); defer mu.Unlock(); return seen }
}

// Under an https issuer every cookie the pages set is __Host- prefixed,
// Secure, HttpOnly, SameSite, Path=/ and without Domain, and the flow
// works with them; unprefixed look-alikes planted by a sibling host are
// ignored. The pages also send HSTS then.
func TestHTTPSIssuerCookiesUseHostPrefix(t *testing.T) {
	ts := newTLSTestServer(t)
	if !strings.HasPrefix(ts.URL, "https://") {
		t.Fatalf("issuer %s", ts.URL)
	}
	recorded := ts.responses()
	cfg := ts.webConfig("orders:read")
	verifier := oauth2.GenerateVerifier()
	b := newTLSBrowser(t, ts)
	back := b.authorize(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "approve", false)
	hc := context.WithValue(ctx(t), oauth2.HTTPClient, ts.Client())
	if _, err := cfg.Exchange(hc, back.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("the flow under an https issuer: %v", err)
	}

	var names []string
	for path, hs := range recorded() {
		for _, h := range hs {
			for _, line := range h.Values("Set-Cookie") {
				c, err := http.ParseSetCookie(line)
				if err != nil {
					t.Fatalf("%s: Set-Cookie %q: %v", path, line, err)
				}
				names = append(names, c.Name)
				if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
					t.Errorf("%s: cookie %q", path, line)
				}
			}
		}
	}
	for _, h := range recorded()["GET "+endpoints.LoginPath] {
		if got := h.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("login page under an https issuer: Strict-Transport-Security %q", got)
		}
	}
	for _, want := range []string{"__Host-" + csrfCookie, "__Host-" + sessionCookie} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s cookie was set (saw %q)", want, names)
		}
	}

	// A fresh browser with unprefixed cookies planted, as a sibling
	// subdomain or a plain-http page could: the session is not honoured,
	// and a CSRF cookie without the prefix does not pass the check.
	mallory := newTLSBrowser(t, ts)
	var session string
	for _, c := range b.client.Jar.Cookies(mustParseURL(t, ts.URL)) {
		if c.Name == "__Host-"+sessionCookie {
			session = c.Value
		}
	}
	if session == "" {
		t.Fatal("the browser holds no session cookie")
	}
	u := mustParseURL(t, ts.URL)
	mallory.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: session, Path: "/"}, {Name: csrfCookie, Value: strings.Repeat("A", 43), Path: "/"}})
	resp, _ := mallory.get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	loginURL := location(t, resp)
	if loginURL.Path != endpoints.LoginPath {
		t.Fatalf("an unprefixed session cookie was honoured: sent to %s", loginURL)
	}
	_, page := mallory.get(loginURL.String())
	f := hiddenFields(page)
	f.Set("csrf_token", strings.Repeat("A", 43))
	f.Set("username", testUser)
	f.Set("password", testPassword)
	// Drop the prefixed CSRF cookie the login page just set, keeping the
	// planted one.
	mallory.client.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-" + csrfCookie, Value: "", Path: "/", MaxAge: -1, Secure: true}})
	if resp, _ = mallory.post(ts.URL+endpoints.LoginPath, f); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login with only an unprefixed CSRF cookie: %d, want 403", resp.StatusCode)
	}
}

// cspDirectives splits a policy into directive → sources.
func cspDirectives(policy string) map[string][]string {
	out := map[string][]string{}
	for d := range strings.SplitSeq(policy, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			out[f[0]] = f[1:]
		}
	}
	return out
}

// Every page, in every state, sends the strict CSP: nothing allowed but
// the stylesheet by its hash and form posts to the server and the app; no
// script, no 'unsafe-*', no other source. And no page carries inline
// script, event handlers or style attributes, which that policy would
// break (or, if it were loosened, let run).
func TestPagesSendStrictCSP(t *testing.T) {
	ts := newTestServer(t)
	recorded := ts.responses()
	pages := map[string]string{}

	b := newBrowser(t, ts)
	authURL := ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	resp, _ := b.get(authURL)
	loginURL := location(t, resp).String()
	_, pages["login"] = b.get(loginURL)
	f := hiddenFields(pages["login"])
	f.Set("username", testUser)
	f.Set("password", "wrong")
	_, pages["login failed"] = b.post(ts.URL+endpoints.LoginPath, f)
	g := hiddenFields(pages["login"])
	g.Set("csrf_token", "forged")
	_, pages["csrf refused"] = b.post(ts.URL+endpoints.LoginPath, g)
	f.Set("password", testPassword)
	resp, _ = b.post(ts.URL+endpoints.LoginPath, f)
	_, pages["consent"] = b.get(location(t, resp).String())
	_, pages["unknown client"] = b.get(ts.URL + endpoints.AuthorizePath + "?client_id=nobody")
	_, pages["expired flow"] = b.get(ts.URL + endpoints.LoginPath + "?auth_request=gone")
	req, _ := http.NewRequest(http.MethodPut, ts.URL+endpoints.ConsentPath, nil)
	_, pages["method not allowed"] = b.do(req)

	sum := ts.srv.pages.StyleSource()
	checked := 0
	for name, hs := range recorded() {
		if !strings.Contains(name, endpoints.LoginPath) && !strings.Contains(name, endpoints.ConsentPath) && !strings.Contains(name, endpoints.AuthorizePath) {
			continue
		}
		for _, h := range hs {
			if !strings.HasPrefix(h.Get("Content-Type"), "text/html") || h.Get("Location") != "" {
				continue
			}
			checked++
			csp := h.Get("Content-Security-Policy")
			d := cspDirectives(csp)
			formAction := d["form-action"]
			delete(d, "form-action")
			want := map[string][]string{
				"default-src": {"'none'"}, "script-src": {"'none'"}, "style-src": {sum},
				"frame-ancestors": {"'none'"}, "base-uri": {"'none'"},
			}
			if len(d) != len(want) {
				t.Errorf("%s: CSP %q has directives beyond %v", name, csp, want)
			}
			for k, v := range want {
				if !slices.Equal(d[k], v) {
					t.Errorf("%s: CSP %s is %q, want %q (policy %q)", name, k, d[k], v, csp)
				}
			}
			if len(formAction) == 0 || formAction[0] != "'self'" || len(formAction) > 2 || (len(formAction) == 2 && formAction[1] != "http://127.0.0.1:9999") {
				t.Errorf("%s: form-action %q", name, formAction)
			}
			if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") || strings.Contains(csp, "data:") {
				t.Errorf("%s: CSP %q allows too much", name, csp)
			}
			if h.Get("Strict-Transport-Security") != "" {
				t.Errorf("%s: Strict-Transport-Security under an http issuer", name)
			}
		}
	}

	if checked < len(pages) {
		t.Errorf("checked the CSP of %d pages, want at least %d", checked, len(pages))
	}

	inline := regexp.MustCompile(`(?i)<script|\son[a-z]+\s*=|\sstyle\s*=|javascript:|<link|<img|<iframe|<object|<embed|@import|url\(`)
	for name, page := range pages {
		if !strings.Contains(page, "<style>") {
			t.Errorf("%s: not a Gatehouse page: %.200s", name, page)
		}
		if m := inline.FindString(page); m != "" {
			t.Errorf("%s: page carries %q", name, m)
		}
	}
}

func mustParseURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
