package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

// maxReplicaSkew is the clock skew between token-server replicas that
// TestClockSkewBetweenReplicas proves harmless (docs/operations.md).
const maxReplicaSkew = 2 * time.Minute

// skewedReplicas is two token servers on one PostgreSQL database behind
// one issuer, B's clock skew ahead of A's (behind when negative).
type skewedReplicas struct {
	ts         *testServer
	a, b       *Server
	srcA, srcB *config.Static
	clkA, clkB *clock
	target     *Server
	cfg        *oauth2.Config
}

func newSkewedReplicas(t *testing.T, dbURL string, skew time.Duration) *skewedReplicas {
	t.Helper()
	r := &skewedReplicas{}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.target.ServeHTTP(w, req) }))
	t.Cleanup(front.Close)
	now := time.Now()
	r.clkA, r.clkB = &clock{t: now}, &clock{t: now.Add(skew)}
	snap := testSnapshot(t, front.URL, now)
	r.srcA, r.srcB = config.NewStatic(snap), config.NewStatic(snap)
	for _, rep := range []struct {
		srv **Server
		src *config.Static
		clk *clock
	}{{&r.a, r.srcA, r.clkA}, {&r.b, r.srcB, r.clkB}} {
		store, err := postgres.Open(t.Context(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		if *rep.srv, err = New(Options{Source: rep.src, Store: store, Now: rep.clk.Now}); err != nil {
			t.Fatal(err)
		}
	}
	r.ts = &testServer{Server: front, clock: r.clkA, src: r.srcA}
	// The operator's key set: ES256 for access tokens, RS256 for ID tokens;
	// and an OpenID Connect client.
	withOIDC(t, r.ts)
	r.srcB.Set(r.srcA.Current())
	r.cfg = &oauth2.Config{ClientID: oidcClientID, ClientSecret: oidcSecret, RedirectURL: oidcRedirect,
		Scopes:   []string{"openid", "offline_access", "orders:read"},
		Endpoint: oauth2.Endpoint{AuthURL: front.URL + endpoints.AuthorizePath, TokenURL: front.URL + endpoints.TokenPath, AuthStyle: oauth2.AuthStyleInHeader}}
	return r
}

// advance moves both clocks, keeping the skew.
func (r *skewedReplicas) advance(d time.Duration) { r.clkA.Advance(d); r.clkB.Advance(d) }

// setKeys gives both replicas the key set, as the operator's Secret
// reaching both informers would.
func (r *skewedReplicas) setKeys(set *keyset.Set) {
	for _, src := range []*config.Static{r.srcA, r.srcB} {
		snap := *src.Current()
		snap.Keys = set
		src.Set(&snap)
	}
}

// TestClockSkewBetweenReplicas runs two replicas whose clocks are
// maxReplicaSkew apart, either way round, on one PostgreSQL: a code
// issued by one is redeemed at the other, refresh tokens move between
// them, each one's access tokens are active at the other's introspection
// and its ID tokens verify against the other's JWKS, and a signing-key
// rotation (prepublished, then activated by the operator) never leaves
// either without a key or with a token the other cannot check.
func TestClockSkewBetweenReplicas(t *testing.T) {
	dbURL := startPostgres(t)
	for _, skew := range []time.Duration{maxReplicaSkew, -maxReplicaSkew} {
		t.Run("B "+skew.String(), func(t *testing.T) {
			r := newSkewedReplicas(t, dbURL, skew)
			for _, hop := range [][2]*Server{{r.a, r.b}, {r.b, r.a}} {
				r.codeAndTokensAcross(t, hop[0], hop[1])
			}
			r.rotationAcross(t)
		})
	}
}

// codeAndTokensAcross logs in at from and redeems the code at to 30 s
// later, then refreshes at from, and checks each replica's tokens at the
// other.
func (r *skewedReplicas) codeAndTokensAcross(t *testing.T, from, to *Server) {
	t.Helper()
	r.target = from
	verifier := oauth2.GenerateVerifier()
	back := newBrowser(t, r.ts).authorize(r.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n")), "approve", false)
	if back.Query().Get("code") == "" {
		t.Fatalf("no code: back at %s", back)
	}
	r.advance(30 * time.Second)
	r.target = to
	tok, err := r.cfg.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("a code issued by one replica, redeemed at the other 30 s later: %v", err)
	}
	r.target = from
	next, err := r.cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		t.Fatalf("a refresh token issued by one replica, used at the other: %v", err)
	}
	r.tokensValidAt(t, to, next)
	r.tokensValidAt(t, from, tok)
}

// tokensValidAt checks that at is active at srv's introspection and that
// the ID token verifies against srv's JWKS.
func (r *skewedReplicas) tokensValidAt(t *testing.T, srv *Server, tok *oauth2.Token) {
	t.Helper()
	r.target = srv
	if got := r.ts.introspect(t, tok.AccessToken); got["active"] != true {
		t.Errorf("an access token of one replica at the other's introspection: %v", got)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no ID token")
	}
	keys := oidc.NewRemoteKeySet(context.Background(), r.ts.URL+endpoints.JWKSPath)
	if _, err := keys.VerifySignature(t.Context(), raw); err != nil {
		t.Errorf("an ID token of one replica against the other's JWKS: %v", err)
	}
}

// rotationAcross publishes a next key that activates in 10 minutes, then
// walks the replicas through the activation: before the operator marks
// it active (the replica whose clock is ahead signs with it first), and
// after (the operator retires the old key; the replica whose clock is
// behind must sign with the new one rather than with none).
func (r *skewedReplicas) rotationAcross(t *testing.T) {
	t.Helper()
	set := r.srcA.Current().Keys
	old, idKey := set.Keys[0], set.Keys[1]
	next, err := keyset.Generate(keyset.ES256)
	if err != nil {
		t.Fatal(err)
	}
	activates := r.clkA.Now().Add(10 * time.Minute)
	next.State, next.Created, next.ActivatesAt = keyset.StateNext, r.clkA.Now(), activates
	keys := func(k ...keyset.Key) *keyset.Set { return &keyset.Set{Keys: k, AccessTokenAlgorithm: keyset.ES256} }
	r.setKeys(keys(old, idKey, next))
	// Around the activation, in true time (A's clock): each replica's
	// tokens are checked at the other.
	for _, at := range []time.Duration{-maxReplicaSkew / 2, maxReplicaSkew / 2} {
		r.advance(activates.Add(at).Sub(r.clkA.Now()))
		if at > 0 { // the operator has activated next and retired old
			o, n := old, next
			o.State, n.State = keyset.StateRetired, keyset.StateActive
			r.setKeys(keys(o, idKey, n))
		}
		tokens := map[*Server]*oauth2.Token{}
		for _, srv := range []*Server{r.a, r.b} {
			r.target = srv
			tok, err := r.ts.ccConfig(ccClientID, ccSecret).Token(t.Context())
			if err != nil {
				t.Fatalf("%s from the activation: client_credentials at a replica: %v", at, err)
			}
			tokens[srv] = tok
			if kid := jwtKid(t, tok.AccessToken); kid != old.ID && kid != next.ID {
				t.Errorf("%s from the activation: an access token signed by %s, neither the old nor the new ES256 key", at, kid)
			}
		}
		for srv, tok := range tokens {
			other := r.a
			if srv == r.a {
				other = r.b
			}
			r.target = other
			if got := r.ts.introspect(t, tok.AccessToken); got["active"] != true {
				t.Errorf("%s from the activation: a token signed by %v, introspected at the other replica: %v", at, jwtKid(t, tok.AccessToken), got)
			}
		}
		t.Logf("%s from the activation: A signs with %s, B with %s", at, keyName(jwtKid(t, tokens[r.a].AccessToken), old, next),
			keyName(jwtKid(t, tokens[r.b].AccessToken), old, next))
	}
}

func keyName(kid string, old, next keyset.Key) string {
	switch kid {
	case old.ID:
		return "the old key"
	case next.ID:
		return "the new key"
	}
	return kid
}

func jwtKid(t *testing.T, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}
