package controllers

import (
	"testing"
	"time"
)

// A provider whose check failed is checked again within 30 s, so that the
// token server, which sends nobody to an unreachable provider, follows its
// recovery soon; a healthy one every 5 minutes.
func TestProviderRecheckCadence(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	if got := (identityCheck{at: at, ok: false}).recheckAfter(); got != at.Add(30*time.Second) {
		t.Errorf("a failed check is repeated at %s", got)
	}
	if got := (identityCheck{at: at, ok: true}).recheckAfter(); got != at.Add(5*time.Minute) {
		t.Errorf("a good check is repeated at %s", got)
	}
}
