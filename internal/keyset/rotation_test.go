package keyset

import (
	"testing"
	"time"
)

// TestAdvanceNeverBreaksValidation drives a key set through several
// rotations with a simulated clock, reconciling when Advance asks to (as
// the operator's RequeueAfter does) and sometimes hours late (an operator
// outage), and checks at every step the rotation invariant: the signing key
// was published PrepublishPeriod before it signed, and every key that
// signed a token still valid is still published.
func TestAdvanceNeverBreaksValidation(t *testing.T) {
	const (
		tokenLifetime = 10 * time.Minute
		skew          = 5 * time.Minute
		step          = 5 * time.Minute
	)
	p := Policy{Algorithm: ES256, RotationInterval: 24 * time.Hour, PrepublishPeriod: 2 * time.Hour, Retention: tokenLifetime + skew}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	set := &Set{}
	published := map[string]time.Time{} // kid -> first time seen in the set
	lastSigned := map[string]time.Time{}
	var bootstrap string
	var next time.Time // when the operator reconciles next
	outage := [2]time.Time{start.Add(70 * time.Hour), start.Add(75 * time.Hour)}
	rotations, removals := 0, 0

	for now := start; now.Before(start.Add(8 * 24 * time.Hour)); now = now.Add(step) {
		inOutage := !now.Before(outage[0]) && now.Before(outage[1])
		if !now.Before(next) && !inOutage {
			res, err := Advance(set, p, now, Generate)
			if err != nil {
				t.Fatal(err)
			}
			if !res.NextTransition.After(now) {
				t.Fatalf("%s: next transition %s is not in the future", now, res.NextTransition)
			}
			next = res.NextTransition
			rotations += len(res.Activated)
			removals += len(res.Removed)
		}
		inSet := map[string]bool{}
		for _, k := range set.Keys {
			inSet[k.ID] = true
			if _, ok := published[k.ID]; !ok {
				published[k.ID] = now
			}
		}
		signer, ok := set.SigningKey(now)
		if !ok {
			t.Fatalf("%s: no signing key", now)
		}
		if bootstrap == "" {
			bootstrap = signer.ID
		}
		if signer.ID != bootstrap && now.Sub(published[signer.ID]) < p.PrepublishPeriod {
			t.Fatalf("%s: key %s signs %s after it was published; want at least %s", now, signer.ID, now.Sub(published[signer.ID]), p.PrepublishPeriod)
		}
		lastSigned[signer.ID] = now
		for kid, signed := range lastSigned {
			if now.Before(signed.Add(tokenLifetime)) && !inSet[kid] {
				t.Fatalf("%s: key %s signed a token at %s that is still valid, but it is no longer published", now, kid, signed)
			}
		}
		if len(set.Keys) > 3 {
			t.Fatalf("%s: %d keys published; the set should stay small", now, len(set.Keys))
		}
	}
	if rotations < 8 || removals < 6 {
		t.Errorf("the simulation saw %d activations and %d removals; it did not exercise rotation", rotations, removals)
	}
}

func TestAdvanceStepByStep(t *testing.T) {
	p := Policy{Algorithm: ES256, RotationInterval: 10 * time.Hour, PrepublishPeriod: time.Hour, Retention: 15 * time.Minute}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	set := &Set{}

	res := mustAdvance(t, set, p, t0)
	if len(res.Generated) != 1 || len(res.Activated) != 1 || set.ActiveKeyID() != res.Generated[0] {
		t.Fatalf("bootstrap: %+v", res)
	}
	first := set.ActiveKeyID()
	if want := t0.Add(9 * time.Hour); !res.NextTransition.Equal(want) {
		t.Errorf("bootstrap next transition %s, want %s (rotation minus prepublish)", res.NextTransition, want)
	}
	if res := mustAdvance(t, set, p, t0.Add(time.Hour)); res.Changed() {
		t.Errorf("an early reconcile changed the set: %+v", res)
	}

	res = mustAdvance(t, set, p, t0.Add(9*time.Hour))
	if len(res.Generated) != 1 || len(set.Keys) != 2 || set.Keys[1].State != StateNext {
		t.Fatalf("prepublish: %+v, keys %+v", res, set.Keys)
	}
	second := res.Generated[0]
	if want := t0.Add(10 * time.Hour); !res.NextTransition.Equal(want) || !set.Keys[1].ActivatesAt.Equal(want) {
		t.Errorf("next key activates %s, next transition %s; want both %s", set.Keys[1].ActivatesAt, res.NextTransition, want)
	}
	if k, _ := set.SigningKey(t0.Add(10*time.Hour - time.Second)); k.ID != first {
		t.Errorf("before activation the signer is %s, want %s", k.ID, first)
	}
	if k, _ := set.SigningKey(t0.Add(10 * time.Hour)); k.ID != second {
		t.Errorf("at activation the signer is %s even before the operator reconciles, want %s", k.ID, second)
	}

	res = mustAdvance(t, set, p, t0.Add(10*time.Hour))
	if set.ActiveKeyID() != second || len(res.Retired) != 1 || res.Retired[0] != first {
		t.Fatalf("activation: %+v", res)
	}
	if want := t0.Add(10*time.Hour + 15*time.Minute); !res.NextTransition.Equal(want) {
		t.Errorf("after activation next transition %s, want the retired key's removal at %s", res.NextTransition, want)
	}
	res = mustAdvance(t, set, p, t0.Add(10*time.Hour+15*time.Minute))
	if len(res.Removed) != 1 || res.Removed[0] != first || len(set.Keys) != 1 {
		t.Fatalf("removal: %+v, keys %d", res, len(set.Keys))
	}

	// An algorithm change rotates now, still respecting the prepublish period.
	p.Algorithm = EdDSA
	now := t0.Add(11 * time.Hour)
	res = mustAdvance(t, set, p, now)
	if len(res.Generated) != 1 || set.Keys[1].Algorithm != EdDSA || !set.Keys[1].ActivatesAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("algorithm change: %+v, keys %+v", res, set.Keys)
	}
	// RotateNow on a set that already has a next key changes nothing more.
	p.RotateNow = true
	if res := mustAdvance(t, set, p, now.Add(time.Minute)); res.Changed() {
		t.Errorf("RotateNow with a next key pending changed the set: %+v", res)
	}
}

func TestAdvanceRejectsBadPolicy(t *testing.T) {
	for _, p := range []Policy{
		{Algorithm: ES256, RotationInterval: 0, PrepublishPeriod: 0},
		{Algorithm: ES256, RotationInterval: time.Hour, PrepublishPeriod: time.Hour},
	} {
		if _, err := Advance(&Set{}, p, time.Now(), Generate); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
	}
}

func mustAdvance(t *testing.T, set *Set, p Policy, now time.Time) Result {
	t.Helper()
	res, err := Advance(set, p, now, Generate)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
