// Package throttle limits failed logins per account, per client address
// and per device cookie, in bounded memory.
package throttle

import (
	"crypto/sha256"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gatehouse-dev/gatehouse/server/internal/devicecookie"
)

// Config limits failed logins per account and per client address.
// Each failure spends a token from both buckets; a bucket refills at one
// token per interval. When either bucket is empty, the login page refuses
// to check a password until it refills (OWASP Authentication Cheat Sheet:
// throttling rather than locking, so an attacker cannot lock a user out
// for good).
//
// The two keys split the damage an attacker can do. Guessing one account's
// password from many addresses empties that account's bucket only; spraying
// many accounts from one address empties that address's bucket only. A
// person on another address, logging in to an account nobody is guessing,
// is never held up. That needs the real client address: behind a proxy,
// configure TrustedProxies, or every client shares the proxy's address.
// And a browser that has logged in to the account before is throttled by
// its device cookie alone (package devicecookie), so even an account under attack,
// or an address shared with an attacker, lets its owner in.
type Config struct {
	UserBurst    int
	UserInterval time.Duration
	IPBurst      int
	IPInterval   time.Duration
}

// Default allows 5 failures per account, then one per 30 s, and 20 per
// client address, then one per 5 s.
var Default = Config{UserBurst: 5, UserInterval: 30 * time.Second, IPBurst: 20, IPInterval: 5 * time.Second}

// maxKeys bounds each bucket map. Keys are fixed-size (a SHA-256 of
// the username, an address prefix), so however long the usernames an
// attacker sends, the throttle holds at most this many small entries per
// map: a few megabytes.
const maxKeys = 50_000

// evictionSample is how many buckets a full map looks at to pick one to
// drop, in the manner of Redis's approximated LRU: bounded work per insert
// rather than a scan of the whole map.
const evictionSample = 16

// Reason says which bucket refused a login.
type Reason string

// The buckets: per account, per client address, per browser (device
// cookie).
const (
	Account Reason = "account"
	Address Reason = "address"
	Device  Reason = "device"
)

type accountKey [sha256.Size]byte

// Logins is the throttle of one server's login page.
type Logins struct {
	cfg   Config
	mu    sync.Mutex
	users *buckets[accountKey]
	addrs *buckets[netip.Prefix]
	// devices are the buckets of browsers with a device cookie; each gets
	// an account's allowance.
	devices *buckets[devicecookie.ID]
}

// New builds a throttle; the zero Config means Default.
func New(cfg Config) *Logins {
	if cfg == (Config{}) {
		cfg = Default
	}
	return &Logins{
		cfg:     cfg,
		users:   newBuckets[accountKey](rate.Every(cfg.UserInterval), cfg.UserBurst, maxKeys),
		addrs:   newBuckets[netip.Prefix](rate.Every(cfg.IPInterval), cfg.IPBurst, maxKeys),
		devices: newBuckets[devicecookie.ID](rate.Every(cfg.UserInterval), cfg.UserBurst, maxKeys),
	}
}

// accountOf is the bucket key of a username. Hashing bounds the key
// size whatever the form carried.
func accountOf(username string) accountKey { return sha256.Sum256([]byte(username)) }

// addressOf is the bucket key of a client address. An IPv6 client
// usually holds a whole /64, so its addresses share one bucket; an IPv4
// address is its own. An invalid address (a test's pipe) is one bucket.
func addressOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// Allowed reports whether a login attempt for username from addr may be
// checked at now; if not, which bucket refused it and when to retry.
func (t *Logins) Allowed(username string, addr netip.Addr, now time.Time) (bool, Reason, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if wait := t.users.wait(accountOf(username), now); wait > 0 {
		return false, Account, wait
	}
	if wait := t.addrs.wait(addressOf(addr), now); wait > 0 {
		return false, Address, wait
	}
	return true, "", 0
}

// Failed records a failed attempt against both buckets.
func (t *Logins) Failed(username string, addr netip.Addr, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.users.spend(accountOf(username), now)
	t.addrs.spend(addressOf(addr), now)
}

// AllowedAddress is Allowed for a form that guesses no account: the
// /device page's user code (RFC 8628 §5.1). Only the address bucket, the
// one logins share, holds it: a wrong code spends it (FailedAddress), so
// an address gets as many code guesses as password guesses, together.
func (t *Logins) AllowedAddress(addr netip.Addr, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	wait := t.addrs.wait(addressOf(addr), now)
	return wait == 0, wait
}

// FailedAddress records a wrong user code against the address's bucket.
func (t *Logins) FailedAddress(addr netip.Addr, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addrs.spend(addressOf(addr), now)
}

// AllowedDevice is Allowed for a login from a browser whose device cookie
// verified for the username.
func (t *Logins) AllowedDevice(device devicecookie.ID, now time.Time) (bool, Reason, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if wait := t.devices.wait(device, now); wait > 0 {
		return false, Device, wait
	}
	return true, "", 0
}

// FailedDevice records a failed attempt from a browser with a device
// cookie: against its own bucket only, so that its owner mistyping a
// password does not help lock the account or the address.
func (t *Logins) FailedDevice(device devicecookie.ID, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.devices.spend(device, now)
}

// buckets is a bounded map of token buckets. The caller holds the
// throttle's lock.
type buckets[K comparable] struct {
	limit rate.Limit
	burst int
	max   int
	m     map[K]*rate.Limiter
}

func newBuckets[K comparable](limit rate.Limit, burst, max int) *buckets[K] {
	return &buckets[K]{limit: limit, burst: burst, max: max, m: map[K]*rate.Limiter{}}
}

// wait is how long until key's bucket holds a token; 0 when it does now.
func (b *buckets[K]) wait(key K, now time.Time) time.Duration {
	l, ok := b.m[key]
	if !ok {
		return 0
	}
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(b.limit) * float64(time.Second)))
}

func (b *buckets[K]) spend(key K, now time.Time) {
	l, ok := b.m[key]
	if !ok {
		if len(b.m) >= b.max {
			b.evict(now)
		}
		l = rate.NewLimiter(b.limit, b.burst)
		b.m[key] = l
	}
	l.AllowN(now, 1)
}

// evict drops the fullest of a sample of buckets: a full bucket holds no
// information, and a nearly full one little. An account under attack has
// an empty bucket, so flooding the map with fresh keys rarely evicts it,
// and each fresh key costs the flooder a failure from its address bucket.
func (b *buckets[K]) evict(now time.Time) {
	var victim K
	most, seen := -1.0, 0
	for k, l := range b.m {
		if tokens := l.TokensAt(now); tokens > most {
			victim, most = k, tokens
		}
		if seen++; seen == evictionSample || most >= float64(b.burst) {
			break
		}
	}
	delete(b.m, victim)
}
