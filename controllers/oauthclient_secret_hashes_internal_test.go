package controllers

import (
	"fmt"
	"testing"
	"time"
)

func TestSecretHashesWithCurrentAndPruned(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var hs secretHashes
	hs = hs.withCurrent("h1", time.Time{})
	hs = hs.withCurrent("h2", now.Add(time.Hour))
	hs = hs.withCurrent("h3", now.Add(2*time.Hour))
	if got := hs.current(); got != "h3" {
		t.Fatalf("current = %q, want h3", got)
	}
	want := map[string]time.Time{"h1": now.Add(time.Hour), "h2": now.Add(2 * time.Hour)}
	for _, h := range hs {
		if h.Hash == "h3" {
			continue
		}
		if h.NotAfter == nil || !h.NotAfter.Time.Equal(want[h.Hash]) {
			t.Errorf("%s not after %v, want %s", h.Hash, h.NotAfter, want[h.Hash])
		}
	}
	// Re-publishing the current hash changes nothing.
	hs = hs.withCurrent("h3", now.Add(3*time.Hour))
	if len(hs) != 3 {
		t.Errorf("replacing with the same hash: %+v", hs)
	}
	// Without grace the previous current hash goes at once.
	hs = hs.withCurrent("h4", time.Time{})
	for _, h := range hs {
		if h.Hash == "h3" {
			t.Error("h3 survived a replacement without grace")
		}
	}

	hs = hs.pruned(now.Add(time.Hour)) // h1 expires exactly now
	for _, h := range hs {
		if h.Hash == "h1" {
			t.Error("an expired hash survived pruning")
		}
	}
	if len(hs) != 2 {
		t.Errorf("after pruning: %+v", hs)
	}
}

func TestSecretHashesPrunedKeepsWithinMaxItems(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var hs secretHashes
	for i := 0; i < 20; i++ { // rotations faster than the grace period
		hs = hs.withCurrent(fmt.Sprintf("h%02d", i), now.Add(time.Duration(i+1)*time.Minute))
	}
	hs = hs.pruned(now)
	if len(hs) != maxSecretHashes {
		t.Fatalf("%d hashes, want %d", len(hs), maxSecretHashes)
	}
	if hs.current() != "h19" {
		t.Error("pruning dropped the current hash")
	}
	for _, h := range hs {
		if h.Hash < "h04" {
			t.Errorf("kept %s, which expires first, over a later one", h.Hash)
		}
	}
}

// The list a method is called on is never changed: the decision starts
// from the client's own status.secretHashes.
func TestSecretHashesLeaveTheirInputAlone(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	hs := secretHashes{}.withCurrent("h1", time.Time{}).withCurrent("h2", now.Add(time.Hour))
	before := fmt.Sprint(hs)
	_ = hs.withCurrent("h3", now.Add(2*time.Hour))
	_ = hs.pruned(now.Add(2 * time.Hour))
	if after := fmt.Sprint(hs); after != before {
		t.Errorf("changed from %s to %s", before, after)
	}
}
