package throttle

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Failed logins are throttled per client address, across usernames; an
// IPv6 client's /64 is one address.
func TestLoginThrottlePerAddress(t *testing.T) {
	th := New(Config{UserBurst: 100, UserInterval: time.Second, IPBurst: 3, IPInterval: time.Minute})
	now := time.Now()
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := range 3 {
		user := string(rune('a' + i))
		if ok, _, _ := th.Allowed(user, a, now); !ok {
			t.Fatalf("attempt %d refused", i)
		}
		th.Failed(user, a, now)
	}
	if ok, why, wait := th.Allowed("someone-else", a, now); ok || why != Address || wait != time.Minute {
		t.Errorf("a fourth username from the same address: allowed %v (%s, retry in %v), want refused by address for 1m", ok, why, wait)
	}
	if ok, _, _ := th.Allowed("someone-else", b, now); !ok {
		t.Error("another address is not affected")
	}
	if ok, _, _ := th.Allowed("someone-else", a, now.Add(time.Minute)); !ok {
		t.Error("the address bucket must refill")
	}

	v6 := New(Config{UserBurst: 100, UserInterval: time.Second, IPBurst: 1, IPInterval: time.Minute})
	v6.Failed("x", netip.MustParseAddr("2001:db8:1:2::1"), now)
	if ok, _, _ := v6.Allowed("y", netip.MustParseAddr("2001:db8:1:2:ffff::9"), now); ok {
		t.Error("another address of the same IPv6 /64 must share its bucket")
	}
	if ok, _, _ := v6.Allowed("y", netip.MustParseAddr("2001:db8:1:3::1"), now); !ok {
		t.Error("another /64 is not affected")
	}
}

// However many and however long the usernames sprayed at the login page,
// the throttle keeps a bounded number of fixed-size entries, and the
// account under attack stays throttled.
func TestLoginThrottleMemoryIsBounded(t *testing.T) {
	th := New(Default)
	now := time.Now()
	victim := netip.MustParseAddr("198.51.100.1")
	for range Default.UserBurst {
		th.Failed("alice", victim, now)
	}
	long := strings.Repeat("x", 1024)
	for i := range 3 * maxKeys {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		th.Failed(fmt.Sprintf("%s-%d", long, i), addr, now)
	}
	if n, m := len(th.users.m), len(th.addrs.m); n > maxKeys || m > maxKeys {
		t.Fatalf("throttle holds %d account and %d address buckets, want at most %d each", n, m, maxKeys)
	}
	if ok, why, _ := th.Allowed("alice", netip.MustParseAddr("203.0.113.50"), now); ok || why != Account {
		t.Errorf("the attacked account was forgotten under the flood: allowed %v (%s)", ok, why)
	}
}
