package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

// TestTwoReplicasSharePostgres runs two token servers (replicas) on one
// PostgreSQL database behind one issuer, the way an HA deployment does:
// a code issued by one is redeemed at the other, a replay at either
// revokes what was issued, and a refresh token rotated on one and reused
// on the other revokes the family.
func TestTwoReplicasSharePostgres(t *testing.T) {
	dbURL := startPostgres(t)

	// One issuer in front (a "load balancer" sending each request to the
	// replica the test picks), two servers behind it.
	var target http.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { target.ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	clk := &clock{t: time.Now()}
	snap := testSnapshot(t, front.URL, clk.Now())
	replicas := make([]*Server, 2)
	for i := range replicas {
		store, err := postgres.Open(t.Context(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		if replicas[i], err = New(Options{Source: config.NewStatic(snap), Store: store, Now: clk.Now}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := replicas[0], replicas[1]
	ts := &testServer{Server: front, clock: clk}
	ts.src = config.NewStatic(snap)
	cfg := ts.webConfig("orders:read")

	// Login and consent on A.
	target = a
	verifier := oauth2.GenerateVerifier()
	back := newBrowser(t, ts).authorize(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "approve", false)
	code := back.Query().Get("code")

	// Redeem on B.
	target = b
	tok, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("redeeming A's code on B: %v", err)
	}
	// Replay on A: refused, and B's tokens are revoked for both replicas.
	target = a
	if _, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); retrieveError(t, err).ErrorCode != ErrInvalidGrant {
		t.Fatal("replay accepted")
	}
	// B learns of the revocation by NOTIFY, within a second (issue 13).
	target = b
	for began := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		got := ts.introspect(t, tok.AccessToken)
		if got["active"] == false {
			break
		}
		if time.Since(began) > time.Second {
			t.Fatalf("a second after the replay B still sees the access token as %v", got)
		}
	}

	// Refresh family: rotate on A, reuse the old token on B.
	target = a
	back = newBrowser(t, ts).authorize(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "approve", false)
	tok, err = cfg.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt string) *http.Response {
		return ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, webClientID, webSecret)
	}
	resp := refresh(tok.RefreshToken)
	var next struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&next)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh on A: %d", resp.StatusCode)
	}
	// The client moves on with the successor (until then, presenting the
	// old token again is a retry of the same rotation: refreshTokenRetry).
	resp = refresh(next.RefreshToken)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh with the successor on A: %d", resp.StatusCode)
	}
	target = b
	assertOAuthError(t, refresh(tok.RefreshToken), http.StatusBadRequest, ErrInvalidGrant)
	// Client credentials work on either.
	for _, r := range replicas {
		target = r
		if _, err := ts.ccConfig(ccClientID, ccSecret).Token(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// startPostgres starts a PostgreSQL for the test (skipping loudly when its
// binaries are missing) and returns the URL of an empty database.
func startPostgres(t testing.TB) string {
	t.Helper()
	pg, err := testpg.Start()
	if err != nil {
		if missing := (*testpg.MissingBinariesError)(nil); errors.As(err, &missing) {
			testenv.MissingDependency(t, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	return pg.NewDatabase(t)
}
