package resourceserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestDiscoveryAndInitialFetch(t *testing.T) {
	f := newIssuer(t)
	f.validator(nil)
	if got := f.metaFetches.Load(); got != 1 {
		t.Errorf("metadata fetched %d times, want 1", got)
	}
	if got := f.jwksFetches.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1", got)
	}
	// JWKSURL skips discovery.
	f.validator(func(c *Config) { c.JWKSURL = f.URL + "/jwks" })
	if got := f.metaFetches.Load(); got != 1 {
		t.Errorf("metadata fetched %d times with JWKSURL set, want 1", got)
	}
}

func TestMetadataURL(t *testing.T) {
	for issuer, want := range map[string]string{
		"https://auth.example.test":            "https://auth.example.test/.well-known/oauth-authorization-server",
		"https://auth.example.test/":           "https://auth.example.test/.well-known/oauth-authorization-server",
		"https://example.test/tenants/a":       "https://example.test/.well-known/oauth-authorization-server/tenants/a",
		"http://127.0.0.1:8080/gatehouse/dev/": "http://127.0.0.1:8080/.well-known/oauth-authorization-server/gatehouse/dev",
	} {
		got, err := MetadataURL(issuer)
		if err != nil || got != want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", issuer, got, err, want)
		}
	}
}

// A token signed by a key published after our last fetch makes us fetch
// again, once, however many requests carry it at the same moment.
func TestUnknownKidConcurrentRequestsShareOneFetch(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(nil)
	newKey := f.addKey(es256)
	token := f.tokenWith(newKey, nil)
	f.clock.Advance(DefaultMinRefreshInterval)

	gate := make(chan struct{})
	f.set(func(f *fakeIssuer) { f.gate = gate })
	const n = 50
	var done sync.WaitGroup
	var waiting atomic.Int32
	errs := make(chan error, n)
	for range n {
		done.Add(1)
		go func() {
			defer done.Done()
			_, err := v.Validate(&waitingContext{Context: context.Background(), waiting: &waiting}, token)
			errs <- err
		}()
	}
	// Every request waits on the held fetch before it is let go.
	for deadline := time.Now().Add(10 * time.Second); waiting.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests waiting on the fetch", waiting.Load(), n)
		}
	}
	close(gate)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
	}
	if got := f.jwksFetches.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (start-up and one refetch)", got)
	}
}

// waitingContext counts the requests that have begun to wait with it: the
// key cache asks for Done when it waits on a fetch in flight, and nothing
// before it in Validate does.
type waitingContext struct {
	context.Context
	once    sync.Once
	waiting *atomic.Int32
}

func (c *waitingContext) Done() <-chan struct{} {
	c.once.Do(func() { c.waiting.Add(1) })
	return c.Context.Done()
}

// Tokens with made-up kids cannot make us hammer the issuer: at most one
// fetch per MinRefreshInterval.
func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(nil)
	garbage := func(i int) string {
		return f.token(func(h map[string]any, c jwt.MapClaims) { h["kid"] = fmt.Sprintf("made-up-%d", i) })
	}
	// Just after start-up: the fetch New made is too recent.
	for i := range 20 {
		if _, err := v.Validate(context.Background(), garbage(i)); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Validate: %v", err)
		}
	}
	waitFetches(t, f, v, 1)

	f.clock.Advance(DefaultMinRefreshInterval)
	for i := range 20 {
		if _, err := v.Validate(context.Background(), garbage(i)); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Validate: %v", err)
		}
	}
	waitFetches(t, f, v, 2)

	f.clock.Advance(DefaultMinRefreshInterval - time.Second)
	if _, err := v.Validate(context.Background(), garbage(99)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Validate: %v", err)
	}
	waitFetches(t, f, v, 2)
	f.clock.Advance(time.Second)
	if _, err := v.Validate(context.Background(), garbage(100)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Validate: %v", err)
	}
	waitFetches(t, f, v, 3)
}

// Rotation as the operator does it: a new key appears, starts signing,
// the old one is removed later. No restart, no failed validation, and the
// removed key stops validating.
func TestRotationWithoutRestart(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(nil)
	oldKey := f.key(0)
	oldToken := f.tokenWith(oldKey, nil)

	f.clock.Advance(time.Minute)
	newKey := f.addKey(es256)
	newToken := f.tokenWith(newKey, nil)
	for _, tok := range []string{newToken, oldToken} {
		if _, err := v.Validate(context.Background(), tok); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
	}

	f.unpublish(oldKey.ID)
	f.clock.Advance(DefaultRefreshInterval)
	// Stale: this request still uses the cached set, and starts a refresh.
	if _, err := v.Validate(context.Background(), f.tokenWith(newKey, nil)); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	waitFetches(t, f, v, 3)
	if _, err := v.Validate(context.Background(), f.tokenWith(oldKey, nil)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token of a removed key: %v", err)
	}
}

// Cache-Control max-age says when to refresh, within our bounds.
func TestCacheControlMaxAge(t *testing.T) {
	f := newIssuer(t)
	f.set(func(f *fakeIssuer) { f.cacheControl = "public, max-age=60" })
	v := f.validator(nil)
	token := f.token(nil)

	f.clock.Advance(59 * time.Second)
	if _, err := v.Validate(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	waitFetches(t, f, v, 1)

	f.clock.Advance(time.Second)
	if _, err := v.Validate(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	waitFetches(t, f, v, 2)

	// no-cache: refreshed as often as the rate limit allows.
	f.set(func(f *fakeIssuer) { f.cacheControl = "no-cache" })
	f.clock.Advance(60 * time.Second)
	if _, err := v.Validate(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	waitFetches(t, f, v, 3)
	f.clock.Advance(DefaultMinRefreshInterval)
	if _, err := v.Validate(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	waitFetches(t, f, v, 4)
}

func TestCacheMaxAgeParsing(t *testing.T) {
	for value, want := range map[string]time.Duration{
		"":                        0,
		"public":                  0,
		"max-age=300":             5 * time.Minute,
		"public, MAX-AGE=60":      time.Minute,
		`max-age="120"`:           2 * time.Minute,
		"max-age=0":               -1,
		"no-store":                -1,
		"private, no-cache":       -1,
		"max-age=abc":             0,
		"max-age=-5":              0,
		"max-age=999999999999999": maxRefreshInterval,
	} {
		h := http.Header{}
		if value != "" {
			h.Set("Cache-Control", value)
		}
		if got := cacheMaxAge(h); got != want {
			t.Errorf("cacheMaxAge(%q) = %v, want %v", value, got, want)
		}
	}
}

// When the issuer is down or serves garbage, we keep validating with the
// keys we have, and say "unavailable" rather than "invalid" for tokens we
// cannot check.
func TestFailedRefreshKeepsOldKeys(t *testing.T) {
	for name, breakIt := range map[string]func(f *fakeIssuer){
		"500":             func(f *fakeIssuer) { f.status = http.StatusInternalServerError },
		"not JSON":        func(f *fakeIssuer) { f.body = []byte("<html>") },
		"no usable keys":  func(f *fakeIssuer) { f.body = []byte(`{"keys":[{"kty":"oct","kid":"x","k":"c2VjcmV0"}]}`) },
		"empty key set":   func(f *fakeIssuer) { f.body = []byte(`{"keys":[]}`) },
		"too large a set": func(f *fakeIssuer) { f.body = make([]byte, maxJWKSSize+1) },
	} {
		t.Run(name, func(t *testing.T) {
			f := newIssuer(t)
			v := f.validator(nil)
			token := f.token(nil)
			f.set(breakIt)

			f.clock.Advance(DefaultRefreshInterval)
			if _, err := v.Validate(context.Background(), token); err != nil {
				t.Fatal(err)
			}
			waitFetches(t, f, v, 2)
			if _, err := v.Validate(context.Background(), token); err != nil {
				t.Fatalf("after a failed refresh: %v", err)
			}
			unknown := f.tokenWith(f.addKey(es256), nil)
			f.clock.Advance(DefaultMinRefreshInterval)
			if _, err := v.Validate(context.Background(), unknown); !errors.Is(err, ErrKeysUnavailable) {
				t.Fatalf("unknown kid while the issuer is broken: %v", err)
			}
			waitFetches(t, f, v, 3)

			// The issuer recovers: the next allowed fetch picks up the new key.
			f.set(func(f *fakeIssuer) { f.status, f.body = 0, nil })
			f.clock.Advance(DefaultMinRefreshInterval)
			if _, err := v.Validate(context.Background(), unknown); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
			if _, err := v.Validate(context.Background(), token); err != nil {
				t.Fatalf("old key after recovery: %v", err)
			}
		})
	}
}

func TestNewFailsWhenKeysCannotBeFetched(t *testing.T) {
	f := newIssuer(t)
	f.set(func(f *fakeIssuer) { f.status = http.StatusServiceUnavailable })
	_, err := New(context.Background(), Config{Issuer: f.URL, Audience: testAudience, HTTPClient: f.srv.Client()})
	if err == nil {
		t.Fatal("New succeeded without keys")
	}
}

func TestWaitingCallerCanGiveUp(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(nil)
	gate := make(chan struct{})
	defer close(gate)
	f.set(func(f *fakeIssuer) { f.gate = gate })
	f.clock.Advance(DefaultMinRefreshInterval)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := v.Validate(ctx, f.tokenWith(f.addKey(es256), nil))
	if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Validate = %v", err)
	}
}

// In the cluster the JWKS ConfigMap is mounted as a file: no network.
func TestJWKSFile(t *testing.T) {
	f := newIssuer(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS := func(keys ...testKey) {
		b := jwksJSON(keys...)
		// Write and rename, as the kubelet swaps a ConfigMap volume.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	writeJWKS(f.key(0))
	v := f.validator(func(c *Config) { c.Keys = JWKSFile(path) })
	f.metaFetches.Store(0)
	f.jwksFetches.Store(0)
	if _, err := v.Validate(context.Background(), f.token(nil)); err != nil {
		t.Fatal(err)
	}
	next := f.addKey(edDSA)
	writeJWKS(f.key(0), next)
	f.clock.Advance(DefaultMinRefreshInterval)
	if _, err := v.Validate(context.Background(), f.tokenWith(next, nil)); err != nil {
		t.Fatalf("key added to the file: %v", err)
	}
	if f.metaFetches.Load()+f.jwksFetches.Load() != 0 {
		t.Fatal("a file-backed validator made network requests")
	}

	if _, err := New(context.Background(), Config{Issuer: f.URL, Audience: testAudience, Keys: JWKSFile(filepath.Join(t.TempDir(), "missing"))}); err == nil {
		t.Fatal("New with a missing JWKS file succeeded")
	}
}

func TestStaticJWKS(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(func(c *Config) { c.Keys = StaticJWKS(jwksJSON(f.key(0))) })
	if _, err := v.Validate(context.Background(), f.token(nil)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := v.Validate(context.Background(), f.tokenWith(f.addKey(es256), nil)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("key outside the static set: %v", err)
	}
}
