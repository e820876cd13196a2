package throttle

import (
	"net/netip"
	"testing"
	"time"
)

// Device authorizations are limited per address first, then per client
// across addresses; a refused request spends nothing.
func TestIssuanceLimits(t *testing.T) {
	lim := NewIssuance(IssuanceConfig{ClientBurst: 5, ClientInterval: time.Second, AddressBurst: 3, AddressInterval: time.Minute})
	now := time.Now()
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	for i := range 3 {
		if ok, _, _ := lim.Take("cli", a, now); !ok {
			t.Fatalf("request %d from a refused", i)
		}
	}
	if ok, why, wait := lim.Take("cli", a, now); ok || why != Address || wait != time.Minute {
		t.Errorf("a fourth from one address: %v (%s, %v), want refused by address for 1m", ok, why, wait)
	}
	if ok, why, _ := lim.Take("other", a, now); ok || why != Address {
		t.Errorf("another client from the same address: %v (%s), want refused by address", ok, why)
	}
	// The client's bucket: 3 spent from a, 2 more from b, then empty for
	// everyone, c included, until it refills.
	for i := range 2 {
		if ok, _, _ := lim.Take("cli", b, now); !ok {
			t.Fatalf("request %d from b refused", i)
		}
	}
	if ok, why, wait := lim.Take("cli", c, now); ok || why != Client || wait != time.Second {
		t.Errorf("the client's sixth: %v (%s, %v), want refused by client for 1s", ok, why, wait)
	}
	if ok, _, _ := lim.Take("other", c, now); !ok {
		t.Error("another client from a fresh address is refused")
	}
	// The refusals spent nothing: c still has its whole burst but one.
	for i := range 2 {
		if ok, _, _ := lim.Take("other", c, now); !ok {
			t.Fatalf("request %d of other from c refused: a refusal spent c's bucket", i)
		}
	}
	if ok, _, _ := lim.Take("cli", netip.MustParseAddr("192.0.2.4"), now.Add(time.Second)); !ok {
		t.Error("the client's bucket must refill")
	}
	if NewIssuance(IssuanceConfig{}) == nil || DefaultDeviceAuthorizations.AddressBurst == 0 {
		t.Error("the zero config must mean the default")
	}
}
