package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// CreateSession implements storage.SessionStore.
func (s *Store) CreateSession(ctx context.Context, sess storage.Session) error {
	if sess.Hash == "" || sess.ID == "" || sess.ExpiresAt.IsZero() {
		return invalid("session needs a hash, an ID and an expiry")
	}
	_, err := s.pool.Exec(ctx, "INSERT INTO sessions (hash, sid, subject, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5)",
		sess.Hash, sess.ID, sess.Subject, sess.AuthTime, sess.ExpiresAt)
	switch {
	case isUniqueViolation(err):
		return storage.ErrAlreadyExists
	case err != nil:
		return wrap("create session", err)
	}
	return nil
}

const sessionColumns = "hash, sid, subject, auth_time, expires_at"

func sessionDest(sess *storage.Session) []any {
	return []any{&sess.Hash, &sess.ID, &sess.Subject, &sess.AuthTime, &sess.ExpiresAt}
}

// GetSession implements storage.SessionStore.
func (s *Store) GetSession(ctx context.Context, hash string, now time.Time) (storage.Session, error) {
	var sess storage.Session
	err := s.pool.QueryRow(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE hash = $1 AND expires_at > $2", hash, now).
		Scan(sessionDest(&sess)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.Session{}, storage.ErrNotFound
	case err != nil:
		return storage.Session{}, wrap("get session", err)
	}
	return sess, nil
}

// GetSessionByID implements storage.SessionStore.
func (s *Store) GetSessionByID(ctx context.Context, id string, now time.Time) (storage.EndedSession, error) {
	var e storage.EndedSession
	err := s.pool.QueryRow(ctx, `SELECT `+sessionColumns+`,
			ARRAY(SELECT c.client_id FROM session_clients c WHERE c.sid = s.sid ORDER BY c.client_id)
		FROM sessions s WHERE sid = $1 AND expires_at > $2`, id, now).
		Scan(append(sessionDest(&e.Session), &e.Clients)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.EndedSession{}, storage.ErrNotFound
	case err != nil:
		return storage.EndedSession{}, wrap("get session by sid", err)
	}
	return e, nil
}

// GetSessionConsent implements storage.SessionStore: the session joined
// with its subject's consent, one statement.
func (s *Store) GetSessionConsent(ctx context.Context, hash, clientID string, now time.Time) (storage.Session, *storage.Consent, error) {
	var sess storage.Session
	var scopes []string
	var granted, expires *time.Time
	err := s.pool.QueryRow(ctx, `SELECT s.hash, s.sid, s.subject, s.auth_time, s.expires_at, c.scopes, c.granted_at, c.expires_at
		FROM sessions s LEFT JOIN consents c ON c.subject = s.subject AND c.client_id = $2 AND c.expires_at > $3
		WHERE s.hash = $1 AND s.expires_at > $3`, hash, clientID, now).
		Scan(append(sessionDest(&sess), &scopes, &granted, &expires)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.Session{}, nil, storage.ErrNotFound
	case err != nil:
		return storage.Session{}, nil, wrap("get session and consent", err)
	}
	if expires == nil {
		return sess, nil, nil
	}
	return sess, &storage.Consent{Subject: sess.Subject, ClientID: clientID, Scopes: scopes, GrantedAt: *granted, ExpiresAt: *expires}, nil
}

// DeleteSession implements storage.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	_, err := s.pool.Exec(ctx, `WITH gone AS (DELETE FROM sessions WHERE hash = $1 RETURNING sid)
		DELETE FROM session_clients WHERE sid IN (SELECT sid FROM gone)`, hash)
	if err != nil {
		return wrap("delete session", err)
	}
	return nil
}

// AddSessionClient implements storage.SessionStore.
func (s *Store) AddSessionClient(ctx context.Context, id, clientID string, now time.Time) error {
	if id == "" || clientID == "" {
		return invalid("a session client needs a session ID and a client")
	}
	var found bool
	err := s.pool.QueryRow(ctx, `WITH live AS (
			SELECT sid, expires_at FROM sessions WHERE sid = $1 AND expires_at > $3
		), added AS (
			INSERT INTO session_clients (sid, client_id, expires_at) SELECT sid, $2, expires_at FROM live
			ON CONFLICT (sid, client_id) DO NOTHING
		)
		SELECT EXISTS (SELECT 1 FROM live)`, id, clientID, now).Scan(&found)
	switch {
	case err != nil:
		return wrap("add session client", err)
	case !found:
		return storage.ErrNotFound
	}
	return nil
}

// personCondition is the SQL condition on column for the person or
// people sel names, and its argument.
func personCondition(sel storage.SessionSelector, column string) (string, string) {
	if sel.Subject != "" {
		return column + " = $1", sel.Subject
	}
	return "starts_with(" + column + ", $1)", sel.SubjectPrefix
}

// EndSessions implements storage.SessionStore: one transaction. The
// sessions are deleted first, which locks their rows: a concurrent call
// for the same session waits, then finds it gone and ends nothing.
func (s *Store) EndSessions(ctx context.Context, sel storage.SessionSelector, opts storage.EndOptions, now time.Time) (storage.Ended, error) {
	if !opts.Validate(sel) {
		return storage.Ended{}, invalid("ending sessions needs one selector (a person's, to revoke grants) and, to notify, a deadline")
	}
	cond, arg := "hash = $1", sel.Hash
	switch {
	case sel.ID != "":
		cond, arg = "sid = $1", sel.ID
	case sel.Hash == "":
		cond, arg = personCondition(sel, "subject")
	}
	var out storage.Ended
	var revoked []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		sessions, liveSIDs, err := deleteSessions(ctx, tx, cond, arg, now)
		if err != nil {
			return err
		}
		out = storage.Ended{Sessions: sessions}
		var holders []storage.Holder
		if revoked, holders, err = familiesToRevoke(ctx, tx, sel, opts, liveSIDs, now); err != nil {
			return err
		}
		if len(revoked) > 0 {
			tag, err := tx.Exec(ctx, notifySQL("f", `UPDATE refresh_families SET revoked_at = $2, expires_at = greatest(expires_at, $3)
				WHERE id = ANY($1) AND revoked_at IS NULL RETURNING id, expires_at`), revoked, now, familyRevokedUntil(now))
			if err != nil {
				return err
			}
			out.FamiliesRevoked = int(tag.RowsAffected())
		}
		if opts.RevokeGrants {
			c, _ := personCondition(sel, "subject")
			if err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM consents WHERE `+c+` RETURNING expires_at)
				SELECT count(*) FROM gone WHERE expires_at > $2`, arg, now).Scan(&out.ConsentsDeleted); err != nil {
				return err
			}
		}
		for i := range out.Sessions {
			slices.Sort(out.Sessions[i].Clients)
		}
		slices.SortFunc(out.Sessions, func(a, b storage.EndedSession) int {
			return cmp.Or(a.AuthTime.Compare(b.AuthTime), strings.Compare(a.ID, b.ID))
		})
		out.Deliveries = opts.Deliveries(out.Sessions, holders, now)
		return insertDeliveries(ctx, tx, out.Deliveries)
	})
	if err != nil {
		return storage.Ended{}, wrap("end sessions", err)
	}
	for _, id := range revoked {
		s.rev.add('f', id, familyRevokedUntil(now))
	}
	return out, nil
}

// deleteSessions deletes the sessions cond selects and their client
// lists, and returns the live ones (with the clients that got tokens in
// each) and their IDs.
func deleteSessions(ctx context.Context, tx pgx.Tx, cond, arg string, now time.Time) ([]storage.EndedSession, []string, error) {
	rows, err := tx.Query(ctx, "DELETE FROM sessions WHERE "+cond+" RETURNING "+sessionColumns, arg)
	if err != nil {
		return nil, nil, err
	}
	var sess storage.Session
	var ended []storage.EndedSession
	var sids, liveSIDs []string
	byID := map[string]int{}
	_, err = pgx.ForEachRow(rows, sessionDest(&sess), func() error {
		sids = append(sids, sess.ID)
		if sess.ExpiresAt.After(now) {
			liveSIDs = append(liveSIDs, sess.ID)
			byID[sess.ID] = len(ended)
			ended = append(ended, storage.EndedSession{Session: sess})
		}
		return nil
	})
	if err != nil || len(sids) == 0 {
		return ended, liveSIDs, err
	}
	rows, err = tx.Query(ctx, "DELETE FROM session_clients WHERE sid = ANY($1) RETURNING sid, client_id", sids)
	if err != nil {
		return nil, nil, err
	}
	var sid, client string
	_, err = pgx.ForEachRow(rows, []any{&sid, &client}, func() error {
		if i, ok := byID[sid]; ok {
			ended[i].Clients = append(ended[i].Clients, client)
		}
		return nil
	})
	return ended, liveSIDs, err
}

// familiesToRevoke lists the live, unrevoked refresh-token families that
// ending the sessions liveSIDs revokes (EndOptions), and with
// RevokeGrants the clients holding them.
func familiesToRevoke(ctx context.Context, tx pgx.Tx, sel storage.SessionSelector, opts storage.EndOptions, liveSIDs []string, now time.Time) ([]string, []storage.Holder, error) {
	var families []string
	var holders []storage.Holder
	if opts.RevokeGrants {
		c, arg := personCondition(sel, "t.subject")
		rows, err := tx.Query(ctx, `SELECT DISTINCT t.family_id, t.subject, t.client_id
			FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
			WHERE `+c+` AND t.expires_at > $2 AND f.revoked_at IS NULL
			ORDER BY t.subject, t.client_id, t.family_id`, arg, now)
		if err != nil {
			return nil, nil, err
		}
		var family string
		var h storage.Holder
		_, err = pgx.ForEachRow(rows, []any{&family, &h.Subject, &h.ClientID}, func() error {
			if !slices.Contains(families, family) {
				families = append(families, family)
			}
			if len(holders) == 0 || holders[len(holders)-1] != h {
				holders = append(holders, h)
			}
			return nil
		})
		return families, holders, err
	}
	if len(liveSIDs) == 0 {
		return nil, nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT t.family_id
		FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
		WHERE t.session_id = ANY($1) AND t.session_id <> '' AND t.expires_at > $2 AND f.revoked_at IS NULL
			AND ($3 = '' OR NOT ($3 = ANY(t.scopes)))`, liveSIDs, now, opts.OfflineScope)
	if err != nil {
		return nil, nil, err
	}
	families, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return families, nil, err
}

// insertDeliveries stores the deliveries in one statement.
func insertDeliveries(ctx context.Context, tx pgx.Tx, ds []storage.LogoutDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	cols := make([][]string, 4)
	var created, next, expires []time.Time
	for _, d := range ds {
		for i, v := range []string{d.ID, d.ClientID, d.Subject, d.SessionID} {
			cols[i] = append(cols[i], v)
		}
		created, next, expires = append(created, d.CreatedAt), append(next, d.NextAttemptAt), append(expires, d.ExpiresAt)
	}
	_, err := tx.Exec(ctx, `INSERT INTO logout_deliveries (id, client_id, subject, sid, created_at, next_attempt_at, expires_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[])`,
		cols[0], cols[1], cols[2], cols[3], created, next, expires)
	return err
}

const deliveryColumns = "id, client_id, subject, sid, created_at, attempts, next_attempt_at, expires_at, last_error"

// ClaimLogoutDeliveries implements storage.SessionStore. SKIP LOCKED lets
// replicas claim at once without waiting on each other's rows; the claim's
// conditions are on the locked rows themselves, so PostgreSQL checks them
// again on a row another replica claimed meanwhile.
func (s *Store) ClaimLogoutDeliveries(ctx context.Context, limit, perClient int, busy []string, lease time.Duration, now time.Time) ([]storage.LogoutDelivery, error) {
	if limit <= 0 || perClient <= 0 || lease <= 0 {
		return nil, invalid("a claim needs limits and a lease")
	}
	if busy == nil {
		busy = []string{}
	}
	rows, err := s.pool.Query(ctx, `UPDATE logout_deliveries SET claimed_until = $3
		WHERE id IN (
			SELECT d.id FROM logout_deliveries d
			WHERE d.next_attempt_at <= $1 AND d.expires_at > $1 AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
				AND d.id IN (
					SELECT id FROM (
						SELECT id, next_attempt_at, row_number() OVER (PARTITION BY client_id ORDER BY next_attempt_at, id) AS n
						FROM logout_deliveries
						WHERE next_attempt_at <= $1 AND expires_at > $1 AND (claimed_until IS NULL OR claimed_until <= $1)
							AND NOT (client_id = ANY($4))
					) ranked
					WHERE n <= $5 ORDER BY next_attempt_at, id LIMIT $2)
			FOR UPDATE SKIP LOCKED)
		RETURNING `+deliveryColumns, now, limit, now.Add(lease), busy, perClient)
	if err != nil {
		return nil, wrap("claim logout deliveries", err)
	}
	var d storage.LogoutDelivery
	var out []storage.LogoutDelivery
	_, err = pgx.ForEachRow(rows, []any{&d.ID, &d.ClientID, &d.Subject, &d.SessionID, &d.CreatedAt, &d.Attempts, &d.NextAttemptAt,
		&d.ExpiresAt, &d.LastError}, func() error {
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, wrap("claim logout deliveries", err)
	}
	slices.SortFunc(out, func(a, b storage.LogoutDelivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RetryLogoutDelivery implements storage.SessionStore.
func (s *Store) RetryLogoutDelivery(ctx context.Context, d storage.LogoutDelivery) error {
	tag, err := s.pool.Exec(ctx, `UPDATE logout_deliveries SET attempts = $2, last_error = $3, next_attempt_at = $4, claimed_until = NULL
		WHERE id = $1`, d.ID, d.Attempts, d.LastError, d.NextAttemptAt)
	switch {
	case err != nil:
		return wrap("retry logout delivery", err)
	case tag.RowsAffected() == 0:
		return storage.ErrNotFound
	}
	return nil
}

// FinishLogoutDelivery implements storage.SessionStore.
func (s *Store) FinishLogoutDelivery(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM logout_deliveries WHERE id = $1", id); err != nil {
		return wrap("finish logout delivery", err)
	}
	return nil
}
