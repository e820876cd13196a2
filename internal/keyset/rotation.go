package keyset

import (
	"fmt"
	"slices"
	"time"
)

// Policy is an AuthorizationServer's rotation settings.
type Policy struct {
	// Algorithm signs access tokens (spec.signing.algorithm).
	Algorithm string
	// IDTokenAlgorithms are further algorithms that each keep a key of
	// their own, for ID tokens: OpenID Connect Discovery 1.0 §3 requires
	// RS256 whatever signs access tokens. An algorithm equal to Algorithm
	// shares its key.
	IDTokenAlgorithms []string
	RotationInterval  time.Duration
	PrepublishPeriod  time.Duration
	// Retention is how long a retired key stays published: the longest
	// lifetime of a token it may have signed plus the allowed clock skew.
	Retention time.Duration
	// RotateNow starts a rotation at once (a key compromise, a forced
	// test): a new key is published now and signs after PrepublishPeriod.
	RotateNow bool
}

// algorithms is the policy's lineages: Algorithm first, then each further
// algorithm once.
func (p Policy) algorithms() []string {
	algs := []string{p.Algorithm}
	for _, a := range p.IDTokenAlgorithms {
		if !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	return algs
}

// Result says what Advance did.
type Result struct {
	Generated, Activated, Retired, Removed []string
	// NextTransition is when Advance next has work to do: the operator
	// requeues for exactly then.
	NextTransition time.Time
}

// Changed reports whether the set was modified.
func (r Result) Changed() bool {
	return len(r.Generated)+len(r.Activated)+len(r.Retired)+len(r.Removed) > 0
}

// Advance moves the key set's life cycle to time now. Every algorithm of
// the policy has a lineage of keys of its own, and each lineage follows the
// same schedule:
//
//  1. retired keys whose RemoveAfter has passed leave the set;
//  2. a next key whose ActivatesAt has come becomes active, and the key it
//     replaces retires, staying published for Retention;
//  3. an empty set gets a key per algorithm that signs at once (there is
//     nothing yet that could fail to validate); an algorithm added to a set
//     that already signs (an RS256 key for ID tokens, next to an existing
//     access-token key) gets a next key instead, so that it too is
//     published PrepublishPeriod before it signs, and the keys already
//     there are left alone;
//  4. PrepublishPeriod before a lineage's active key is due for rotation, a
//     next key is generated to take over at that time, and never sooner
//     than PrepublishPeriod from now, so a late reconcile cannot shorten the
//     prepublish window;
//  5. a change of Algorithm, or RotateNow, makes the rotation due now.
//
// Keys of an algorithm the policy no longer names belong to the
// access-token lineage, so that an algorithm change retires them when the
// new algorithm's key takes over, exactly as a rotation does.
//
// Advance is pure apart from generate, so tests drive it with any clock.
func Advance(set *Set, p Policy, now time.Time, generate func(alg string) (Key, error)) (Result, error) {
	var res Result
	if p.RotationInterval <= 0 || p.PrepublishPeriod < 0 || p.PrepublishPeriod >= p.RotationInterval {
		return res, fmt.Errorf("invalid rotation policy: interval %s, prepublish %s", p.RotationInterval, p.PrepublishPeriod)
	}

	// 1. Drop retired keys past their retention.
	set.Keys = slices.DeleteFunc(set.Keys, func(k Key) bool {
		if k.State == StateRetired && k.RemoveAfter != nil && !now.Before(*k.RemoveAfter) {
			res.Removed = append(res.Removed, k.ID)
			return true
		}
		return false
	})

	algs := p.algorithms()
	// An empty set bootstraps every lineage at once; otherwise a lineage
	// without an active key is new, and is prepublished.
	bootstrap := set.withState(StateActive) == nil
	for i, alg := range algs {
		member := func(k *Key) bool { return k.Algorithm == alg }
		if i == 0 {
			member = func(k *Key) bool { return k.Algorithm == alg || !slices.Contains(algs, k.Algorithm) }
		}
		next, err := advanceLineage(set, p, alg, member, bootstrap, now, generate, &res)
		if err != nil {
			return res, err
		}
		if res.NextTransition.IsZero() || next.Before(res.NextTransition) {
			res.NextTransition = next
		}
		if i == 0 {
			// The access-token lineage's active key signs access tokens
			// (SigningKey) until the operator promotes its successor.
			if a := set.lineageKey(StateActive, member, alg); a != nil {
				set.AccessTokenAlgorithm = a.Algorithm
			}
		}
	}
	for _, k := range set.Keys {
		if k.State == StateRetired && k.RemoveAfter != nil && k.RemoveAfter.Before(res.NextTransition) {
			res.NextTransition = *k.RemoveAfter
		}
	}
	return res, nil
}

// advanceLineage runs steps 2 to 5 of Advance for the keys member selects,
// whose algorithm is alg, and returns when the lineage next has work.
func advanceLineage(set *Set, p Policy, alg string, member func(*Key) bool, bootstrap bool, now time.Time,
	generate func(string) (Key, error), res *Result) (time.Time, error) {
	// 2. Promote the newest next key that is due; retire what it replaces.
	if next := set.dueNext(now, member); next != nil {
		for i := range set.Keys {
			k := &set.Keys[i]
			if !member(k) {
				continue
			}
			if k.State == StateActive || (k.State == StateNext && k != next && !k.ActivatesAt.After(now)) {
				retire(k, now, p.Retention)
				res.Retired = append(res.Retired, k.ID)
			}
		}
		next.State = StateActive
		res.Activated = append(res.Activated, next.ID)
	}

	active := set.lineageKey(StateActive, member, alg)
	// 3. Bootstrap.
	if active == nil && bootstrap {
		k, err := newKey(alg, now, now, StateActive, generate)
		if err != nil {
			return time.Time{}, err
		}
		set.Keys = append(set.Keys, k)
		res.Generated = append(res.Generated, k.ID)
		res.Activated = append(res.Activated, k.ID)
		active = &set.Keys[len(set.Keys)-1]
	}

	// 4 and 5. Prepublish the successor; a new lineage's first key is due
	// now.
	rotationDue := now
	if active != nil && active.Algorithm == alg && !p.RotateNow {
		rotationDue = active.ActivatesAt.Add(p.RotationInterval)
	}
	next := set.lineageKey(StateNext, member, alg)
	if next != nil && next.Algorithm != alg && next.ActivatesAt.After(now) {
		// A next key of the old algorithm never signed: replace it.
		id := next.ID
		set.Keys = slices.DeleteFunc(set.Keys, func(k Key) bool { return k.ID == id })
		res.Removed = append(res.Removed, id)
		next = nil
	}
	if next == nil && !now.Before(rotationDue.Add(-p.PrepublishPeriod)) {
		activatesAt := rotationDue
		if earliest := now.Add(p.PrepublishPeriod); activatesAt.Before(earliest) {
			activatesAt = earliest
		}
		k, err := newKey(alg, now, activatesAt, StateNext, generate)
		if err != nil {
			return time.Time{}, err
		}
		set.Keys = append(set.Keys, k)
		res.Generated = append(res.Generated, k.ID)
		next = &set.Keys[len(set.Keys)-1]
	}
	if next != nil {
		return next.ActivatesAt, nil
	}
	return rotationDue.Add(-p.PrepublishPeriod), nil
}

// NextRotation is when a key next starts signing: the earliest activation
// time of the published next keys, else the access-token key's rotation
// time. Every lineage rotates on the same schedule, so this is one moment
// unless an algorithm was added or changed.
func (s *Set) NextRotation(interval time.Duration) (time.Time, bool) {
	var earliest time.Time
	for _, k := range s.Keys {
		if k.State == StateNext && (earliest.IsZero() || k.ActivatesAt.Before(earliest)) {
			earliest = k.ActivatesAt
		}
	}
	if !earliest.IsZero() {
		return earliest, true
	}
	if active := s.activeAccessKey(); active != nil {
		return active.ActivatesAt.Add(interval), true
	}
	return time.Time{}, false
}

// ActiveKeyID is the kid of the active key that signs access tokens, or "".
func (s *Set) ActiveKeyID() string {
	if k := s.activeAccessKey(); k != nil {
		return k.ID
	}
	return ""
}

// activeAccessKey is the active key of AccessTokenAlgorithm, or, in a set
// written before that field existed, the first active key.
func (s *Set) activeAccessKey() *Key {
	for i := range s.Keys {
		k := &s.Keys[i]
		if k.State == StateActive && (s.AccessTokenAlgorithm == "" || k.Algorithm == s.AccessTokenAlgorithm) {
			return k
		}
	}
	return s.withState(StateActive)
}

func (s *Set) withState(state State) *Key {
	for i := range s.Keys {
		if s.Keys[i].State == state {
			return &s.Keys[i]
		}
	}
	return nil
}

// lineageKey is the lineage's key in state: one of a foreign algorithm
// first, so that an algorithm change is seen, else one of alg.
func (s *Set) lineageKey(state State, member func(*Key) bool, alg string) *Key {
	var own *Key
	for i := range s.Keys {
		k := &s.Keys[i]
		if k.State != state || !member(k) {
			continue
		}
		if k.Algorithm != alg {
			return k
		}
		if own == nil {
			own = k
		}
	}
	return own
}

// dueNext is the lineage's newest next key whose activation time has come.
func (s *Set) dueNext(now time.Time, member func(*Key) bool) *Key {
	var due *Key
	for i := range s.Keys {
		k := &s.Keys[i]
		if k.State == StateNext && member(k) && !k.ActivatesAt.After(now) && (due == nil || k.ActivatesAt.After(due.ActivatesAt)) {
			due = k
		}
	}
	return due
}

func retire(k *Key, now time.Time, retention time.Duration) {
	retiredAt := now.UTC()
	removeAfter := retiredAt.Add(retention)
	k.State = StateRetired
	k.RetiredAt = &retiredAt
	k.RemoveAfter = &removeAfter
}

func newKey(alg string, created, activatesAt time.Time, state State, generate func(string) (Key, error)) (Key, error) {
	k, err := generate(alg)
	if err != nil {
		return Key{}, err
	}
	k.Created = created.UTC()
	k.ActivatesAt = activatesAt.UTC()
	k.State = state
	return k, nil
}
