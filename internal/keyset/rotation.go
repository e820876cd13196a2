package keyset

import (
	"fmt"
	"slices"
	"time"
)

// Policy is an AuthorizationServer's rotation settings.
type Policy struct {
	Algorithm        string
	RotationInterval time.Duration
	PrepublishPeriod time.Duration
	// Retention is how long a retired key stays published: the longest
	// lifetime of a token it may have signed plus the allowed clock skew.
	Retention time.Duration
	// RotateNow starts a rotation at once (a key compromise, a forced
	// test): a new key is published now and signs after PrepublishPeriod.
	RotateNow bool
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

// Advance moves the key set's life cycle to time now:
//
//  1. retired keys whose RemoveAfter has passed leave the set;
//  2. a next key whose ActivatesAt has come becomes active, and the key it
//     replaces retires, staying published for Retention;
//  3. an empty set gets a key that signs at once (there is nothing yet that
//     could fail to validate);
//  4. PrepublishPeriod before the active key's rotation is due, a next key
//     is generated to take over at that time, and never sooner than
//     PrepublishPeriod from now, so a late reconcile cannot shorten the
//     prepublish window;
//  5. a change of algorithm, or RotateNow, makes the rotation due now.
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

	// 2. Promote the newest next key that is due; retire what it replaces.
	if next := set.dueNext(now); next != nil {
		for i := range set.Keys {
			k := &set.Keys[i]
			if k.State == StateActive || (k.State == StateNext && k != next && !k.ActivatesAt.After(now)) {
				retire(k, now, p.Retention)
				res.Retired = append(res.Retired, k.ID)
			}
		}
		next.State = StateActive
		res.Activated = append(res.Activated, next.ID)
	}

	active := set.withState(StateActive)
	// 3. Bootstrap.
	if active == nil {
		k, err := newKey(p.Algorithm, now, now, StateActive, generate)
		if err != nil {
			return res, err
		}
		set.Keys = append(set.Keys, k)
		res.Generated = append(res.Generated, k.ID)
		res.Activated = append(res.Activated, k.ID)
		active = &set.Keys[len(set.Keys)-1]
	}

	// 4 and 5. Prepublish the successor.
	rotationDue := active.ActivatesAt.Add(p.RotationInterval)
	if p.RotateNow || active.Algorithm != p.Algorithm {
		rotationDue = now
	}
	next := set.withState(StateNext)
	if next != nil && next.Algorithm != p.Algorithm && next.ActivatesAt.After(now) {
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
		k, err := newKey(p.Algorithm, now, activatesAt, StateNext, generate)
		if err != nil {
			return res, err
		}
		set.Keys = append(set.Keys, k)
		res.Generated = append(res.Generated, k.ID)
		next = &set.Keys[len(set.Keys)-1]
	}

	// When is there work next?
	if next != nil {
		res.NextTransition = next.ActivatesAt
	} else {
		res.NextTransition = rotationDue.Add(-p.PrepublishPeriod)
	}
	for _, k := range set.Keys {
		if k.State == StateRetired && k.RemoveAfter != nil && k.RemoveAfter.Before(res.NextTransition) {
			res.NextTransition = *k.RemoveAfter
		}
	}
	return res, nil
}

// NextRotation is when the active key stops signing: the activation time of
// the next key if one is published, else the active key's rotation time.
func (s *Set) NextRotation(interval time.Duration) (time.Time, bool) {
	if next := s.withState(StateNext); next != nil {
		return next.ActivatesAt, true
	}
	if active := s.withState(StateActive); active != nil {
		return active.ActivatesAt.Add(interval), true
	}
	return time.Time{}, false
}

// ActiveKeyID is the kid of the key in state active, or "".
func (s *Set) ActiveKeyID() string {
	if k := s.withState(StateActive); k != nil {
		return k.ID
	}
	return ""
}

func (s *Set) withState(state State) *Key {
	for i := range s.Keys {
		if s.Keys[i].State == state {
			return &s.Keys[i]
		}
	}
	return nil
}

// dueNext is the newest next key whose activation time has come.
func (s *Set) dueNext(now time.Time) *Key {
	var due *Key
	for i := range s.Keys {
		k := &s.Keys[i]
		if k.State == StateNext && !k.ActivatesAt.After(now) && (due == nil || k.ActivatesAt.After(due.ActivatesAt)) {
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
