package storagetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// testAssertions: an assertion is accepted once while it lives, again
// once it has expired (its jti could not be replayed then: the assertion
// itself has expired), and never without an id or an expiry.
func testAssertions(t *testing.T, s storage.Store) {
	ctx := context.Background()
	id := storage.AssertionID("orders.worker", "jti-1")
	exp := t0.Add(5 * time.Minute)
	must(t, "UseAssertion", s.UseAssertion(ctx, id, exp, t0))
	wantErr(t, "UseAssertion replayed", s.UseAssertion(ctx, id, exp, t0.Add(time.Minute)), storage.ErrAssertionReplayed)
	wantErr(t, "UseAssertion replayed just before expiry", s.UseAssertion(ctx, id, exp, exp.Add(-time.Microsecond)), storage.ErrAssertionReplayed)

	// The same jti from another issuer is another assertion.
	must(t, "UseAssertion other issuer", s.UseAssertion(ctx, storage.AssertionID("other.client", "jti-1"), exp, t0))

	// At its expiry the record is dead: a new assertion with that id (a
	// client reusing jti values after a long time) is accepted again, and
	// then refused again.
	must(t, "UseAssertion after expiry", s.UseAssertion(ctx, id, exp.Add(time.Hour), exp))
	wantErr(t, "UseAssertion replayed after re-use", s.UseAssertion(ctx, id, exp.Add(time.Hour), exp.Add(time.Minute)), storage.ErrAssertionReplayed)

	wantErr(t, "UseAssertion without id", s.UseAssertion(ctx, "", exp, t0), storage.ErrInvalid)
	wantErr(t, "UseAssertion without expiry", s.UseAssertion(ctx, storage.AssertionID("c", "j"), time.Time{}, t0), storage.ErrInvalid)
	must(t, "UseAssertion after refused input", s.UseAssertion(ctx, storage.AssertionID("c", "j"), exp, t0))
}

// RaceUseAssertion has many goroutines, spread over the given stores (one
// store several times, or several stores sharing one database), present
// one assertion at once. Exactly one must be accepted; every other caller
// must see ErrAssertionReplayed.
func RaceUseAssertion(t *testing.T, stores ...storage.Store) {
	t.Helper()
	const callers = 16
	ctx := context.Background()
	id := storage.AssertionID("race.client", t.Name())
	var wg sync.WaitGroup
	errs := make([]error, callers)
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = stores[i%len(stores)].UseAssertion(ctx, id, t0.Add(time.Minute), t0)
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, storage.ErrAssertionReplayed):
		default:
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d callers were accepted with one assertion, want exactly 1", won)
	}
}
