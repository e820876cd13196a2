package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

// Single sign-on for a plain OAuth request: a browser that logged in and
// consented gets its next code at once, minutes later too. (A request
// without openid has no max_age; it used to be read as max_age=0, which
// sent every such request back to the login page once any time passed.)
func TestSingleSignOnWithoutOpenID(t *testing.T) {
	ts := newTestServer(t)
	b := newBrowser(t, ts)
	ts.codeFor(t, b, "orders:read")
	ts.clock.Advance(5 * time.Minute)
	verifier := oauth2.GenerateVerifier()
	resp, _ := b.get(ts.webConfig("orders:read").AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)))
	back := location(t, resp)
	if !strings.HasPrefix(back.String(), webRedirect) || back.Query().Get("code") == "" || back.Query().Get("state") != "s2" {
		t.Fatalf("a logged-in browser with a remembered consent was sent to %s, want the app with a code", back)
	}
	if _, err := ts.webConfig("orders:read").Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
}

// The single-sign-on flow against real PostgreSQL: /authorize with a live
// session and a remembered consent, then the code exchange, in counted
// statements (each one round trip: prepared statements are cached after
// the first flow). Session and consent are read together; the request is
// never stored; the code is stored, then redeemed by a statement that
// stores the refresh token too.
func TestSingleSignOnStorageRoundTrips(t *testing.T) {
	counter := &testpg.StatementCounter{}
	store, err := postgres.Open(t.Context(), startPostgres(t), postgres.WithQueryTracer(counter))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// The revocation listener's start-up probe goes through the pool too.
	for began := time.Now(); !store.RevocationsLive(); time.Sleep(5 * time.Millisecond) {
		if time.Since(began) > 10*time.Second {
			t.Fatal("the revocation listener never became live")
		}
	}
	ts := newTestServerWith(t, func(o *Options) { o.Store = store })
	b := newBrowser(t, ts)
	cfg := ts.webConfig("orders:read")
	flow := func() int64 {
		t.Helper()
		before := counter.Count()
		verifier := oauth2.GenerateVerifier()
		resp, _ := b.get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize: %d", resp.StatusCode)
		}
		code := location(t, resp).Query().Get("code")
		if _, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("exchange: %v", err)
		}
		return counter.Count() - before
	}
	ts.codeFor(t, b, "orders:read") // login and remembered consent
	flow()                          // prepares the statements
	// GetSessionConsent, CreateCode; RedeemCode with the first refresh
	// token (it was 4 while the refresh token took a statement of its own).
	const want = 3
	if got := flow(); got != want {
		t.Errorf("a single-sign-on flow took %d statements, want %d", got, want)
	}
}
