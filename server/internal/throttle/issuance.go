package throttle

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// IssuanceConfig limits how often something is handed out on request,
// such as device authorizations (RFC 8628 §3.1): per client and per client
// address, each a token bucket of Burst that refills one per Interval.
type IssuanceConfig struct {
	ClientBurst     int
	ClientInterval  time.Duration
	AddressBurst    int
	AddressInterval time.Duration
}

// DefaultDeviceAuthorizations allows a client 300 device authorizations
// at once, then 5 a second, and one client address 10, then one per 6 s.
//
// The address bucket is the tight one: the command-line client's
// client_id is public, so anyone can start device authorizations in its
// name, and a per-client limit alone would let one host lock a whole
// company out of device login. The client bucket bounds what many
// addresses together can store (each authorization is a row for its
// lifetime), well above what people logging in need: a thousand engineers
// starting `gatehouse login --device` in the same minute get through.
var DefaultDeviceAuthorizations = IssuanceConfig{
	ClientBurst: 300, ClientInterval: 200 * time.Millisecond,
	AddressBurst: 10, AddressInterval: 6 * time.Second,
}

// Issuance is one replica's limit on handing something out. Each
// replica counts its own requests, so N replicas allow N times as many.
type Issuance struct {
	mu      sync.Mutex
	clients *buckets[string]
	addrs   *buckets[netip.Prefix]
}

// NewIssuance builds a limit; the zero config means
// DefaultDeviceAuthorizations.
func NewIssuance(cfg IssuanceConfig) *Issuance {
	if cfg == (IssuanceConfig{}) {
		cfg = DefaultDeviceAuthorizations
	}
	return &Issuance{
		clients: newBuckets[string](rate.Every(cfg.ClientInterval), cfg.ClientBurst, maxKeys),
		addrs:   newBuckets[netip.Prefix](rate.Every(cfg.AddressInterval), cfg.AddressBurst, maxKeys),
	}
}

// Client is the bucket that refused a request for the client's sake.
const Client Reason = "client"

// Take spends one from clientID's and addr's buckets if both have one;
// otherwise it spends nothing and says which refused and when to retry.
// clientID must be an authenticated client's, so that the map holds
// registered clients only.
func (t *Issuance) Take(clientID string, addr netip.Addr, now time.Time) (bool, Reason, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := addressOf(addr)
	if wait := t.addrs.wait(a, now); wait > 0 {
		return false, Address, wait
	}
	if wait := t.clients.wait(clientID, now); wait > 0 {
		return false, Client, wait
	}
	t.addrs.spend(a, now)
	t.clients.spend(clientID, now)
	return true, "", 0
}
