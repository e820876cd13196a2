package postgres

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// gcBatch bounds the rows one DELETE removes, so the collector never holds
// many row locks or bloats one transaction after a long outage.
const gcBatch = 5000

// expiringTables are the tables DeleteExpired counts, in an order that
// deletes refresh tokens before their families.
var expiringTables = []string{
	"auth_requests", "auth_codes", "refresh_tokens", "revoked_access_tokens", "consents", "sessions", "identities", "used_assertions",
	"logout_deliveries", "pushed_requests",
}

// DeleteExpired implements storage.Store. Family rows are internal and not
// counted; a family goes only once it has expired and no token references
// it. Several replicas may run it at once: the deletes are idempotent.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	s.rev.prune(now)
	total := 0
	for _, table := range expiringTables {
		n, err := s.deleteBatches(ctx, "DELETE FROM "+table+" WHERE expires_at <= $1 AND ctid IN (SELECT ctid FROM "+table+" WHERE expires_at <= $1 LIMIT $2)", now)
		total += n
		if err != nil {
			return total, wrap("delete expired "+table, err)
		}
	}
	n, err := s.deleteBatches(ctx, `DELETE FROM device_authorizations WHERE expires_at <= $1 AND ctid IN (
		SELECT ctid FROM device_authorizations WHERE expires_at <= $1 LIMIT $2)`, now.Add(-storage.DeviceExpiredRetention))
	total += n
	if err != nil {
		return total, wrap("delete expired device_authorizations", err)
	}
	// A session's clients are part of it, not objects of their own.
	if _, err := s.deleteBatches(ctx, `DELETE FROM session_clients WHERE expires_at <= $1 AND ctid IN (
		SELECT ctid FROM session_clients WHERE expires_at <= $1 LIMIT $2)`, now); err != nil {
		return total, wrap("delete expired session_clients", err)
	}
	// expires_at is checked again outside the subquery: a concurrent
	// CreateRefreshToken that extends the family makes PostgreSQL skip it.
	_, err = s.deleteBatches(ctx, `DELETE FROM refresh_families WHERE expires_at <= $1 AND id IN (
		SELECT f.id FROM refresh_families f
		WHERE f.expires_at <= $1 AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id)
		LIMIT $2)`, now)
	if err != nil {
		return total, wrap("delete expired refresh_families", err)
	}
	return total, nil
}

func (s *Store) deleteBatches(ctx context.Context, sql string, now time.Time) (int, error) {
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, sql, now, gcBatch)
		if err != nil {
			return total, err
		}
		n := int(tag.RowsAffected())
		total += n
		if n < gcBatch {
			return total, nil
		}
	}
}
