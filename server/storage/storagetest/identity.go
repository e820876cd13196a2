package storagetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// testIdentities: an identity is replaced by the next login's, expires, and
// refuses to be stored without a subject or an expiry.
func testIdentities(t *testing.T, s storage.Store) {
	ctx := context.Background()
	_, err := s.GetIdentity(ctx, "idp:corp:x", t0)
	wantErr(t, "GetIdentity unknown", err, storage.ErrNotFound)

	first := storage.Identity{Subject: "idp:corp:x", Data: []byte(`{"groups":["a"]}`), UpdatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	must(t, "SaveIdentity", s.SaveIdentity(ctx, first))
	first.Data[0] = 'X' // the store must have kept its own copy
	got, err := s.GetIdentity(ctx, "idp:corp:x", t0)
	must(t, "GetIdentity", err)
	if string(got.Data) != `{"groups":["a"]}` || !sameTime(got.ExpiresAt, t0.Add(time.Hour)) {
		t.Fatalf("identity: got %+v (data %q)", got, got.Data)
	}

	second := storage.Identity{Subject: "idp:corp:x", Data: []byte(`{"groups":["b"]}`), UpdatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(2 * time.Hour)}
	must(t, "SaveIdentity again", s.SaveIdentity(ctx, second))
	got, err = s.GetIdentity(ctx, "idp:corp:x", t0.Add(90*time.Minute))
	must(t, "GetIdentity after the second login", err)
	if !bytes.Equal(got.Data, second.Data) || !sameTime(got.UpdatedAt, second.UpdatedAt) {
		t.Fatalf("identity after replace: got %q, want %q", got.Data, second.Data)
	}
	_, err = s.GetIdentity(ctx, "idp:corp:x", second.ExpiresAt)
	wantErr(t, "GetIdentity at expiry", err, storage.ErrNotFound)

	wantErr(t, "SaveIdentity without subject", s.SaveIdentity(ctx, storage.Identity{ExpiresAt: t0.Add(time.Hour)}), storage.ErrInvalid)
	wantErr(t, "SaveIdentity without expiry", s.SaveIdentity(ctx, storage.Identity{Subject: "idp:corp:y"}), storage.ErrInvalid)
	_, err = s.GetIdentity(ctx, "idp:corp:y", t0)
	wantErr(t, "GetIdentity of the refused one", err, storage.ErrNotFound)

	n, err := s.DeleteExpired(ctx, second.ExpiresAt)
	must(t, "DeleteExpired", err)
	if n != 1 {
		t.Fatalf("DeleteExpired removed %d objects, want the 1 identity", n)
	}
}
