package jwtverify

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// issuer is a test JWKS endpoint (and discovery document) whose keys the
// test changes.
type issuer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	keys     []map[string]any
	issuer   string
	jwksPath string
	jwksURI  string // the discovery document's jwks_uri, when not this server's jwksPath
	cache    string
	status   int
	pad      int           // bytes of padding in the JWKS
	hold     chan struct{} // if set, key requests wait for it to close
	fetches  atomic.Int64
	disco    atomic.Int64
}

func newIssuer(t *testing.T, tls bool) *issuer {
	t.Helper()
	is := &issuer{jwksPath: "/keys", cache: "max-age=600", status: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		is.disco.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		uri := is.jwksURI
		if uri == "" {
			uri = is.srv.URL + is.jwksPath
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.issuer, "jwks_uri": uri})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		hold := is.hold
		is.mu.Unlock()
		if hold != nil {
			<-hold
		}
		is.mu.Lock()
		defer is.mu.Unlock()
		w.Header().Set("Cache-Control", is.cache)
		w.WriteHeader(is.status)
		doc := map[string]any{"keys": is.keys}
		if is.pad > 0 {
			doc["padding"] = strings.Repeat("x", is.pad)
		}
		_ = json.NewEncoder(w).Encode(doc)
	})
	if tls {
		is.srv = httptest.NewTLSServer(mux)
	} else {
		is.srv = httptest.NewServer(mux)
	}
	t.Cleanup(is.srv.Close)
	is.issuer = is.srv.URL
	return is
}

func (is *issuer) publish(t testing.TB, keys ...*Key) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = nil
	for _, k := range keys {
		is.keys = append(is.keys, jwkMap(t, k))
	}
}

func (is *issuer) set(fn func(is *issuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	fn(is)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRemoteUnknownKidIsRefusedThenFetched(t *testing.T) {
	is := newIssuer(t, false)
	k1 := newSigner(t, "ES256", "k1")
	k2 := newSigner(t, "ES256", "k2")
	is.publish(t, k1.key(t))
	r, err := NewRemote(t.Context(), RemoteOptions{JWKSURI: is.srv.URL + "/keys", MinInterval: 50 * time.Millisecond, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(k1.sign(t, claims(), nil), r, policy(), t0); err != nil {
		t.Fatalf("known key: %v", err)
	}

	// The issuer publishes k2 and the client signs with it at once: the
	// first token is refused without waiting (the issuer holds every key
	// request until the token has its answer, so a Verify that waited for
	// the fetch would never return), the fetch it asked for brings k2, and
	// the next token is accepted.
	is.publish(t, k1.key(t), k2.key(t))
	before := is.fetches.Load()
	hold := make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(hold) }) })
	is.mu.Lock()
	is.hold = hold
	is.mu.Unlock()
	verified := make(chan error, 1)
	go func() {
		_, err := Verify(k2.sign(t, claims(), nil), r, policy(), t0)
		verified <- err
	}()
	select {
	case err = <-verified:
	case <-time.After(10 * time.Second):
		t.Fatal("Verify is waiting for the key fetch it asked for: it must not wait on the network")
	}
	if ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("new key before the fetch: %v", err)
	}
	waitFor(t, "the background fetch", func() bool { return is.fetches.Load() > before })
	release.Do(func() { close(hold) })
	waitFor(t, "k2 to be accepted", func() bool {
		_, err := Verify(k2.sign(t, claims(), nil), r, policy(), t0)
		return err == nil
	})
}

// A stream of tokens with made-up kids costs at most one fetch per
// MinInterval, not one per token.
func TestRemoteFetchesAreRateLimited(t *testing.T) {
	is := newIssuer(t, false)
	k1 := newSigner(t, "ES256", "k1")
	is.publish(t, k1.key(t))
	r, err := NewRemote(t.Context(), RemoteOptions{JWKSURI: is.srv.URL + "/keys", MinInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 500 {
		_, _ = r.Lookup("made-up-"+string(rune('a'+i%26)), "ES256")
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	// Let a fetch the last kids asked for land: it is due at most one
	// MinInterval after the last one, on the fetch loop's own timer (Now
	// is injectable, that timer is not). Nothing marks a fetch that is not
	// coming, so this waits out the interval.
	time.Sleep(250 * time.Millisecond)
	allowed := 2 + int64(elapsed/(200*time.Millisecond))
	if got := is.fetches.Load(); got > allowed {
		t.Errorf("%d fetches in %s, want at most %d", got, elapsed, allowed)
	}
	if is.fetches.Load() < 2 {
		t.Error("an unknown kid asked for no fetch at all")
	}
}

func TestRemoteKeepsKeysWhenAFetchFails(t *testing.T) {
	is := newIssuer(t, false)
	k1 := newSigner(t, "ES256", "k1")
	is.publish(t, k1.key(t))
	var uselessFetched atomic.Bool // a fetch of a document with no usable key has ended
	r, err := NewRemote(t.Context(), RemoteOptions{JWKSURI: is.srv.URL + "/keys", MinInterval: 20 * time.Millisecond,
		OnFetch: func(_ string, err error) {
			if err != nil && strings.Contains(err.Error(), "no usable key") {
				uselessFetched.Store(true)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	is.set(func(is *issuer) { is.status = http.StatusInternalServerError })
	before := is.fetches.Load()
	_, _ = r.Lookup("unknown", "ES256")
	waitFor(t, "a failed fetch", func() bool { return is.fetches.Load() > before && r.Err() != nil })
	if _, err := Verify(k1.sign(t, claims(), nil), r, policy(), t0); err != nil {
		t.Errorf("the known key was dropped after a failed fetch: %v", err)
	}
	// A document that parses to no usable key is a failure too.
	is.set(func(is *issuer) {
		is.status = http.StatusOK
		is.keys = []map[string]any{{"kty": "oct", "k": "c2VjcmV0"}}
	})
	_, _ = r.Lookup("unknown", "ES256") // fetches once MinInterval allows
	waitFor(t, "a fetch of the useless document", uselessFetched.Load)
	if _, err := Verify(k1.sign(t, claims(), nil), r, policy(), t0); err != nil {
		t.Errorf("the known key was dropped after a useless document: %v", err)
	}
}

func TestRemoteRefusals(t *testing.T) {
	is := newIssuer(t, false)
	is.publish(t, newSigner(t, "ES256", "k1").key(t))
	for _, u := range []string{"http://keys.example.com/jwks", "ftp://127.0.0.1/keys", "/keys"} {
		if _, err := NewRemote(t.Context(), RemoteOptions{JWKSURI: u}); err == nil {
			t.Errorf("NewRemote(%s) was accepted", u)
		}
	}
	// Too large a document.
	is.set(func(is *issuer) { is.pad = 4096 })
	r, err := NewRemote(t.Context(), RemoteOptions{JWKSURI: is.srv.URL + "/keys", MaxBytes: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(t.Context()); err == nil || !strings.Contains(err.Error(), "larger than 2048 bytes") {
		t.Errorf("an oversized JWKS: %v", err)
	}
	if _, err := r.Lookup("k1", "ES256"); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("Lookup without keys: %v", err)
	}
	// A discovery document naming another issuer (OpenID Connect
	// Discovery 1.0 §4.3).
	is.set(func(is *issuer) { is.pad = 0 })
	r, err = NewRemote(t.Context(), RemoteOptions{DiscoveryURL: is.srv.URL + "/.well-known/openid-configuration", Issuer: "https://impostor.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(t.Context()); err == nil || !strings.Contains(err.Error(), "names the issuer") {
		t.Errorf("a discovery document for another issuer: %v", err)
	}
	// A discovery document pointing at plain http elsewhere.
	is.set(func(is *issuer) { is.jwksURI = "http://keys.example.com/jwks" })
	r, err = NewRemote(t.Context(), RemoteOptions{DiscoveryURL: is.srv.URL + "/.well-known/openid-configuration"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(t.Context()); err == nil || !strings.Contains(err.Error(), "https only") {
		t.Errorf("a jwks_uri over plain http: %v", err)
	}
}

// The discovered issuer is reported, and the JWK Set is read from the
// configured URL rather than the document's jwks_uri when both are set.
func TestRemoteDiscovery(t *testing.T) {
	is := newIssuer(t, false)
	k1 := newSigner(t, "ES256", "k1")
	is.publish(t, k1.key(t))
	r, err := NewRemote(t.Context(), RemoteOptions{DiscoveryURL: is.srv.URL + "/.well-known/openid-configuration", Issuer: is.issuer})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.Issuer() != is.issuer || is.disco.Load() != 1 || is.fetches.Load() != 1 {
		t.Errorf("issuer %q, %d discoveries, %d fetches", r.Issuer(), is.disco.Load(), is.fetches.Load())
	}
}

func TestRemoteTTL(t *testing.T) {
	c := &remoteCore{o: RemoteOptions{MinTTL: time.Minute, MaxTTL: time.Hour}}
	for cc, want := range map[string]time.Duration{
		"":                               DefaultTTL,
		"public, max-age=600":            10 * time.Minute,
		"max-age=5":                      time.Minute,
		"max-age=86400":                  time.Hour,
		"no-store":                       time.Minute,
		`max-age="120", must-revalidate`: 2 * time.Minute,
	} {
		if got := c.ttl(cc); got != want {
			t.Errorf("ttl(%q) = %s, want %s", cc, got, want)
		}
	}
}

// The cluster's issuer: discovery and keys from the API server with the
// rest config's credentials and CA.
func TestKubernetesIssuer(t *testing.T) {
	is := newIssuer(t, true)
	is.set(func(is *issuer) {
		is.issuer = "https://kubernetes.default.svc.cluster.local"
		is.jwksPath = "/not-this"
	})
	sa := newSigner(t, "RS256", "sa-key")
	is.publish(t, sa.key(t))
	var auth atomic.Value
	inner := is.srv.Config.Handler
	is.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		if r.URL.Path == KubernetesJWKSPath {
			r.URL.Path = "/keys"
		}
		inner.ServeHTTP(w, r)
	})
	cfg := &rest.Config{Host: is.srv.URL, BearerToken: "server-sa-token",
		TLSClientConfig: rest.TLSClientConfig{CAData: pemCert(is.srv)}}
	r, err := NewKubernetes(t.Context(), cfg, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.Issuer() != "https://kubernetes.default.svc.cluster.local" {
		t.Errorf("issuer %q", r.Issuer())
	}
	if got, _ := auth.Load().(string); got != "Bearer server-sa-token" {
		t.Errorf("the API server saw Authorization %q", got)
	}
	c := claims()
	c["iss"], c["sub"] = r.Issuer(), "system:serviceaccount:shop:worker"
	p := &Policy{Issuer: r.Issuer(), Audiences: []string{"https://auth.example.com"}, Subject: "system:serviceaccount:shop:worker"}
	if _, err := Verify(sa.sign(t, c, nil), r, p, t0); err != nil {
		t.Fatal(err)
	}
}

func pemCert(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// The registry shares one Remote per URL and forgets it once unused.
func TestRegistry(t *testing.T) {
	is := newIssuer(t, false)
	is.publish(t, newSigner(t, "ES256", "k1").key(t))
	g := NewRegistry(t.Context(), RemoteOptions{})
	// The sets are used in a function of their own, so that nothing holds
	// them once it returns.
	func() {
		a, err := g.Get(RemoteOptions{JWKSURI: is.srv.URL + "/keys"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := g.Get(RemoteOptions{JWKSURI: is.srv.URL + "/keys"}, nil)
		if a != b {
			t.Error("one URL, two sets")
		}
		if err := a.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Get(RemoteOptions{JWKSURI: is.srv.URL + "/keys"}, []byte("not PEM")); err == nil {
			t.Error("a CA bundle without certificates was accepted")
		}
	}()
	waitFor(t, "the unused set to be forgotten", func() bool {
		runtime.GC()
		return g.Len() == 0
	})
}
