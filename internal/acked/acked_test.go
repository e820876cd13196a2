package acked

import (
	"context"
	"strings"
	"testing"
)

// The checker tells usable, revoked, lost and still-active items apart,
// and follows a family to the token its last acknowledged rotation gave.
func TestVerifySortsItems(t *testing.T) {
	l := New()
	l.Ack(RefreshToken, "fam-usable", "rt1")
	l.Ack(RefreshToken, "fam-usable", "rt2")
	l.Ack(RefreshToken, "fam-revoked", "rt3")
	l.Ack(AccessToken, "fam-revoked", "at0")
	l.Revoked("fam-revoked")
	l.Ack(RefreshToken, "fam-lost", "rt4")
	l.Ack(AccessToken, "cc-1", "at1")
	l.Ack(AccessToken, "cc-2", "at2")
	l.Revoked("cc-2")
	works := map[string]bool{"rt2": true, "at1": true, "at2": true}
	r, err := l.Verify(context.Background(), func(_ context.Context, _ Kind, token string) (State, error) {
		if works[token] {
			return Usable, nil
		}
		return Inactive, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Acknowledged != 6 || r.Usable != 2 || r.Revoked != 2 || r.Answers != 7 || r.Rotations != 1 {
		t.Errorf("report %+v", r)
	}
	if len(r.Lost) != 1 || r.Lost[0] != "fam-lost" {
		t.Errorf("lost %v, want [fam-lost]", r.Lost)
	}
	if len(r.StillActive) != 1 || !strings.HasPrefix(r.StillActive[0], "cc-2/") {
		t.Errorf("still active %v, want cc-2's access token", r.StillActive)
	}
	if r.OK() {
		t.Error("a report with a lost item is OK")
	}
	t.Log(r)
}
