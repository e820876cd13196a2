package jwtverify

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Cache remembers the tokens whose signature it has verified, for tokens a
// holder presents again and again (a pod's projected service-account
// token, until the kubelet replaces it): a second Verify of the same token
// with the same KeySet skips the signature, the costly part, and checks
// the claims against the policy anew, as at now. It is bounded, and
// forgets a token once it expires. The zero value is not usable: NewCache.
//
// A token is the same token only byte for byte (its SHA-256 is the key),
// so nothing unverified is ever accepted; a key the KeySet no longer holds
// verifies nothing cached either.
type Cache struct {
	mu  sync.Mutex
	m   map[[sha256.Size]byte]*cachedToken
	max int
}

type cachedToken struct {
	t    *parsed
	keys KeySet
	key  *Key
	exp  time.Time
}

// NewCache makes a Cache of at most max tokens.
func NewCache(max int) *Cache {
	return &Cache{m: map[[sha256.Size]byte]*cachedToken{}, max: max}
}

// Verify is Verify, remembering what it verified.
func (c *Cache) Verify(token string, keys KeySet, p *Policy, now time.Time) (*Claims, error) {
	sum := sha256.Sum256([]byte(token))
	c.mu.Lock()
	ct := c.m[sum]
	c.mu.Unlock()
	if ct != nil && ct.keys == keys {
		if k, err := keys.Lookup(ct.t.header.Kid, ct.t.header.Alg); err == nil && k == ct.key {
			return checkClaims(ct.t, p, now)
		}
	}
	t, key, err := verifySignature(token, keys)
	if err != nil {
		return nil, err
	}
	claims, err := checkClaims(t, p, now)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		c.prune(now)
	}
	c.m[sum] = &cachedToken{t: t, keys: keys, key: key, exp: claims.ExpiresAt}
	return claims, nil
}

// prune drops expired tokens, and when that is not enough half of the
// rest (map order: arbitrary ones). Callers hold c.mu.
func (c *Cache) prune(now time.Time) {
	for k, ct := range c.m {
		if !now.Before(ct.exp) {
			delete(c.m, k)
		}
	}
	for k := range c.m {
		if len(c.m) < c.max/2 {
			break
		}
		delete(c.m, k)
	}
}

// Len is how many tokens the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
