package memory

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// CreatePushedRequest implements storage.PushedRequestStore.
func (s *Store) CreatePushedRequest(_ context.Context, r storage.PushedRequest) error {
	if r.Hash == "" || r.ClientID == "" || r.ExpiresAt.IsZero() {
		return invalid("pushed request needs a hash, a client and an expiry")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pushed[r.Hash]; ok {
		return storage.ErrAlreadyExists
	}
	s.pushed[r.Hash] = r
	return nil
}

// ConsumePushedRequest implements storage.PushedRequestStore.
func (s *Store) ConsumePushedRequest(_ context.Context, hash string, now time.Time) (storage.PushedRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.pushed[hash]
	if !ok {
		return storage.PushedRequest{}, storage.ErrNotFound
	}
	delete(s.pushed, hash)
	if !live(r.ExpiresAt, now) {
		return storage.PushedRequest{}, storage.ErrNotFound
	}
	return r, nil
}
