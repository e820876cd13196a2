package acked

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
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

// Checked concurrently, the items are sorted as one at a time, a group's
// items are checked in the order they were acknowledged (never two of
// one group at once), and check's error ends the verification.
func TestVerifyConcurrently(t *testing.T) {
	l := New()
	for i := range 200 {
		l.Ack(RefreshToken, fmt.Sprint("fam-", i%20), fmt.Sprint("rt-", i))
		l.Ack(AccessToken, fmt.Sprint("fam-", i%20), fmt.Sprint("at-", i))
	}
	l.Ack(RefreshToken, "fam-lost", "gone")
	l.Revoked("fam-3")
	var mu sync.Mutex
	busy := map[string]bool{}
	seen := map[string][]string{}
	var running, most int
	r, err := l.VerifyConcurrently(context.Background(), 8, func(_ context.Context, _ Kind, token string) (State, error) {
		var group string
		if _, i, ok := strings.Cut(token, "-"); ok {
			var k int
			_, _ = fmt.Sscan(i, &k)
			group = fmt.Sprint("fam-", k%20)
		}
		mu.Lock()
		running++
		most = max(most, running)
		if busy[group] && group != "" {
			t.Errorf("two items of %s checked at once", group)
		}
		busy[group] = true
		seen[group] = append(seen[group], token)
		mu.Unlock()
		time.Sleep(time.Millisecond) // long enough for the workers to overlap
		mu.Lock()
		running--
		busy[group] = false
		mu.Unlock()
		if token == "gone" || group == "fam-3" {
			return Inactive, nil
		}
		return Usable, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 20 families and 200 access tokens, plus the lost family; fam-3's
	// refresh item and its 10 access tokens are revoked.
	if r.Acknowledged != 221 || r.Usable != 209 || r.Revoked != 11 || len(r.Lost) != 1 || r.Lost[0] != "fam-lost" || len(r.StillActive) != 0 {
		t.Errorf("report %+v", r)
	}
	if most < 2 {
		t.Errorf("at most %d checks at once, want several", most)
	}
	if got := seen["fam-1"]; len(got) != 11 || got[0] != "rt-181" || got[1] != "at-1" || got[10] != "at-181" {
		t.Errorf("fam-1 checked in the order %v, want its refresh item, then its access tokens as acknowledged", got)
	}
	_, err = l.VerifyConcurrently(context.Background(), 4, func(_ context.Context, _ Kind, token string) (State, error) {
		if token == "at-50" {
			return 0, errors.New("introspection answered 500")
		}
		return Usable, nil
	})
	if err == nil || !strings.Contains(err.Error(), "introspection answered 500") || !strings.Contains(err.Error(), "fam-10/access-token-") {
		t.Errorf("error %v, want check's, naming the item", err)
	}
}
