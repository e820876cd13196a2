package server

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// gatedStore holds the named operation until the test opens the gate, so
// that a request can be kept in flight.
type gatedStore struct {
	storage.Store
	op      string
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func newGatedStore(op string) *gatedStore {
	return &gatedStore{op: op, entered: make(chan struct{}, 16), gate: make(chan struct{})}
}

func (g *gatedStore) wait(op string) {
	if op == g.op {
		g.entered <- struct{}{}
		<-g.gate
	}
}

func (g *gatedStore) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedStore) GetRefreshToken(ctx context.Context, hash string, now time.Time) (storage.RefreshToken, error) {
	g.wait("GetRefreshToken")
	return g.Store.GetRefreshToken(ctx, hash, now)
}

func (g *gatedStore) CreateSession(ctx context.Context, s storage.Session) error {
	g.wait("CreateSession")
	return g.Store.CreateSession(ctx, s)
}

// With every slot taken, a token request is answered at once with 503
// temporarily_unavailable and Retry-After, not queued; once a slot frees
// up, the same request succeeds.
func TestOverloadIsShedWithRetryAfter(t *testing.T) {
	g := newGatedStore("GetRefreshToken")
	ts := newTestServerWith(t, func(o *Options) {
		g.Store = o.Store
		o.Store = g
		o.MaxConcurrentRequests = 1
	})
	t.Cleanup(g.open)
	rt := storedRefreshToken(t, ts)
	done := make(chan *http.Response)
	go func() {
		done <- ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, webClientID, webSecret)
	}()
	<-g.entered

	form := url.Values{"grant_type": {"client_credentials"}}
	resp := ts.postForm(t, endpoints.TokenPath, form, ccClientID, ccSecret)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("a shed request has no Retry-After")
	}
	assertOAuthError(t, resp, http.StatusServiceUnavailable, ErrTemporarilyUnavailable)

	g.open()
	if r := <-done; r.StatusCode != http.StatusOK {
		t.Errorf("the request in flight: %d, want 200", r.StatusCode)
	}
	if _, err := ts.ccConfig(ccClientID, ccSecret).Token(ctx(t)); err != nil {
		t.Errorf("after the load went: %v", err)
	}
}

// Password logins have slots of their own: logins that hold every one of
// them (bcrypt, then storing the session) leave token issuance alone, and
// a login beyond them waits briefly, then gets a 503 page with
// Retry-After.
func TestLoginFloodDoesNotStarveTokens(t *testing.T) {
	g := newGatedStore("CreateSession")
	ts := newTestServerWith(t, func(o *Options) {
		g.Store = o.Store
		o.Store = g
		o.MaxConcurrentLogins = 1
		o.MaxConcurrentRequests = 1
	})
	t.Cleanup(g.open)
	cfg := ts.webConfig("orders:read")
	loginForm := func() (*browser, url.Values) {
		b := newBrowser(t, ts)
		resp, _ := b.get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		_, page := b.get(location(t, resp).String())
		f := hiddenFields(page)
		f.Set("username", testUser)
		f.Set("password", testPassword)
		return b, f
	}
	b1, f1 := loginForm()
	b2, f2 := loginForm()
	first := make(chan int)
	go func() {
		resp, _ := b1.post(ts.URL+endpoints.LoginPath, f1)
		first <- resp.StatusCode
	}()
	<-g.entered

	// The one login slot is taken: tokens are still issued through the
	// one request slot, which a login holding it would have blocked.
	for i := range 5 {
		if _, err := ts.ccConfig(ccClientID, ccSecret).Token(ctx(t)); err != nil {
			t.Fatalf("token %d during the login flood: %v", i, err)
		}
	}
	resp, page := b2.post(ts.URL+endpoints.LoginPath, f2)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a login beyond the login slots: %d, Retry-After %q; want 503 with Retry-After\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), page)
	}
	g.open()
	if code := <-first; code != http.StatusSeeOther {
		t.Errorf("the login in flight: %d, want 303", code)
	}
}
