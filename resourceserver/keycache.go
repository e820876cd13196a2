package resourceserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// maxRefreshInterval caps how long a JWKS is trusted without asking again,
// whatever Cache-Control says, so that a removed key stops validating.
const maxRefreshInterval = 24 * time.Hour

// keyCache holds the issuer's verification keys. The read path is one
// atomic load and a map lookup; fetches happen
//   - when a token names an unknown kid: the caller waits for the fetch;
//   - when the cached set is older than its max-age: in the background,
//     while callers keep using the cached keys;
//
// and never more than once per minInterval, with concurrent callers sharing
// one fetch. Rate limiting is what stops a stream of tokens with made-up
// kids from turning into a stream of requests to the issuer. A failed fetch
// keeps the keys we have.
type keyCache struct {
	source       KeySource
	allowed      map[string]bool
	now          func() time.Time
	minInterval  time.Duration
	defaultTTL   time.Duration
	fetchTimeout time.Duration

	snap atomic.Pointer[keySnapshot]

	mu        sync.Mutex
	lastFetch time.Time // when the last fetch started
	flight    *flight   // the fetch in progress, if any
}

// keySnapshot is immutable once published.
type keySnapshot struct {
	keys    map[string]*publicKey
	doc     []byte
	staleAt time.Time
	// err is why the last fetch failed; nil if it succeeded.
	err error
}

type flight struct {
	done chan struct{}
}

// key returns the key with id kid.
func (c *keyCache) key(ctx context.Context, kid string) (*publicKey, error) {
	if s := c.snap.Load(); s != nil {
		if k := s.keys[kid]; k != nil {
			if !c.now().Before(s.staleAt) {
				c.start() // refresh in the background; the cached key is still good
			}
			return k, nil
		}
	}
	// Unknown kid: perhaps a key the issuer published after our last
	// fetch. Wait for a fetch, if the rate limit allows one.
	if f := c.start(); f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, ctx.Err())
		}
	}
	s := c.snap.Load()
	if s != nil {
		if k := s.keys[kid]; k != nil {
			return k, nil
		}
	}
	if s == nil || s.err != nil {
		cause := errors.New("no keys fetched yet")
		if s != nil {
			cause = s.err
		}
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, cause)
	}
	return nil, fmt.Errorf("%w: the token's kid is not in the issuer's key set", ErrUnknownKey)
}

// refresh fetches now, ignoring the rate limit's window but still sharing
// a fetch in progress; New uses it to fill the cache.
func (c *keyCache) refresh(ctx context.Context) error {
	c.mu.Lock()
	f := c.flight
	if f == nil {
		f = c.launch()
	}
	c.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.snap.Load().err
}

// start begins a fetch unless one is running (then it returns that one)
// or the last one started less than minInterval ago (then it returns nil).
func (c *keyCache) start() *flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flight != nil {
		return c.flight
	}
	if !c.lastFetch.IsZero() && c.now().Sub(c.lastFetch) < c.minInterval {
		return nil
	}
	return c.launch()
}

// launch starts a fetch; c.mu is held.
func (c *keyCache) launch() *flight {
	f := &flight{done: make(chan struct{})}
	c.flight = f
	c.lastFetch = c.now()
	go c.fetch(f)
	return f
}

// fetch runs detached from any one caller's context: several callers
// share it, and one giving up must not fail it for the others.
func (c *keyCache) fetch(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), c.fetchTimeout)
	defer cancel()
	doc, maxAge, err := c.source.FetchJWKS(ctx)

	old := c.snap.Load()
	next := &keySnapshot{}
	switch {
	case err != nil:
	case old != nil && old.doc != nil && bytes.Equal(doc, old.doc):
		next.keys = old.keys // unchanged: skip parsing
	default:
		next.keys, err = parseJWKS(doc, c.allowed)
	}
	now := c.now()
	if err != nil {
		// Keep what we had and try again once the rate limit allows.
		next.err = fmt.Errorf("fetching the JWKS: %w", err)
		next.staleAt = now.Add(c.minInterval)
		if old != nil {
			next.keys, next.doc = old.keys, old.doc
		}
	} else {
		next.doc = doc
		next.staleAt = now.Add(c.ttl(maxAge))
	}
	c.snap.Store(next)

	c.mu.Lock()
	c.flight = nil
	c.mu.Unlock()
	close(f.done)
}

// ttl turns a source's max-age into how long the set is fresh: the default
// when it said nothing, never less than minInterval (a source asking for
// no caching gets refreshed as often as the rate limit allows) and never
// more than maxRefreshInterval.
func (c *keyCache) ttl(maxAge time.Duration) time.Duration {
	switch {
	case maxAge == 0:
		return c.defaultTTL
	case maxAge < c.minInterval:
		return c.minInterval
	case maxAge > maxRefreshInterval:
		return maxRefreshInterval
	}
	return maxAge
}
