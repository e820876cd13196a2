package postgres

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// UseAssertion implements storage.AssertionStore: one statement. The
// insert wins, or takes over a row that has expired; a live row makes it
// change nothing, which is a replay. The primary key serializes two
// replicas inserting one id: the second waits for the first and then sees
// its row.
func (s *Store) UseAssertion(ctx context.Context, id string, expiresAt, now time.Time) error {
	if id == "" || expiresAt.IsZero() {
		return invalid("assertion needs an id and an expiry")
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO used_assertions (id, expires_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE used_assertions.expires_at <= $3`,
		id, expiresAt, now)
	if err != nil {
		return wrap("use assertion", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrAssertionReplayed
	}
	return nil
}
