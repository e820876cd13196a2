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
		ON CONFLICT (subject) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at,
			recheck_claimed_until = NULL`,
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

// ClaimIdentityRecheck implements storage.IdentityStore: one conditional
// UPDATE decides, so of concurrent callers on any replica one wins.
func (s *Store) ClaimIdentityRecheck(ctx context.Context, subject string, due, until, now time.Time) (storage.Identity, bool, error) {
	var id storage.Identity
	var claimed bool
	err := s.pool.QueryRow(ctx, `WITH claimed AS (
			UPDATE identities SET recheck_claimed_until = $3
			WHERE subject = $1 AND expires_at > $4 AND updated_at <= $2
				AND (recheck_claimed_until IS NULL OR recheck_claimed_until <= $4)
			RETURNING subject
		)
		SELECT subject, data, updated_at, expires_at, EXISTS (SELECT 1 FROM claimed)
		FROM identities WHERE subject = $1 AND expires_at > $4`, subject, due, until, now).
		Scan(&id.Subject, &id.Data, &id.UpdatedAt, &id.ExpiresAt, &claimed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.Identity{}, false, storage.ErrNotFound
	case err != nil:
		return storage.Identity{}, false, wrap("claim identity re-check", err)
	}
	return id, claimed, nil
}
