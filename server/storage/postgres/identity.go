package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// SaveIdentity implements storage.IdentityStore.
func (s *Store) SaveIdentity(ctx context.Context, id storage.Identity) error {
	if id.Subject == "" || id.ExpiresAt.IsZero() {
		return invalid("identity needs a subject and an expiry")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO identities (subject, data, updated_at, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (subject) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at`,
		id.Subject, id.Data, id.UpdatedAt, id.ExpiresAt)
	if err != nil {
		return wrap("save identity", err)
	}
	return nil
}

// GetIdentity implements storage.IdentityStore.
func (s *Store) GetIdentity(ctx context.Context, subject string, now time.Time) (storage.Identity, error) {
	var id storage.Identity
	err := s.pool.QueryRow(ctx, "SELECT subject, data, updated_at, expires_at FROM identities WHERE subject = $1 AND expires_at > $2", subject, now).
		Scan(&id.Subject, &id.Data, &id.UpdatedAt, &id.ExpiresAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.Identity{}, storage.ErrNotFound
	case err != nil:
		return storage.Identity{}, wrap("get identity", err)
	}
	return id, nil
}
