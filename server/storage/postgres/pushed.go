package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// CreatePushedRequest implements storage.PushedRequestStore.
func (s *Store) CreatePushedRequest(ctx context.Context, r storage.PushedRequest) error {
	if r.Hash == "" || r.ClientID == "" || r.ExpiresAt.IsZero() {
		return invalid("pushed request needs a hash, a client and an expiry")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO pushed_requests (hash, client_id, params, pushed, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		r.Hash, r.ClientID, r.Params, r.Pushed, r.ExpiresAt)
	switch {
	case isUniqueViolation(err):
		return storage.ErrAlreadyExists
	case err != nil:
		return wrap("create pushed request", err)
	}
	return nil
}

// ConsumePushedRequest implements storage.PushedRequestStore: one DELETE
// that returns the row, so of two replicas consuming one request_uri the
// second finds nothing. An expired row is deleted all the same.
func (s *Store) ConsumePushedRequest(ctx context.Context, hash string, now time.Time) (storage.PushedRequest, error) {
	var r storage.PushedRequest
	err := s.pool.QueryRow(ctx, `DELETE FROM pushed_requests WHERE hash = $1
		RETURNING hash, client_id, params, pushed, expires_at`, hash).
		Scan(&r.Hash, &r.ClientID, &r.Params, &r.Pushed, &r.ExpiresAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.PushedRequest{}, storage.ErrNotFound
	case err != nil:
		return storage.PushedRequest{}, wrap("consume pushed request", err)
	case !now.Before(r.ExpiresAt):
		return storage.PushedRequest{}, storage.ErrNotFound
	}
	return r, nil
}
