package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// revocationChannel is the LISTEN/NOTIFY channel revocations are
// announced on. Every revoking statement notifies in its own transaction,
// so the announcement is delivered exactly when the revocation commits.
const revocationChannel = "gatehouse_revocations"

// revocations is each replica's copy of the revoked access tokens and
// refresh-token families, so that introspection checks revocation in
// memory instead of asking the database on every request. It is loaded
// when the replica starts listening and kept current by NOTIFY; a
// revocation on one replica reaches the others in one notification's
// latency (milliseconds on a healthy database; BENCHMARKS.md measures
// it). While the listening connection is down the copy is not trusted
// and IsAccessTokenRevoked asks the database, as it always did; on
// reconnecting the copy is loaded afresh, so nothing announced during
// the gap is missed.
type revocations struct {
	live atomic.Bool

	mu       sync.RWMutex
	jtis     map[string]time.Time // jti → when the token expires
	families map[string]time.Time // family → until its revocation is kept
}

func newRevocations() *revocations {
	return &revocations{jtis: map[string]time.Time{}, families: map[string]time.Time{}}
}

// revoked answers from memory; ok is false when the copy is not live.
func (r *revocations) revoked(jti, familyID string, now time.Time) (revoked, ok bool) {
	if !r.live.Load() {
		return false, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if exp, found := r.jtis[jti]; found && exp.After(now) {
		return true, true
	}
	if exp, found := r.families[familyID]; found && familyID != "" && exp.After(now) {
		return true, true
	}
	return false, true
}

// add records one revocation, keeping the later expiry.
func (r *revocations) add(kind byte, id string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.jtis
	if kind == 'f' {
		m = r.families
	}
	if old, ok := m[id]; !ok || until.After(old) {
		m[id] = until
	}
}

// prune forgets what has expired (the database's rows go with
// DeleteExpired too).
func (r *revocations) prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range []map[string]time.Time{r.jtis, r.families} {
		for id, until := range m {
			if !until.After(now) {
				delete(m, id)
			}
		}
	}
}

// apply reads a notification: "a UNIX-SECONDS JTI" or "f UNIX-SECONDS
// FAMILY".
func (r *revocations) apply(payload string) {
	kind, rest, ok := strings.Cut(payload, " ")
	secs, id, ok2 := strings.Cut(rest, " ")
	f, err := strconv.ParseFloat(secs, 64)
	if !ok || !ok2 || err != nil || (kind != "a" && kind != "f") {
		return
	}
	r.add(kind[0], id, time.UnixMicro(int64(f*1e6)))
}

// listen keeps the copy current until ctx ends, reconnecting after a
// failure, at most every 30 s.
func (s *Store) listen(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		began := time.Now()
		err := s.listenOnce(ctx)
		s.rev.live.Store(false)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("revocation listener stopped; revocations are checked in the database until it reconnects", "error", err)
		if time.Since(began) > time.Minute {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	// Waiting for a notification times out at every heartbeat: that needs
	// no cancel request, the connection just goes on.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := s.loadRevocations(ctx, conn); err != nil {
		return err
	}
	if err := s.probe(ctx, conn); err != nil {
		return err
	}
	s.rev.live.Store(true)
	for {
		wait, cancel := context.WithTimeout(ctx, s.heartbeat)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			s.rev.apply(n.Payload)
			continue
		case ctx.Err() != nil || !pgconn.Timeout(err):
			return err
		}
		// Quiet for a while. A network that drops packets sends no error
		// either: ask, so that the copy stops being trusted within
		// listenerHeartbeat plus a statement timeout of the database
		// going silent.
		ping, cancel := context.WithTimeout(ctx, s.pool.t.Statement)
		err = conn.Ping(ping)
		cancel()
		if err != nil {
			return fmt.Errorf("the database stopped answering: %w", err)
		}
	}
}

// listenerHeartbeat is how long the listener waits for a notification
// before it checks that the database still answers (a Store reads it when
// it opens).
var listenerHeartbeat = 10 * time.Second

// loadRevocations starts listening and loads the revocations into a fresh
// copy, each step within a statement timeout.
func (s *Store) loadRevocations(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 2*s.pool.t.Statement)
	defer cancel()
	if _, err := conn.Exec(ctx, "LISTEN "+revocationChannel); err != nil {
		return err
	}
	// Loaded after LISTEN: a revocation committed in between is in both.
	fresh := newRevocations()
	for _, q := range []struct {
		kind byte
		sql  string
	}{
		{'a', "SELECT jti, expires_at FROM revoked_access_tokens"},
		{'f', "SELECT id, expires_at FROM refresh_families WHERE revoked_at IS NOT NULL"},
	} {
		rows, err := conn.Query(ctx, q.sql)
		if err != nil {
			return err
		}
		var id string
		var until time.Time
		_, err = pgx.ForEachRow(rows, []any{&id, &until}, func() error { fresh.add(q.kind, id, until); return nil })
		if err != nil {
			return err
		}
	}
	s.rev.mu.Lock()
	s.rev.jtis, s.rev.families = fresh.jtis, fresh.families
	s.rev.mu.Unlock()
	return nil
}

// probe checks that notifications sent through the pool reach the
// listening connection. Behind a transaction pooler (PgBouncer in
// transaction mode) LISTEN succeeds but nothing arrives; then the copy
// never becomes live and every check asks the database.
func (s *Store) probe(ctx context.Context, conn *pgx.Conn) error {
	payload := "p " + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", revocationChannel, payload); err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		n, err := conn.WaitForNotification(wait)
		if err != nil {
			return errors.New("postgres: revocation notifications do not arrive (a transaction pooler in between?); checking revocations in the database")
		}
		if n.Payload == payload {
			return nil
		}
		s.rev.apply(n.Payload)
	}
}

// notifySQL wraps a revoking statement that RETURNs (id, expires_at) so
// that it also announces the revocation.
func notifySQL(kind, statement string) string {
	return "WITH r AS (" + statement + ") SELECT pg_notify('" + revocationChannel + "', '" + kind +
		" ' || extract(epoch FROM r.expires_at)::text || ' ' || r.id) FROM r"
}

// familyRevokedUntil is how long a family's revocation is kept at least.
func familyRevokedUntil(now time.Time) time.Time { return now.Add(storage.RevokedFamilyRetention) }

// RevocationsLive reports whether revocation checks are answered from
// memory (the listener is connected and loaded), for tests and readiness.
func (s *Store) RevocationsLive() bool { return s.rev.live.Load() }
