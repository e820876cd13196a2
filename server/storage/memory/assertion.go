package memory

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// UseAssertion implements storage.AssertionStore.
func (s *Store) UseAssertion(_ context.Context, id string, expiresAt, now time.Time) error {
	if id == "" || expiresAt.IsZero() {
		return invalid("assertion needs an id and an expiry")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.assertions[id]; ok && live(exp, now) {
		return storage.ErrAssertionReplayed
	}
	s.assertions[id] = expiresAt
	return nil
}
