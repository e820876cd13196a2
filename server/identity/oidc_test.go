package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/server/identity"
)

// fakeOP is a minimal OpenID Provider for the unit tests of the callback's
// checks: it publishes one RSA key and answers the token endpoint with an
// ID token the test shapes. The whole flow against a real provider (a
// second Gatehouse) is in the server package's tests.
type fakeOP struct {
	*httptest.Server
	key, otherKey *rsa.PrivateKey

	mu        sync.Mutex
	challenge string                     // from the last authorization URL
	shape     func(c jwt.MapClaims) bool // edits the claims; true: sign with otherKey
}

// opKeys are the fake provider's key and another one, made once: RSA key
// generation is slow.
var opKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

func newFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	op := &fakeOP{}
	keys := opKeys()
	op.key, op.otherKey = keys[0], keys[1]
	mux := http.NewServeMux()
	op.Server = httptest.NewServer(mux)
	t.Cleanup(op.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": op.URL, "authorization_endpoint": op.URL + "/authorize", "token_endpoint": op.URL + "/token",
			"jwks_uri": op.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		n := base64.RawURLEncoding.EncodeToString(op.key.N.Bytes())
		e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(op.key.E)).Bytes())
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": n, "e": e}}})
	})
	mux.HandleFunc("POST /token", op.token)
	return op
}

func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	id, secret, _ := r.BasicAuth()
	if id != "gatehouse-a" || secret != "upstream-client-secret" {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
		return
	}
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	if r.PostFormValue("code") != "good-code" || base64.RawURLEncoding.EncodeToString(sum[:]) != op.challenge {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
		return
	}
	now := time.Now()
	c := jwt.MapClaims{
		"iss": op.URL, "sub": "upstream-user-1", "aud": "gatehouse-a", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(),
		"preferred_username": "dana", "email": "dana@example.com", "email_verified": true,
		"groups": []string{"admins", "ops"},
	}
	key := op.key
	if op.shape != nil && op.shape(c) {
		key = op.otherKey
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = "k1"
	signed, _ := tok.SignedString(key)
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "id_token": signed, "expires_in": 60})
}

func oidcConfig(op *fakeOP) identity.OIDCConfig {
	return identity.OIDCConfig{
		Name: "corp", DisplayName: "Corp SSO", Issuer: op.URL, ClientID: "gatehouse-a", ClientSecret: "upstream-client-secret",
		Scopes: []string{"profile", "email", "groups"},
	}
}

const redirectURI = "http://127.0.0.1:1/login/callback"

// start begins a login and plays the provider's part of the browser's
// trip: it notes the PKCE challenge and returns the callback's query with
// the nonce the token endpoint should put in the ID token.
func start(t *testing.T, op *fakeOP, src *identity.OIDCSource) (identity.Pending, url.Values) {
	t.Helper()
	u, pend, err := src.Start(context.Background(), redirectURI)
	if err != nil {
		t.Fatal(err)
	}
	au, _ := url.Parse(u)
	q := au.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") != pend.Nonce || q.Get("state") != pend.State || q.Get("redirect_uri") != redirectURI {
		t.Fatalf("authorization URL %s lacks PKCE, nonce, state or redirect_uri", u)
	}
	op.mu.Lock()
	op.challenge = q.Get("code_challenge")
	op.mu.Unlock()
	return pend, url.Values{"code": {"good-code"}, "state": {pend.State}}
}

// nonceFor makes the token endpoint put nonce in the ID token (the fake
// cannot know the browser's nonce otherwise).
func (op *fakeOP) nonceFor(nonce string, more func(jwt.MapClaims) bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.shape = func(c jwt.MapClaims) bool {
		c["nonce"] = nonce
		if more != nil {
			return more(c)
		}
		return false
	}
}

func TestOIDCFinish(t *testing.T) {
	op := newFakeOP(t)
	src := identity.NewOIDC(oidcConfig(op))
	pend, cb := start(t, op, src)
	op.nonceFor(pend.Nonce, nil)
	p, err := src.Finish(context.Background(), redirectURI, pend, cb)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != identity.UpstreamSubject("corp", op.URL+"\x00upstream-user-1") || p.Username != "dana" || p.Email != "dana@example.com" || !p.EmailVerified || strings.Join(p.Groups, ",") != "admins,ops" {
		t.Fatalf("person: %+v", p)
	}
	if err := src.Check(context.Background()); err != nil {
		t.Fatalf("Check with good credentials: %v", err)
	}
}

// Forged and replayed callbacks, and ID tokens that fail any check, are
// refused: nothing about the person is believed.
func TestOIDCRefusesForgedCallbacks(t *testing.T) {
	op := newFakeOP(t)
	src := identity.NewOIDC(oidcConfig(op))
	cases := []struct {
		name  string
		query func(pend identity.Pending, cb url.Values)
		shape func(c jwt.MapClaims) bool
		want  error
	}{
		{"wrong state", func(_ identity.Pending, cb url.Values) { cb.Set("state", "attacker-state") }, nil, identity.ErrRejected},
		{"no state", func(_ identity.Pending, cb url.Values) { cb.Del("state") }, nil, identity.ErrRejected},
		{"a code PKCE does not bind to this login", func(_ identity.Pending, cb url.Values) { cb.Set("code", "attacker-code") }, nil, identity.ErrRejected},
		{"wrong nonce (a replayed ID token)", nil, func(c jwt.MapClaims) bool { c["nonce"] = "other-login"; return false }, identity.ErrRejected},
		{"ID token for another audience", nil, func(c jwt.MapClaims) bool { c["aud"] = "some-other-client"; return false }, identity.ErrRejected},
		{"ID token signed by another key", nil, func(jwt.MapClaims) bool { return true }, identity.ErrRejected},
		{"ID token from another issuer", nil, func(c jwt.MapClaims) bool { c["iss"] = "https://evil.example"; return false }, identity.ErrRejected},
		{"expired ID token", nil, func(c jwt.MapClaims) bool { c["exp"] = time.Now().Add(-time.Hour).Unix(); return false }, identity.ErrRejected},
		{"the provider's access_denied", func(_ identity.Pending, cb url.Values) { cb.Del("code"); cb.Set("error", "access_denied") }, nil, identity.ErrNotAllowed},
	}
	for _, c := range cases {
		pend, cb := start(t, op, src)
		op.nonceFor(pend.Nonce, c.shape)
		if c.query != nil {
			c.query(pend, cb)
		}
		p, err := src.Finish(context.Background(), redirectURI, pend, cb)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %+v, %v; want %v", c.name, p, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "good-code") || strings.Contains(err.Error(), "upstream-client-secret")) {
			t.Errorf("%s: the error carries the code or the secret: %v", c.name, err)
		}
	}
	// The same callback twice: the second has no pending login to match
	// (the server forgets it after the first), so its state is refused.
	pend, cb := start(t, op, src)
	op.nonceFor(pend.Nonce, nil)
	if _, err := src.Finish(context.Background(), redirectURI, pend, cb); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Finish(context.Background(), redirectURI, identity.Pending{}, cb); !errors.Is(err, identity.ErrRejected) {
		t.Fatalf("replayed callback: %v", err)
	}
}

func TestOIDCAllowedGroups(t *testing.T) {
	op := newFakeOP(t)
	cfg := oidcConfig(op)
	cfg.AllowedGroups = []string{"finance"}
	src := identity.NewOIDC(cfg)
	pend, cb := start(t, op, src)
	op.nonceFor(pend.Nonce, nil)
	if _, err := src.Finish(context.Background(), redirectURI, pend, cb); !errors.Is(err, identity.ErrNotAllowed) {
		t.Fatalf("dana is not in finance: %v", err)
	}
	cfg.AllowedGroups = []string{"finance", "ops"}
	src = identity.NewOIDC(cfg)
	pend, cb = start(t, op, src)
	op.nonceFor(pend.Nonce, nil)
	if _, err := src.Finish(context.Background(), redirectURI, pend, cb); err != nil {
		t.Fatalf("dana is in ops: %v", err)
	}
}

// A provider that is down fails the login with ErrUnavailable, and Check
// tells refused credentials from an unreachable provider.
func TestOIDCUnavailableAndCheck(t *testing.T) {
	op := newFakeOP(t)
	cfg := oidcConfig(op)
	cfg.ClientSecret = "wrong"
	if err := identity.NewOIDC(cfg).Check(context.Background()); !errors.Is(err, identity.ErrCredentialsRejected) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("Check with a wrong secret: %v", err)
	}
	down := oidcConfig(op)
	down.Issuer = "http://127.0.0.1:1"
	src := identity.NewOIDC(down)
	if _, _, err := src.Start(context.Background(), redirectURI); !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("Start at a provider that is down: %v", err)
	}
	if err := src.Check(context.Background()); !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("Check at a provider that is down: %v", err)
	}
}
