package storagetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// newDevice is a pending device authorization created at t0 with a
// 5-second interval, expiring after 10 minutes.
func newDevice(t testing.TB, name string) storage.DeviceAuthorization {
	return storage.DeviceAuthorization{
		Hash:      storage.HashToken(token(t, name)),
		UserCode:  storage.HashToken("BCDF" + name),
		ClientID:  "cli",
		Scopes:    []string{"openid", "offline_access"},
		Resources: []string{"https://orders.example"},
		ExpiresAt: t0.Add(10 * time.Minute),
		Interval:  5 * time.Second,
		Status:    storage.DevicePending,
	}
}

func issuedFor(name string) storage.Issued {
	return storage.Issued{AccessTokenID: "jti-" + name, AccessTokenExpiresAt: t0.Add(time.Hour), RefreshFamilyID: "fam-" + name}
}

func testDevices(t *testing.T, newStore NewStore) {
	t.Run("CreateAndLookUp", func(t *testing.T) { testDeviceCreate(t, newStore(t)) })
	t.Run("Decide", func(t *testing.T) { testDeviceDecide(t, newStore(t)) })
	t.Run("PollInterval", func(t *testing.T) { testDevicePollInterval(t, newStore(t)) })
	t.Run("Redeem", func(t *testing.T) { testDeviceRedeem(t, newStore(t)) })
	t.Run("Expiry", func(t *testing.T) { testDeviceExpiry(t, newStore(t)) })
	t.Run("InvalidInput", func(t *testing.T) { testDeviceInvalidInput(t, newStore(t)) })
	t.Run("ApprovalRequest", func(t *testing.T) { testDeviceAuthRequest(t, newStore(t)) })
	t.Run("ConcurrentPoll", func(t *testing.T) {
		s := newStore(t)
		RacePollDeviceAuthorization(t, s, s)
	})
}

func assertDevice(t *testing.T, got, want storage.DeviceAuthorization) {
	t.Helper()
	if got.Hash != want.Hash || got.UserCode != want.UserCode || got.ClientID != want.ClientID || !slices.Equal(got.Scopes, want.Scopes) ||
		!slices.Equal(got.Resources, want.Resources) ||
		!sameTime(got.ExpiresAt, want.ExpiresAt) || got.Interval != want.Interval || !sameTime(got.LastPolledAt, want.LastPolledAt) ||
		got.Status != want.Status || got.Subject != want.Subject || !sameTime(got.AuthTime, want.AuthTime) || got.SessionID != want.SessionID ||
		!sameTimePtr(got.RedeemedAt, want.RedeemedAt) || !sameIssued(got.Issued, want.Issued) {
		t.Fatalf("device authorization:\n got %+v\nwant %+v", got, want)
	}
}

// testDeviceCreate: a device authorization is found by its user code while
// it lives; a user code is unique among the live ones only.
func testDeviceCreate(t *testing.T, s storage.Store) {
	ctx := context.Background()
	d := newDevice(t, "a")
	must(t, "CreateDeviceAuthorization", s.CreateDeviceAuthorization(ctx, d, t0))
	wantErr(t, "CreateDeviceAuthorization again", s.CreateDeviceAuthorization(ctx, d, t0), storage.ErrAlreadyExists)
	sameCode := newDevice(t, "b")
	sameCode.UserCode = d.UserCode
	wantErr(t, "CreateDeviceAuthorization with a live user code", s.CreateDeviceAuthorization(ctx, sameCode, t0.Add(time.Minute)), storage.ErrAlreadyExists)

	got, err := s.GetDeviceAuthorizationByUserCode(ctx, d.UserCode, t0)
	must(t, "GetDeviceAuthorizationByUserCode", err)
	assertDevice(t, got, d)
	got.Scopes[0], got.Resources[0] = "admin", "https://evil.example" // the caller's copy
	got, err = s.GetDeviceAuthorizationByUserCode(ctx, d.UserCode, d.ExpiresAt.Add(-time.Microsecond))
	must(t, "GetDeviceAuthorizationByUserCode just before expiry", err)
	assertDevice(t, got, d)
	_, err = s.GetDeviceAuthorizationByUserCode(ctx, d.UserCode, d.ExpiresAt)
	wantErr(t, "GetDeviceAuthorizationByUserCode at expiry", err, storage.ErrNotFound)
	_, err = s.GetDeviceAuthorizationByUserCode(ctx, storage.HashToken("unknown"), t0)
	wantErr(t, "GetDeviceAuthorizationByUserCode unknown", err, storage.ErrNotFound)

	// Once the first expired, its user code may be drawn again; the
	// lookup finds the new one.
	sameCode.ExpiresAt = d.ExpiresAt.Add(10 * time.Minute)
	must(t, "CreateDeviceAuthorization with an expired one's user code", s.CreateDeviceAuthorization(ctx, sameCode, d.ExpiresAt))
	got, err = s.GetDeviceAuthorizationByUserCode(ctx, d.UserCode, d.ExpiresAt)
	must(t, "GetDeviceAuthorizationByUserCode of the second", err)
	assertDevice(t, got, sameCode)
}

// testDeviceDecide: a pending authorization takes one decision, the
// person's, and only while it lives.
func testDeviceDecide(t *testing.T, s storage.Store) {
	ctx := context.Background()
	approved, denied, late := newDevice(t, "approved"), newDevice(t, "denied"), newDevice(t, "late")
	for _, d := range []storage.DeviceAuthorization{approved, denied, late} {
		must(t, "CreateDeviceAuthorization", s.CreateDeviceAuthorization(ctx, d, t0))
	}
	yes := storage.DeviceDecision{Approved: true, Subject: "alice", AuthTime: t0.Add(-time.Minute), SessionID: "sid-1"}
	must(t, "approve", s.DecideDeviceAuthorization(ctx, approved.Hash, yes, t0.Add(time.Minute)))
	wantErr(t, "deny after approving", s.DecideDeviceAuthorization(ctx, approved.Hash, storage.DeviceDecision{}, t0.Add(time.Minute)), storage.ErrDeviceDecided)
	wantErr(t, "approve again", s.DecideDeviceAuthorization(ctx, approved.Hash, yes, t0.Add(time.Minute)), storage.ErrDeviceDecided)
	got, err := s.GetDeviceAuthorizationByUserCode(ctx, approved.UserCode, t0.Add(time.Minute))
	must(t, "GetDeviceAuthorizationByUserCode", err)
	approved.Status, approved.Subject, approved.AuthTime, approved.SessionID = storage.DeviceApproved, yes.Subject, yes.AuthTime, yes.SessionID
	assertDevice(t, got, approved)

	must(t, "deny", s.DecideDeviceAuthorization(ctx, denied.Hash, storage.DeviceDecision{}, t0))
	wantErr(t, "approve after denying", s.DecideDeviceAuthorization(ctx, denied.Hash, yes, t0), storage.ErrDeviceDecided)
	got, err = s.GetDeviceAuthorizationByUserCode(ctx, denied.UserCode, t0)
	must(t, "GetDeviceAuthorizationByUserCode", err)
	if got.Status != storage.DeviceDenied || got.Subject != "" {
		t.Fatalf("denied authorization: %+v", got)
	}

	wantErr(t, "approve at expiry", s.DecideDeviceAuthorization(ctx, late.Hash, yes, late.ExpiresAt), storage.ErrNotFound)
	wantErr(t, "decide unknown", s.DecideDeviceAuthorization(ctx, storage.HashToken("unknown"), yes, t0), storage.ErrNotFound)
	got, err = s.GetDeviceAuthorizationByUserCode(ctx, late.UserCode, t0)
	must(t, "GetDeviceAuthorizationByUserCode", err)
	if got.Status != storage.DevicePending {
		t.Fatalf("an approval refused at expiry changed the authorization: %+v", got)
	}
}

// testDevicePollInterval: pending polls are answered pending while they
// keep the interval; one that comes sooner is slow_down and adds 5 s to
// the interval for every later poll (RFC 8628 §3.5).
func testDevicePollInterval(t *testing.T, s storage.Store) {
	ctx := context.Background()
	d := newDevice(t, "poll")
	must(t, "CreateDeviceAuthorization", s.CreateDeviceAuthorization(ctx, d, t0))
	poll := func(at time.Duration, want error, interval time.Duration) {
		t.Helper()
		got, err := s.PollDeviceAuthorization(ctx, d.Hash, d.ClientID, issuedFor("poll"), t0.Add(at))
		wantErr(t, "poll at +"+at.String(), err, want)
		if got.Interval != interval || !sameTime(got.LastPolledAt, t0.Add(at)) || got.RedeemedAt != nil {
			t.Fatalf("after the poll at +%s: interval %s, last polled %s, redeemed %v; want interval %s", at, got.Interval, got.LastPolledAt, got.RedeemedAt, interval)
		}
	}
	// Within DevicePollLeeway (1 s) of the interval is on time.
	poll(0, storage.ErrDevicePending, 5*time.Second) // the first poll may come at once
	poll(5*time.Second, storage.ErrDevicePending, 5*time.Second)
	poll(9*time.Second, storage.ErrDevicePending, 5*time.Second) // 4 s after: within the leeway
	poll(12*time.Second, storage.ErrDeviceSlowDown, 10*time.Second)
	poll(20*time.Second, storage.ErrDeviceSlowDown, 15*time.Second) // 8 s after, under the new 10 s
	poll(34*time.Second, storage.ErrDevicePending, 15*time.Second)
	poll(49*time.Second, storage.ErrDevicePending, 15*time.Second)

	// Another client's poll with this device code learns nothing and
	// changes nothing: its owner's next poll is on time.
	_, err := s.PollDeviceAuthorization(ctx, d.Hash, "another-client", issuedFor("thief"), t0.Add(50*time.Second))
	wantErr(t, "poll by another client", err, storage.ErrNotFound)
	poll(63*time.Second, storage.ErrDevicePending, 15*time.Second)
	_, err = s.PollDeviceAuthorization(ctx, storage.HashToken("unknown"), d.ClientID, issuedFor("x"), t0)
	wantErr(t, "poll unknown", err, storage.ErrNotFound)

	// Denied: access_denied on every poll, however soon.
	must(t, "deny", s.DecideDeviceAuthorization(ctx, d.Hash, storage.DeviceDecision{}, t0.Add(64*time.Second)))
	for range 2 {
		_, err = s.PollDeviceAuthorization(ctx, d.Hash, d.ClientID, issuedFor("poll"), t0.Add(65*time.Second))
		wantErr(t, "poll after the denial", err, storage.ErrDeviceDenied)
	}
}

// testDeviceRedeem: the first poll after the approval redeems the device
// code, whatever the interval; every later one is a replay that returns
// what the first issued.
func testDeviceRedeem(t *testing.T, s storage.Store) {
	ctx := context.Background()
	d := newDevice(t, "redeem")
	must(t, "CreateDeviceAuthorization", s.CreateDeviceAuthorization(ctx, d, t0))
	_, err := s.PollDeviceAuthorization(ctx, d.Hash, d.ClientID, issuedFor("first"), t0)
	wantErr(t, "poll", err, storage.ErrDevicePending)
	yes := storage.DeviceDecision{Approved: true, Subject: "alice", AuthTime: t0, SessionID: "sid-1"}
	must(t, "approve", s.DecideDeviceAuthorization(ctx, d.Hash, yes, t0.Add(time.Second)))
	_, err = s.PollDeviceAuthorization(ctx, d.Hash, "another-client", issuedFor("thief"), t0.Add(time.Second))
	wantErr(t, "poll by another client after the approval", err, storage.ErrNotFound)

	got, err := s.PollDeviceAuthorization(ctx, d.Hash, d.ClientID, issuedFor("first"), t0.Add(2*time.Second))
	must(t, "poll after the approval", err)
	at := t0.Add(2 * time.Second)
	want := d
	want.Status, want.Subject, want.AuthTime, want.SessionID = storage.DeviceApproved, "alice", t0, "sid-1"
	want.LastPolledAt, want.RedeemedAt, want.Issued = at, &at, issuedFor("first")
	assertDevice(t, got, want)

	got, err = s.PollDeviceAuthorization(ctx, d.Hash, d.ClientID, issuedFor("second"), t0.Add(time.Minute))
	wantErr(t, "poll after the redemption", err, storage.ErrDeviceCodeRedeemed)
	assertDevice(t, got, want)
	// Even after it expired, a replay is a replay.
	got, err = s.PollDeviceAuthorization(ctx, d.Hash, d.ClientID, issuedFor("third"), d.ExpiresAt.Add(time.Minute))
	wantErr(t, "poll after the redemption and expiry", err, storage.ErrDeviceCodeRedeemed)
	assertDevice(t, got, want)
}

// testDeviceExpiry: an expired device code is expired_token, also if the
// person approved it, until the garbage collector takes it
// DeviceExpiredRetention later; then it is unknown.
func testDeviceExpiry(t *testing.T, s storage.Store) {
	ctx := context.Background()
	pending, approved := newDevice(t, "pending"), newDevice(t, "approved")
	must(t, "CreateDeviceAuthorization", s.CreateDeviceAuthorization(ctx, pending, t0))
	must(t, "CreateDeviceAuthorization", s.CreateDeviceAuthorization(ctx, approved, t0))
	must(t, "approve", s.DecideDeviceAuthorization(ctx, approved.Hash, storage.DeviceDecision{Approved: true, Subject: "alice"}, t0))
	for _, d := range []storage.DeviceAuthorization{pending, approved} {
		_, err := s.PollDeviceAuthorization(ctx, d.Hash, d.ClientID, issuedFor("x"), d.ExpiresAt)
		wantErr(t, "poll at expiry", err, storage.ErrDeviceExpired)
	}

	n, err := s.DeleteExpired(ctx, pending.ExpiresAt.Add(storage.DeviceExpiredRetention-time.Second))
	must(t, "DeleteExpired within the retention", err)
	if n != 0 {
		t.Fatalf("DeleteExpired within the retention removed %d objects", n)
	}
	_, err = s.PollDeviceAuthorization(ctx, pending.Hash, pending.ClientID, issuedFor("x"), pending.ExpiresAt.Add(storage.DeviceExpiredRetention-time.Second))
	wantErr(t, "poll late within the retention", err, storage.ErrDeviceExpired)

	n, err = s.DeleteExpired(ctx, pending.ExpiresAt.Add(storage.DeviceExpiredRetention))
	must(t, "DeleteExpired after the retention", err)
	if n != 2 {
		t.Fatalf("DeleteExpired after the retention removed %d objects, want the 2 device authorizations", n)
	}
	_, err = s.PollDeviceAuthorization(ctx, pending.Hash, pending.ClientID, issuedFor("x"), t0)
	wantErr(t, "poll after the collection, with an old clock", err, storage.ErrNotFound)
}

func testDeviceInvalidInput(t *testing.T, s storage.Store) {
	ctx := context.Background()
	d := newDevice(t, "bad")
	for name, bad := range map[string]func(*storage.DeviceAuthorization){
		"without hash":      func(d *storage.DeviceAuthorization) { d.Hash = "" },
		"without user code": func(d *storage.DeviceAuthorization) { d.UserCode = "" },
		"without client":    func(d *storage.DeviceAuthorization) { d.ClientID = "" },
		"without expiry":    func(d *storage.DeviceAuthorization) { d.ExpiresAt = time.Time{} },
		"without interval":  func(d *storage.DeviceAuthorization) { d.Interval = 0 },
		"polled already":    func(d *storage.DeviceAuthorization) { d.LastPolledAt = t0 },
		"redeemed already":  func(d *storage.DeviceAuthorization) { d.RedeemedAt = &t0 },
		"approved already":  func(d *storage.DeviceAuthorization) { d.Status = storage.DeviceApproved },
		"without status":    func(d *storage.DeviceAuthorization) { d.Status = "" },
	} {
		x := newDevice(t, "bad")
		bad(&x)
		wantErr(t, "CreateDeviceAuthorization "+name, s.CreateDeviceAuthorization(ctx, x, t0), storage.ErrInvalid)
	}
	_, err := s.GetDeviceAuthorizationByUserCode(ctx, d.UserCode, t0)
	wantErr(t, "GetDeviceAuthorizationByUserCode of refused ones", err, storage.ErrNotFound)

	must(t, "CreateDeviceAuthorization", s.CreateDeviceAuthorization(ctx, d, t0))
	wantErr(t, "approve without subject", s.DecideDeviceAuthorization(ctx, d.Hash, storage.DeviceDecision{Approved: true}, t0), storage.ErrInvalid)
	_, err = s.PollDeviceAuthorization(ctx, d.Hash, d.ClientID, storage.Issued{}, t0)
	wantErr(t, "poll without an access token ID", err, storage.ErrInvalid)
	got, err := s.GetDeviceAuthorizationByUserCode(ctx, d.UserCode, t0)
	must(t, "GetDeviceAuthorizationByUserCode", err)
	assertDevice(t, got, d) // neither refusal changed it
}

// testDeviceAuthRequest: the authorization request of a device approval
// keeps the device it approves.
func testDeviceAuthRequest(t *testing.T, s storage.Store) {
	ctx := context.Background()
	d := newDevice(t, "req")
	r := storage.AuthRequest{ID: "device-req", ClientID: d.ClientID, Scopes: d.Scopes, ExpiresAt: d.ExpiresAt, Device: d.Hash}
	must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r))
	got, err := s.GetAuthRequest(ctx, r.ID, t0)
	must(t, "GetAuthRequest", err)
	assertAuthRequest(t, got, r)
	r.Subject, r.AuthTime, r.SessionID = "alice", t0, "sid"
	must(t, "UpdateAuthRequest", s.UpdateAuthRequest(ctx, r))
	got, err = s.GetAuthRequest(ctx, r.ID, t0)
	must(t, "GetAuthRequest after update", err)
	assertAuthRequest(t, got, r)
}

// RacePollDeviceAuthorization has many goroutines, spread over the given
// stores, poll one approved device code at once. Exactly one redeems it;
// every other sees ErrDeviceCodeRedeemed with the winner's Issued.
func RacePollDeviceAuthorization(t *testing.T, stores ...storage.Store) {
	t.Helper()
	ctx := context.Background()
	d := newDevice(t, "raced")
	must(t, "CreateDeviceAuthorization", stores[0].CreateDeviceAuthorization(ctx, d, t0))
	must(t, "approve", stores[0].DecideDeviceAuthorization(ctx, d.Hash, storage.DeviceDecision{Approved: true, Subject: "alice"}, t0))

	const callers = 32
	type result struct {
		d   storage.DeviceAuthorization
		err error
	}
	results := make([]result, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			s := stores[i%len(stores)]
			got, err := s.PollDeviceAuthorization(ctx, d.Hash, d.ClientID, issuedFor(string(rune('a'+i))), t0.Add(time.Second))
			results[i] = result{got, err}
		})
	}
	wg.Wait()
	var winner *storage.Issued
	for i, r := range results {
		if r.err == nil {
			if winner != nil {
				t.Fatalf("caller %d also redeemed the device code", i)
			}
			winner = &r.d.Issued
		}
	}
	if winner == nil {
		t.Fatal("no caller redeemed the approved device code")
	}
	for i, r := range results {
		if r.err == nil {
			continue
		}
		wantErr(t, "a losing poll", r.err, storage.ErrDeviceCodeRedeemed)
		if !sameIssued(r.d.Issued, *winner) {
			t.Fatalf("caller %d saw issued %+v, the winner issued %+v", i, r.d.Issued, *winner)
		}
	}
}
