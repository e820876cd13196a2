package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ThrottleConfig limits failed logins per username and per client IP. Each
// failure spends a token; a bucket refills at one token per interval. When
// either bucket is empty, the login page refuses to check a password until
// it refills (OWASP Authentication Cheat Sheet: account lockout by
// throttling rather than locking, so an attacker cannot lock a user out for
// good).
type ThrottleConfig struct {
	UserBurst    int
	UserInterval time.Duration
	IPBurst      int
	IPInterval   time.Duration
}

// DefaultLoginThrottle allows 5 failures per username, then one per 30 s,
// and 20 per IP, then one per 5 s.
var DefaultLoginThrottle = ThrottleConfig{UserBurst: 5, UserInterval: 30 * time.Second, IPBurst: 20, IPInterval: 5 * time.Second}

// maxThrottleKeys bounds the memory an attacker spraying usernames or
// addresses can make the throttle use.
const maxThrottleKeys = 50_000

type loginThrottle struct {
	cfg   ThrottleConfig
	mu    sync.Mutex
	users map[string]*rate.Limiter
	ips   map[string]*rate.Limiter
}

func newLoginThrottle(cfg ThrottleConfig) *loginThrottle {
	if cfg == (ThrottleConfig{}) {
		cfg = DefaultLoginThrottle
	}
	return &loginThrottle{cfg: cfg, users: map[string]*rate.Limiter{}, ips: map[string]*rate.Limiter{}}
}

// allowed reports whether a login attempt for username from ip may be
// checked at now.
func (t *loginThrottle) allowed(username, ip string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range []*rate.Limiter{t.users[username], t.ips[ip]} {
		if l != nil && l.TokensAt(now) < 1 {
			return false
		}
	}
	return true
}

// failed records a failed attempt.
func (t *loginThrottle) failed(username, ip string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.limiter(t.users, username, t.cfg.UserInterval, t.cfg.UserBurst, now).AllowN(now, 1)
	t.limiter(t.ips, ip, t.cfg.IPInterval, t.cfg.IPBurst, now).AllowN(now, 1)
}

func (t *loginThrottle) limiter(m map[string]*rate.Limiter, key string, every time.Duration, burst int, now time.Time) *rate.Limiter {
	if l, ok := m[key]; ok {
		return l
	}
	if len(m) >= maxThrottleKeys {
		// Forget buckets that have refilled: they hold no information.
		for k, l := range m {
			if l.TokensAt(now) >= float64(l.Burst()) {
				delete(m, k)
			}
		}
	}
	l := rate.NewLimiter(rate.Every(every), burst)
	m[key] = l
	return l
}
