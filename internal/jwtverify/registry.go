package jwtverify

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"time"
	"weak"
)

// Registry shares Remote key sets: everything configured with one URL (and
// one CA) gets one Remote, fetched once. It holds them weakly: a set that
// no configuration refers to any more stops being fetched.
type Registry struct {
	ctx      context.Context
	defaults RemoteOptions

	mu   sync.Mutex
	sets map[registryKey]weak.Pointer[Remote]
}

type registryKey struct {
	discovery, issuer, jwks string
	ca                      [sha256.Size]byte
}

// NewRegistry makes a Registry whose sets fetch until ctx ends. defaults
// supplies what Get's options leave unset (Client, limits, Log, OnFetch,
// Now).
func NewRegistry(ctx context.Context, defaults RemoteOptions) *Registry {
	return &Registry{ctx: ctx, defaults: defaults, sets: map[registryKey]weak.Pointer[Remote]{}}
}

// Get returns the shared Remote for o, which names the set (DiscoveryURL,
// Issuer, JWKSURI and Name), starting it if there is none. caPEM, when
// not empty, is the only CA trusted for its requests.
func (g *Registry) Get(o RemoteOptions, caPEM []byte) (*Remote, error) {
	key := registryKey{discovery: o.DiscoveryURL, issuer: o.Issuer, jwks: o.JWKSURI}
	if len(caPEM) > 0 {
		key.ca = sha256.Sum256(caPEM)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if wp, ok := g.sets[key]; ok {
		if r := wp.Value(); r != nil {
			return r, nil
		}
	}
	opts := g.defaults
	opts.DiscoveryURL, opts.Issuer, opts.JWKSURI = o.DiscoveryURL, o.Issuer, o.JWKSURI
	if o.Name != "" {
		opts.Name = o.Name
	}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("the CA bundle holds no PEM certificate")
		}
		opts.Client = &http.Client{Timeout: DefaultFetchTimeout, Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	r, err := NewRemote(g.ctx, opts)
	if err != nil {
		return nil, err
	}
	g.sets[key] = weak.Make(r)
	runtime.AddCleanup(r, g.forget, key)
	return r, nil
}

// forget drops a collected set's entry, unless a new set took its place.
func (g *Registry) forget(key registryKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if wp, ok := g.sets[key]; ok && wp.Value() == nil {
		delete(g.sets, key)
	}
}

// Len is the number of sets the registry holds (live or not yet cleaned).
func (g *Registry) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sets)
}
