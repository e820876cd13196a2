package resourceserver

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testAudience = "orders-api"

// clock is an injected clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeIssuer serves RFC 8414 metadata and a JWKS on 127.0.0.1 and signs
// tokens the way the Gatehouse token server does.
type fakeIssuer struct {
	t     testing.TB
	srv   *httptest.Server
	URL   string
	clock *clock

	mu           sync.Mutex
	published    []testKey
	status       int    // JWKS response status; 0 means 200
	body         []byte // JWKS body override
	cacheControl string
	gate         chan struct{} // if set, JWKS requests wait for it to close

	jwksFetches atomic.Int64
	metaFetches atomic.Int64
}

func newIssuer(t testing.TB, algs ...string) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{t: t, clock: newClock()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		f.metaFetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": f.URL, "jwks_uri": f.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", f.serveJWKS)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.URL = f.srv.URL
	if len(algs) == 0 {
		algs = []string{es256}
	}
	for _, alg := range algs {
		f.addKey(alg)
	}
	return f
}

func (f *fakeIssuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	f.jwksFetches.Add(1)
	f.mu.Lock()
	gate, status, body, cc := f.gate, f.status, f.body, f.cacheControl
	published := append([]testKey(nil), f.published...)
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if status != 0 && status != http.StatusOK {
		http.Error(w, "unavailable", status)
		return
	}
	if body == nil {
		body = jwksJSON(published...)
	}
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(body)
}

// addKey generates a key and publishes it.
func (f *fakeIssuer) addKey(alg string) testKey {
	f.t.Helper()
	k := mustGenerateKey(f.t, alg)
	f.mu.Lock()
	f.published = append(f.published, k)
	f.mu.Unlock()
	return k
}

// unpublish removes a key from the JWKS.
func (f *fakeIssuer) unpublish(kid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, k := range f.published {
		if k.ID == kid {
			f.published = append(f.published[:i], f.published[i+1:]...)
			return
		}
	}
}

func (f *fakeIssuer) set(fn func(f *fakeIssuer)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func (f *fakeIssuer) key(i int) testKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.published[i]
}

// claims are a valid token's claims at the issuer's clock.
func (f *fakeIssuer) claims() jwt.MapClaims {
	now := f.clock.Now()
	return jwt.MapClaims{
		"iss":       f.URL,
		"sub":       "alice",
		"aud":       []string{testAudience, "other-api"},
		"client_id": "web",
		"scope":     "orders:read profile",
		"jti":       "jti-1",
		"iat":       now.Unix(),
		"exp":       now.Add(5 * time.Minute).Unix(),
		"auth_time": now.Add(-time.Minute).Unix(),
	}
}

// token signs a token with key; edit may change header and claims.
func (f *fakeIssuer) tokenWith(key testKey, edit func(h map[string]any, c jwt.MapClaims)) string {
	f.t.Helper()
	method := jwt.GetSigningMethod(key.Algorithm)
	t := &jwt.Token{
		Header: map[string]any{"typ": "at+jwt", "alg": key.Algorithm, "kid": key.ID},
		Claims: f.claims(),
		Method: method,
	}
	if edit != nil {
		edit(t.Header, t.Claims.(jwt.MapClaims))
	}
	if alg, ok := t.Header["alg"].(string); ok && alg != key.Algorithm {
		if m := jwt.GetSigningMethod(alg); m != nil {
			t.Method = m
		}
	}
	s, err := t.SignedString(key.Signer())
	if err != nil {
		f.t.Fatalf("signing: %v", err)
	}
	return s
}

func (f *fakeIssuer) token(edit func(h map[string]any, c jwt.MapClaims)) string {
	return f.tokenWith(f.key(0), edit)
}

// validator makes a Validator for the issuer, with its clock.
func (f *fakeIssuer) validator(edit func(*Config)) *Validator {
	f.t.Helper()
	cfg := Config{Issuer: f.URL, Audience: testAudience, Now: f.clock.Now, HTTPClient: f.srv.Client()}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := New(ctx, cfg)
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	return v
}

// waitFetches waits until the JWKS was fetched n times and any fetch has
// finished updating the cache.
func waitFetches(t *testing.T, f *fakeIssuer, v *Validator, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v.keys.mu.Lock()
		idle := v.keys.flight == nil
		v.keys.mu.Unlock()
		if f.jwksFetches.Load() >= n && idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("JWKS fetched %d times, want %d", f.jwksFetches.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := f.jwksFetches.Load(); got != n {
		t.Fatalf("JWKS fetched %d times, want %d", got, n)
	}
}

// unsigned builds a token with the given alg and an empty signature.
func unsigned(f *fakeIssuer, alg, kid string) string {
	h := map[string]any{"typ": "at+jwt", "kid": kid}
	if alg != "" {
		h["alg"] = alg
	}
	hj, _ := json.Marshal(h)
	cj, _ := json.Marshal(f.claims())
	enc := base64.RawURLEncoding.EncodeToString
	return enc(hj) + "." + enc(cj) + "."
}

// hmacWithPublicKey is the algorithm-confusion forgery: HS256 keyed with
// the bytes of the issuer's public key.
func hmacWithPublicKey(t *testing.T, f *fakeIssuer, k testKey) string {
	t.Helper()
	pub, err := x509.MarshalPKIXPublicKey(k.Signer().Public())
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, f.claims())
	tok.Header["typ"], tok.Header["kid"] = "at+jwt", k.ID
	s, err := tok.SignedString(pub)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signedPayload signs an arbitrary payload.
func signedPayload(t *testing.T, k testKey, payload string) string {
	t.Helper()
	hj, _ := json.Marshal(map[string]any{"typ": "at+jwt", "alg": k.Algorithm, "kid": k.ID})
	enc := base64.RawURLEncoding.EncodeToString
	input := enc(hj) + "." + enc([]byte(payload))
	sig, err := jwt.GetSigningMethod(k.Algorithm).Sign(input, k.Signer())
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + enc(sig)
}
