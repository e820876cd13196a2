package storagetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// testPushedRequests: a pushed authorization request (RFC 9126) comes back
// once, whole, under the hash of its request_uri value; never by the value
// itself, never a second time, never after it expired.
func testPushedRequests(t *testing.T, s storage.Store) {
	ctx := context.Background()
	value := token(t, "request-uri")
	r := storage.PushedRequest{
		Hash: storage.HashToken(value), ClientID: "client-a", Pushed: true, ExpiresAt: t0.Add(time.Minute),
		Params: "client_id=client-a&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&response_type=code&scope=openid&state=xyz",
	}
	must(t, "CreatePushedRequest", s.CreatePushedRequest(ctx, r))
	wantErr(t, "CreatePushedRequest again", s.CreatePushedRequest(ctx, r), storage.ErrAlreadyExists)

	_, err := s.ConsumePushedRequest(ctx, value, t0)
	wantErr(t, "ConsumePushedRequest by plaintext", err, storage.ErrNotFound)

	got, err := s.ConsumePushedRequest(ctx, r.Hash, t0.Add(59*time.Second))
	must(t, "ConsumePushedRequest", err)
	if got.Hash != r.Hash || got.ClientID != r.ClientID || got.Params != r.Params || got.Pushed != r.Pushed || !sameTime(got.ExpiresAt, r.ExpiresAt) {
		t.Fatalf("ConsumePushedRequest returned\n %+v\nwant\n %+v", got, r)
	}
	_, err = s.ConsumePushedRequest(ctx, r.Hash, t0.Add(59*time.Second))
	wantErr(t, "ConsumePushedRequest a second time", err, storage.ErrNotFound)

	// A POST to /authorize held for the browser's GET: not pushed.
	held := storage.PushedRequest{Hash: storage.HashToken(token(t, "held")), ClientID: "client-a", Params: "state=a", ExpiresAt: t0.Add(time.Minute)}
	must(t, "CreatePushedRequest held", s.CreatePushedRequest(ctx, held))
	got, err = s.ConsumePushedRequest(ctx, held.Hash, t0)
	must(t, "ConsumePushedRequest held", err)
	if got.Pushed {
		t.Fatal("a held request came back as pushed")
	}

	// At its expiry it is gone, and stays gone.
	late := storage.PushedRequest{Hash: storage.HashToken(token(t, "late")), ClientID: "client-a", Params: "state=b", ExpiresAt: t0.Add(time.Minute)}
	must(t, "CreatePushedRequest late", s.CreatePushedRequest(ctx, late))
	_, err = s.ConsumePushedRequest(ctx, late.Hash, late.ExpiresAt)
	wantErr(t, "ConsumePushedRequest at expiry", err, storage.ErrNotFound)
	_, err = s.ConsumePushedRequest(ctx, late.Hash, t0)
	wantErr(t, "ConsumePushedRequest after an expired attempt", err, storage.ErrNotFound)
}

// RaceConsumePushedRequest has many goroutines, spread over the given
// stores (one store several times, or several sharing one database),
// consume one pushed request at once. Exactly one may get it.
func RaceConsumePushedRequest(t *testing.T, stores ...storage.Store) {
	t.Helper()
	const callers = 16
	ctx := context.Background()
	hash := storage.HashToken(token(t, "race"))
	must(t, "CreatePushedRequest", stores[0].CreatePushedRequest(ctx, storage.PushedRequest{
		Hash: hash, ClientID: "race.client", Params: "state=race", Pushed: true, ExpiresAt: t0.Add(time.Minute)}))
	var wg sync.WaitGroup
	errs := make([]error, callers)
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = stores[i%len(stores)].ConsumePushedRequest(ctx, hash, t0)
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, storage.ErrNotFound):
		default:
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d callers got one pushed request, want exactly 1", won)
	}
}
