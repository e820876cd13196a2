package memory

import (
	"context"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// SaveIdentity implements storage.IdentityStore.
func (s *Store) SaveIdentity(_ context.Context, id storage.Identity) error {
	if id.Subject == "" || id.ExpiresAt.IsZero() {
		return invalid("identity needs a subject and an expiry")
	}
	id.Data = slices.Clone(id.Data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identities[id.Subject] = id
	delete(s.rechecks, id.Subject)
	return nil
}

// GetIdentity implements storage.IdentityStore.
func (s *Store) GetIdentity(_ context.Context, subject string, now time.Time) (storage.Identity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.identities[subject]
	if !ok || !live(id.ExpiresAt, now) {
		return storage.Identity{}, storage.ErrNotFound
	}
	id.Data = slices.Clone(id.Data)
	return id, nil
}

// ClaimIdentityRecheck implements storage.IdentityStore.
func (s *Store) ClaimIdentityRecheck(_ context.Context, subject string, due, until, now time.Time) (storage.Identity, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.identities[subject]
	if !ok || !live(id.ExpiresAt, now) {
		return storage.Identity{}, false, storage.ErrNotFound
	}
	id.Data = slices.Clone(id.Data)
	if id.UpdatedAt.After(due) || s.rechecks[subject].After(now) {
		return id, false, nil
	}
	s.rechecks[subject] = until
	return id, true, nil
}
