package keyset

import (
	"encoding/json"
	"slices"
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
	t.Run("access-token key only", func(t *testing.T) { testNeverBreaksValidation(t, nil) })
	// With an ID-token lineage, each algorithm's key must hold the
	// invariant on its own: a relying party verifying RS256 ID tokens
	// never meets an unpublished RS256 key.
	t.Run("with an RS256 ID-token key", func(t *testing.T) { testNeverBreaksValidation(t, []string{RS256}) })
}

func testNeverBreaksValidation(t *testing.T, idAlgs []string) {
	const (
		tokenLifetime = 10 * time.Minute
		skew          = 5 * time.Minute
		step          = 5 * time.Minute
	)
	p := Policy{Algorithm: ES256, IDTokenAlgorithms: idAlgs, RotationInterval: 24 * time.Hour, PrepublishPeriod: 2 * time.Hour, Retention: tokenLifetime + skew}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	set := &Set{}
	published := map[string]time.Time{} // kid -> first time seen in the set
	lastSigned := map[string]time.Time{}
	bootstrap := map[string]bool{}
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
		for _, alg := range p.algorithms() {
			signer, ok := set.KeyFor(alg, now)
			if !ok {
				t.Fatalf("%s: no %s signing key", now, alg)
			}
			if now.Equal(start) {
				bootstrap[signer.ID] = true
			}
			if !bootstrap[signer.ID] && now.Sub(published[signer.ID]) < p.PrepublishPeriod {
				t.Fatalf("%s: key %s signs %s after it was published; want at least %s", now, signer.ID, now.Sub(published[signer.ID]), p.PrepublishPeriod)
			}
			lastSigned[signer.ID] = now
		}
		if k, ok := set.SigningKey(now); !ok || k.Algorithm != ES256 {
			t.Fatalf("%s: access tokens are signed by %+v, want the ES256 key", now, k)
		}
		for kid, signed := range lastSigned {
			if now.Before(signed.Add(tokenLifetime)) && !inSet[kid] {
				t.Fatalf("%s: key %s signed a token at %s that is still valid, but it is no longer published", now, kid, signed)
			}
		}
		if len(set.Keys) > 3*len(p.algorithms()) {
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

// TestAdvanceAddsAnIDTokenKeyToAnOlderSet: a key set written before ID
// tokens existed (one ES256 key, no accessTokenAlgorithm) gains an RS256
// key that is published a full prepublish period before it signs, and the
// existing key is left exactly as it was. Until the RS256 key signs, ID
// tokens fall back to the access-token key.
func TestAdvanceAddsAnIDTokenKeyToAnOlderSet(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	old := Policy{Algorithm: ES256, RotationInterval: 10 * time.Hour, PrepublishPeriod: time.Hour, Retention: 15 * time.Minute}
	set := &Set{}
	mustAdvance(t, set, old, t0)
	data, err := set.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// What an older operator wrote had no accessTokenAlgorithm.
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	delete(raw, "accessTokenAlgorithm")
	data, _ = json.Marshal(raw)
	if set, err = Parse(data); err != nil {
		t.Fatal(err)
	}
	existing := set.Keys[0]

	p := old
	p.IDTokenAlgorithms = []string{RS256}
	now := t0.Add(2 * time.Hour)
	res := mustAdvance(t, set, p, now)
	if len(res.Generated) != 1 || len(res.Activated)+len(res.Retired)+len(res.Removed) != 0 || len(set.Keys) != 2 {
		t.Fatalf("adding the RS256 lineage: %+v, keys %+v", res, set.Keys)
	}
	if got := set.Keys[0]; got.ID != existing.ID || got.State != StateActive || !got.ActivatesAt.Equal(existing.ActivatesAt) || got.RetiredAt != nil || got.PrivateKeyPEM != existing.PrivateKeyPEM {
		t.Errorf("the existing key changed: %+v", got)
	}
	rs := set.Keys[1]
	if rs.Algorithm != RS256 || rs.State != StateNext || !rs.ActivatesAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("new key %s %s activates %s; want RS256 next at %s", rs.Algorithm, rs.State, rs.ActivatesAt, now.Add(time.Hour))
	}
	if !res.NextTransition.Equal(rs.ActivatesAt) {
		t.Errorf("next transition %s, want the RS256 activation %s", res.NextTransition, rs.ActivatesAt)
	}
	if set.AccessTokenAlgorithm != ES256 || set.ActiveKeyID() != existing.ID {
		t.Errorf("access-token algorithm %q, active key %s; want ES256, %s", set.AccessTokenAlgorithm, set.ActiveKeyID(), existing.ID)
	}
	if k, _ := set.IDTokenKey(RS256, now); k.ID != existing.ID {
		t.Errorf("before the RS256 key signs, ID tokens are signed by %s, want the access-token key", k.ID)
	}
	if got := set.Algorithms(); !slices.Equal(got, []string{ES256, RS256}) {
		t.Errorf("Algorithms() = %v", got)
	}
	if res := mustAdvance(t, set, p, now.Add(time.Minute)); res.Changed() {
		t.Errorf("a second reconcile changed the set: %+v", res)
	}

	at := now.Add(time.Hour)
	if k, _ := set.IDTokenKey(RS256, at); k.ID != rs.ID {
		t.Errorf("at its activation ID tokens are signed by %s, want the RS256 key", k.ID)
	}
	if k, _ := set.SigningKey(at); k.ID != existing.ID {
		t.Errorf("access tokens are signed by %s, want the ES256 key still", k.ID)
	}
	res = mustAdvance(t, set, p, at)
	if len(res.Activated) != 1 || res.Activated[0] != rs.ID || len(res.Retired) != 0 {
		t.Fatalf("activation of the RS256 key: %+v", res)
	}
	// Both lineages then rotate on their own schedule.
	if want := t0.Add(9 * time.Hour); !res.NextTransition.Equal(want) {
		t.Errorf("next transition %s, want the ES256 prepublish at %s", res.NextTransition, want)
	}
}

// TestAdvanceAlgorithmChangeWithIDTokenKey: changing the access-token
// algorithm rotates only the access-token lineage, and access tokens keep
// their old algorithm until the new key is promoted; when the new
// algorithm is the ID-token one, its lineage takes over access tokens too.
func TestAdvanceAlgorithmChangeWithIDTokenKey(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{Algorithm: ES256, IDTokenAlgorithms: []string{RS256}, RotationInterval: 10 * time.Hour, PrepublishPeriod: time.Hour, Retention: 15 * time.Minute}
	set := &Set{}
	res := mustAdvance(t, set, p, t0)
	if len(res.Activated) != 2 || set.AccessTokenAlgorithm != ES256 {
		t.Fatalf("bootstrap: %+v, access algorithm %q", res, set.AccessTokenAlgorithm)
	}
	es, rs := set.Keys[0], set.Keys[1]

	p.Algorithm = EdDSA
	now := t0.Add(2 * time.Hour)
	res = mustAdvance(t, set, p, now)
	if len(res.Generated) != 1 || set.Keys[2].Algorithm != EdDSA || !set.Keys[2].ActivatesAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("algorithm change: %+v", res)
	}
	ed := set.Keys[2]
	if k, _ := set.SigningKey(now.Add(2 * time.Hour)); k.ID != es.ID {
		t.Errorf("before the operator promotes the EdDSA key, access tokens are signed by %s (%s), want the ES256 key", k.ID, k.Algorithm)
	}
	res = mustAdvance(t, set, p, now.Add(time.Hour))
	if !slices.Equal(res.Activated, []string{ed.ID}) || !slices.Equal(res.Retired, []string{es.ID}) || set.AccessTokenAlgorithm != EdDSA {
		t.Fatalf("promotion: %+v, access algorithm %q", res, set.AccessTokenAlgorithm)
	}
	if k, _ := set.IDTokenKey(RS256, now.Add(time.Hour)); k.ID != rs.ID {
		t.Errorf("the RS256 key was disturbed by the access-token algorithm change")
	}

	// To RS256: one lineage; the EdDSA key keeps signing access tokens
	// until a new RS256 key takes over, then it retires with the old
	// RS256 key.
	p.Algorithm = RS256
	now = t0.Add(4 * time.Hour)
	res = mustAdvance(t, set, p, now)
	if len(res.Generated) != 1 || set.Keys[len(set.Keys)-1].Algorithm != RS256 || set.AccessTokenAlgorithm != EdDSA {
		t.Fatalf("change to RS256: %+v, access algorithm %q", res, set.AccessTokenAlgorithm)
	}
	if k, _ := set.SigningKey(now); k.ID != ed.ID {
		t.Errorf("access tokens are signed by %s, want the EdDSA key until the operator promotes", k.ID)
	}
	res = mustAdvance(t, set, p, now.Add(time.Hour))
	if len(res.Activated) != 1 || len(res.Retired) != 2 || set.AccessTokenAlgorithm != RS256 {
		t.Fatalf("promotion of the new RS256 key: %+v, access algorithm %q", res, set.AccessTokenAlgorithm)
	}
	if k, _ := set.IDTokenKey(RS256, now.Add(time.Hour)); k.ID != res.Activated[0] {
		t.Errorf("ID tokens are signed by %s, want the new RS256 key", k.ID)
	}
}
