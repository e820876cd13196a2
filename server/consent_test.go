package server

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// postRedirects records the status of every redirect the server answers a
// POST with, from here on.
func (ts *testServer) postRedirects() func() []string {
	var mu sync.Mutex
	var seen []string
	inner := ts.Config.Handler
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		inner.ServeHTTP(rec, r)
		if r.Method == http.MethodPost && rec.status >= 300 && rec.status < 400 {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, r.URL.Path+" → "+http.StatusText(rec.status)+" to "+rec.Header().Get("Location"))
		}
	})
	return func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

// Every redirect that answers a POST is 303 See Other, so the browser
// never re-sends the form (the password, the CSRF token) to where it is
// sent (RFC 9700 §4.12): login to consent, login straight back to the app,
// consent approve, consent deny, and consent without a session.
func TestRedirectAfterPostIsSeeOther(t *testing.T) {
	ts := newTestServer(t)
	recorded := ts.postRedirects()
	v := oauth2.GenerateVerifier()

	// Deny, after login → consent.
	back := newBrowser(t, ts).authorize(ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "deny", false)
	if back.Query().Get("error") != ErrAccessDenied {
		t.Fatalf("deny went to %s", back)
	}
	// Approve.
	newBrowser(t, ts).authorize(ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "approve", false)
	// Login straight back to the app: a skipConsent client.
	legacy := &oauth2.Config{ClientID: noPKCEClientID, RedirectURL: webRedirect, Scopes: []string{"orders:read"},
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + endpoints.AuthorizePath}}
	newBrowser(t, ts).authorize(legacy.AuthCodeURL("s"), "approve", false)
	// A consent post from a browser that is not logged in: back to login.
	b := newBrowser(t, ts)
	resp, _ := b.get(ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	_, page := b.get(location(t, resp).String())
	f := hiddenFields(page)
	f.Set("decision", "approve")
	resp, _ = b.post(ts.URL+endpoints.ConsentPath, f)
	if u := location(t, resp); u.Path != endpoints.LoginPath {
		t.Fatalf("consent without a session went to %s", u)
	}

	got := recorded()
	if len(got) < 6 {
		t.Fatalf("only %d redirects after a POST were seen: %q", len(got), got)
	}
	for _, r := range got {
		if !strings.Contains(r, "→ See Other to") {
			t.Errorf("redirect after POST: %s, want 303 See Other", r)
		}
	}
}

// A public client never skips the consent page: not with a remembered
// decision, and not with skipConsent (which the CRD refuses, but an object
// stored before that rule may carry). RFC 6749 §10.2, RFC 8252 §8.6.
func TestPublicClientAlwaysAsksConsent(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.spaConfig("orders:read")
	v := oauth2.GenerateVerifier()
	b := newBrowser(t, ts)

	// First run: the page offers no "remember", and a forged remember=yes
	// is not stored.
	resp, _ := b.get(cfg.AuthCodeURL("a", oauth2.S256ChallengeOption(v)))
	_, page := b.get(location(t, resp).String())
	f := hiddenFields(page)
	f.Set("username", testUser)
	f.Set("password", testPassword)
	resp, _ = b.post(ts.URL+endpoints.LoginPath, f)
	consentURL := location(t, resp)
	if consentURL.Path != endpoints.ConsentPath {
		t.Fatalf("after login: %s, want the consent page", consentURL)
	}
	resp, page = b.get(consentURL.String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Orders SPA") || !strings.Contains(page, "Read your orders") {
		t.Fatalf("consent page: %d %s", resp.StatusCode, page)
	}
	if strings.Contains(page, "Remember this decision") || strings.Contains(page, `name="remember"`) {
		t.Error("the consent page offers to remember a public client's consent")
	}
	f = hiddenFields(page)
	f.Set("decision", "approve")
	f.Set("remember", "yes")
	resp, _ = b.post(ts.URL+endpoints.ConsentPath, f)
	if u := location(t, resp); !strings.HasPrefix(u.String(), spaRedirect) || u.Query().Get("code") == "" {
		t.Fatalf("approve went to %s", u)
	}
	if _, err := ts.store.GetConsent(ctx(t), testSubject, spaClientID, ts.clock.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a public client's consent was remembered (err %v)", err)
	}

	// A remembered decision from elsewhere (stored before this rule, or by
	// another replica's older version) does not skip the page either.
	if err := ts.store.SaveConsent(ctx(t), storage.Consent{Subject: testSubject, ClientID: spaClientID, Scopes: []string{"orders:read"},
		GrantedAt: ts.clock.Now(), ExpiresAt: ts.clock.Now().Add(ts.srv.consentTTL)}); err != nil {
		t.Fatal(err)
	}
	resp, _ = b.get(cfg.AuthCodeURL("b", oauth2.S256ChallengeOption(v)))
	if u := location(t, resp); u.Path != endpoints.ConsentPath {
		t.Errorf("with a remembered consent, a logged-in user was sent to %s; want the consent page", u)
	}

	// Nor does skipConsent, nor asking only for scopes that need no
	// consent: the page is shown, and says what the app learns.
	ts.update(func(s *config.Snapshot) {
		spa := *s.Clients.Get(spaClientID)
		spa.SkipConsent = true
		spa.AllowedScopes = []string{"orders:read", "basic"}
		s.Clients = s.Clients.With(&spa)
	})
	for _, scopes := range [][]string{{"orders:read"}, {"basic"}} {
		resp, _ = b.get(ts.spaConfig(scopes...).AuthCodeURL("c", oauth2.S256ChallengeOption(v)))
		u := location(t, resp)
		if u.Path != endpoints.ConsentPath {
			t.Errorf("skipConsent public client, scopes %v: sent to %s; want the consent page", scopes, u)
			continue
		}
		resp, page = b.get(u.String())
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Allow access?") {
			t.Errorf("scopes %v: consent page %d", scopes, resp.StatusCode)
		}
		if scopes[0] == "basic" && !strings.Contains(page, "It will know which account you signed in with.") {
			t.Errorf("consent page without scopes to list does not say what the app learns: %s", page)
		}
	}
}
