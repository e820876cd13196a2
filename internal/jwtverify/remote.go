package jwtverify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"weak"

	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

// Defaults of RemoteOptions.
const (
	DefaultMaxBytes     = 256 << 10
	DefaultMinInterval  = 10 * time.Second
	DefaultMinTTL       = time.Minute
	DefaultMaxTTL       = time.Hour
	DefaultTTL          = 5 * time.Minute
	DefaultFetchTimeout = 10 * time.Second
	// maxBackoff caps the wait between failed fetches.
	maxBackoff = 5 * time.Minute
)

// RemoteOptions say where a Remote key set comes from.
type RemoteOptions struct {
	// DiscoveryURL, when set, is fetched first: OpenID Provider metadata
	// (OpenID Connect Discovery 1.0 §3) whose issuer must be Issuer, and
	// whose jwks_uri is where the keys are unless JWKSURI is set.
	DiscoveryURL string
	// Issuer is the issuer the discovery document must name; empty takes
	// the document's own (the cluster's API server, which is trusted by
	// how it is reached). Remote.Issuer reports it.
	Issuer string
	// JWKSURI is where the JWK Set is; it wins over the discovery
	// document's jwks_uri (the API server's jwks_uri is an address for
	// outside the cluster, its /openid/v1/jwks path is not).
	JWKSURI string
	// Client makes the requests; its transport decides whom it trusts. A
	// client with DefaultFetchTimeout when nil. Redirects are followed
	// only to URLs AllowedURL accepts.
	Client *http.Client
	// MaxBytes bounds each response; DefaultMaxBytes when zero.
	MaxBytes int64
	// MinInterval is the least time between fetches asked for by tokens
	// with an unknown kid; DefaultMinInterval when zero.
	MinInterval time.Duration
	// MinTTL and MaxTTL clamp how long a fetched set is used before the
	// next scheduled fetch (the response's Cache-Control max-age, or
	// DefaultTTL); DefaultMinTTL and DefaultMaxTTL when zero.
	MinTTL, MaxTTL time.Duration
	// Name labels the set in logs and OnFetch.
	Name string
	Log  *slog.Logger
	// OnFetch, when set, is told of every fetch and its outcome (nil: it
	// succeeded).
	OnFetch func(name string, err error)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// AllowedURL refuses a URL a key set may not be fetched from: anything
// but https, except http on a loopback host (tests, development).
func AllowedURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q: keys are fetched over https only (http only from a loopback host)", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Remote is a KeySet fetched over the network in the background: at once
// when it is made, again when its Cache-Control says (clamped between
// MinTTL and MaxTTL), and when a token names a kid it does not know, at
// most once per MinInterval. Lookup only reads what the last fetch
// brought: a token with a new kid is refused, and a moment later, once the
// fetch it asked for has landed, accepted. No request ever waits on the
// issuer. A failed fetch keeps the keys there are.
//
// The fetching goroutine ends with the context NewRemote was given, or
// soon after nothing refers to the Remote any more.
type Remote struct {
	c *remoteCore
}

// remoteCore is the part the fetching goroutine holds, so that the Remote
// itself can be collected when no configuration refers to it.
type remoteCore struct {
	o       RemoteOptions
	client  *http.Client
	kick    chan struct{}
	keys    atomic.Pointer[[]*Key]
	issuer  atomic.Pointer[string]
	lastErr atomic.Pointer[error]
	fetches atomic.Int64
	first   chan struct{} // closed after the first fetch, good or bad
}

// NewRemote starts fetching.
func NewRemote(ctx context.Context, o RemoteOptions) (*Remote, error) {
	if o.JWKSURI == "" && o.DiscoveryURL == "" {
		return nil, errors.New("a remote key set needs a JWKS URI or a discovery URL")
	}
	for _, u := range []string{o.JWKSURI, o.DiscoveryURL} {
		if u == "" {
			continue
		}
		if err := AllowedURL(u); err != nil {
			return nil, err
		}
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultMinInterval
	}
	if o.MinTTL <= 0 {
		o.MinTTL = DefaultMinTTL
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	client := &http.Client{Timeout: DefaultFetchTimeout}
	if o.Client != nil {
		c := *o.Client
		client = &c
		if client.Timeout == 0 {
			client.Timeout = DefaultFetchTimeout
		}
	}
	// Each key-set fetch is a client span when tracing is on.
	client.Transport = tracing.Transport(client.Transport)
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("more than 3 redirects")
		}
		return AllowedURL(req.URL.String())
	}
	c := &remoteCore{o: o, client: client, kick: make(chan struct{}, 1), first: make(chan struct{})}
	r := &Remote{c: c}
	go c.run(ctx, weak.Make(r))
	return r, nil
}

// Lookup implements KeySet. An unknown kid asks for a fetch.
func (r *Remote) Lookup(kid, alg string) (*Key, error) {
	keys := r.c.keys.Load()
	if keys == nil {
		r.c.askFetch()
		cause := "not fetched yet"
		if e := r.c.lastErr.Load(); e != nil {
			cause = (*e).Error()
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrKeysUnavailable, r.c.o.Name, cause)
	}
	k, err := lookup(*keys, kid, alg)
	if errors.Is(err, ErrUnknownKey) {
		r.c.askFetch()
	}
	return k, err
}

// Issuer is the issuer the discovery document named (Options.Issuer when
// that was set); empty until a discovery succeeded.
func (r *Remote) Issuer() string {
	if s := r.c.issuer.Load(); s != nil {
		return *s
	}
	return r.c.o.Issuer
}

// Wait waits for the first fetch to finish, and returns its error.
func (r *Remote) Wait(ctx context.Context) error {
	select {
	case <-r.c.first:
	case <-ctx.Done():
		return ctx.Err()
	}
	if e := r.c.lastErr.Load(); e != nil && r.c.keys.Load() == nil {
		return *e
	}
	return nil
}

// Fetches counts the fetches so far, good and bad.
func (r *Remote) Fetches() int64 { return r.c.fetches.Load() }

// Err is why the last fetch failed; nil when it succeeded.
func (r *Remote) Err() error {
	if e := r.c.lastErr.Load(); e != nil {
		return *e
	}
	return nil
}

func (c *remoteCore) askFetch() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run fetches now, then as scheduled or asked, until ctx ends or the
// Remote is gone.
func (c *remoteCore) run(ctx context.Context, remote weak.Pointer[Remote]) {
	var last time.Time
	backoff := c.o.MinInterval
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-c.kick:
			if wait := last.Add(c.o.MinInterval).Sub(c.o.Now()); wait > 0 && !last.IsZero() {
				// Too soon after the last fetch: fetch when allowed.
				timer.Reset(wait)
				continue
			}
		}
		if remote.Value() == nil {
			return
		}
		last = c.o.Now()
		ttl, err := c.fetch(ctx)
		var next time.Time
		if err != nil {
			next = last.Add(backoff)
			backoff = min(2*backoff, maxBackoff)
		} else {
			next = last.Add(ttl)
			backoff = c.o.MinInterval
		}
		timer.Reset(max(next.Sub(c.o.Now()), 0))
	}
}

// fetch brings the key set (after the discovery document, if any) and
// publishes it; the TTL is the JWK Set's.
func (c *remoteCore) fetch(ctx context.Context) (time.Duration, error) {
	c.fetches.Add(1)
	ttl, err := c.fetchOnce(ctx)
	if c.o.OnFetch != nil {
		c.o.OnFetch(c.o.Name, err)
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", c.o.Name, err)
		c.lastErr.Store(&err)
		c.o.Log.Warn("fetching keys failed; keeping the keys there are", "keySet", c.o.Name, "error", err)
	} else {
		c.lastErr.Store(nil)
	}
	select {
	case <-c.first:
	default:
		close(c.first)
	}
	return ttl, err
}

func (c *remoteCore) fetchOnce(ctx context.Context) (time.Duration, error) {
	jwksURI := c.o.JWKSURI
	if c.o.DiscoveryURL != "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		body, _, err := c.get(ctx, c.o.DiscoveryURL, "application/json")
		if err != nil {
			return 0, fmt.Errorf("discovery: %w", err)
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return 0, fmt.Errorf("discovery document %s is not JSON: %w", c.o.DiscoveryURL, err)
		}
		switch {
		case doc.Issuer == "":
			return 0, fmt.Errorf("discovery document %s names no issuer", c.o.DiscoveryURL)
		case c.o.Issuer != "" && doc.Issuer != c.o.Issuer:
			// OpenID Connect Discovery 1.0 §4.3.
			return 0, fmt.Errorf("discovery document %s names the issuer %q, not %q", c.o.DiscoveryURL, clip(doc.Issuer), c.o.Issuer)
		}
		issuer := doc.Issuer
		c.issuer.Store(&issuer)
		if jwksURI == "" {
			if err := AllowedURL(doc.JWKSURI); err != nil {
				return 0, fmt.Errorf("discovery document %s: jwks_uri: %w", c.o.DiscoveryURL, err)
			}
			jwksURI = doc.JWKSURI
		}
	}
	// RFC 7517 §8.5.1's media type first: the kube-apiserver answers 406
	// to a JWK Set request that accepts only application/json.
	body, ttl, err := c.get(ctx, jwksURI, "application/jwk-set+json, application/json;q=0.9")
	if err != nil {
		return 0, err
	}
	set, err := ParseJWKS(body)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", jwksURI, err)
	}
	keys := set.keys
	c.keys.Store(&keys)
	return ttl, nil
}

// get fetches one document, at most MaxBytes of it.
func (c *remoteCore) get(ctx context.Context, u, accept string) ([]byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", accept)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.o.MaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(body)) > c.o.MaxBytes {
		return nil, 0, fmt.Errorf("GET %s: the document is larger than %d bytes", u, c.o.MaxBytes)
	}
	return body, c.ttl(resp.Header.Get("Cache-Control")), nil
}

// ttl is the Cache-Control max-age, or DefaultTTL, clamped.
func (c *remoteCore) ttl(cacheControl string) time.Duration {
	ttl := DefaultTTL
	for _, d := range strings.Split(cacheControl, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "max-age":
			if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && n >= 0 {
				ttl = time.Duration(n) * time.Second
			}
		case "no-cache", "no-store":
			ttl = 0
		}
	}
	return min(max(ttl, c.o.MinTTL), c.o.MaxTTL)
}
