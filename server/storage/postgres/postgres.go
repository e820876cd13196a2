// Package postgres is the durable storage driver, shared by any number of
// token-server replicas. It uses pgx with a connection pool.
//
// Open applies the embedded schema migrations (migrations/NNNN_*.sql) under
// an advisory lock, so replicas that start together are safe. The decisions
// that must be atomic across replicas are single conditional statements
// (RedeemCode) or row locks (RotateRefreshToken): of two replicas racing on
// one code or refresh token, exactly one wins.
//
// Reads ignore expired rows; DeleteExpired removes them, in batches. The
// token server calls it on a ticker (server.Server.RunGC) on every replica;
// concurrent runs are harmless.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// cancelGrace is how long a timed-out statement's connection waits for the
// database to confirm the cancel before it is dropped.
const cancelGrace = time.Second

// Store is a storage.Store in PostgreSQL.
type Store struct {
	pool *boundedPool
	rev  *revocations
	log  *slog.Logger
	// errs counts failed statements (metrics.go).
	errs *errorCounter
	// heartbeat is the listener's listenerHeartbeat.
	heartbeat time.Duration
	// stop ends the revocation listener.
	stop context.CancelFunc
	done chan struct{}
}

var _ storage.Store = (*Store)(nil)

// Option adjusts how Open connects.
type Option func(*settings)

type settings struct {
	pool     *pgxpool.Config
	log      *slog.Logger
	timeouts Timeouts
}

// WithQueryTracer traces every statement, e.g. to count round trips.
func WithQueryTracer(t pgx.QueryTracer) Option {
	return func(s *settings) { s.pool.ConnConfig.Tracer = t }
}

// WithLogger is where the driver reports what no caller sees: the
// revocation listener's failures. slog.Default() otherwise.
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) { s.log = l }
}

// DBSystem names the driver in storage spans (storage.Traced).
func (*Store) DBSystem() string { return "postgresql" }

// Open connects to the database at url, checks that it answers, and
// migrates the schema. url is a PostgreSQL connection URL or DSN as pgx
// reads it: pool settings (pool_max_conns, default max(4, CPUs)), a
// search_path to keep Gatehouse's tables in a schema of their own in a
// shared database, or default_query_exec_mode=exec behind a transaction
// pooler such as PgBouncer.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors can echo the URL, password included.
		return nil, errors.New("postgres: the connection URL is not valid")
	}
	set := settings{pool: cfg, log: slog.Default(), timeouts: DefaultTimeouts}
	for _, o := range opts {
		o(&set)
	}
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = set.timeouts.Connect
	}
	// A statement that times out is canceled in the database too (a cancel
	// request), not only abandoned: otherwise one stuck behind a lock would
	// still commit once the lock is released, after its client was told
	// it failed. If the database cannot be reached to cancel, the
	// connection is dropped a moment later.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelGrace}
	}
	errs := newErrorCounter()
	cfg.ConnConfig.Tracer = errs.tracer(cfg.ConnConfig.Tracer)
	raw, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool := &boundedPool{Pool: raw, t: set.timeouts}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	if _, err := migrate(ctx, raw); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	listenCtx, stop := context.WithCancel(context.Background())
	s := &Store{pool: pool, rev: newRevocations(), log: set.log, errs: errs, heartbeat: listenerHeartbeat, stop: stop, done: make(chan struct{})}
	go func() { defer close(s.done); s.listen(listenCtx) }()
	return s, nil
}

// Close stops the revocation listener and closes the pool.
func (s *Store) Close() error {
	s.stop()
	<-s.done
	s.pool.Close()
	return nil
}

// Ping implements storage.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

func invalid(what string) error { return fmt.Errorf("%s: %w", what, storage.ErrInvalid) }

// isUniqueViolation reports a duplicate primary key (SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// scopes keeps NOT NULL text[] columns non-null: pgx sends a nil slice as NULL.
func scopes(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func wrap(op string, err error) error { return fmt.Errorf("postgres: %s: %w", op, err) }

// CreateAuthRequest implements storage.Store.
func (s *Store) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	if r.ID == "" || r.ExpiresAt.IsZero() {
		return invalid("auth request needs an ID and an expiry")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_requests
		(id, client_id, redirect_uri, scopes, state, code_challenge, code_challenge_method, subject, auth_time, expires_at,
		nonce, login_hint, force_consent, session_id, resources, device, response_mode, claims, ui_locales)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		r.ID, r.ClientID, r.RedirectURI, scopes(r.Scopes), r.State, r.CodeChallenge, r.CodeChallengeMethod, r.Subject, r.AuthTime, r.ExpiresAt,
		r.Nonce, r.LoginHint, r.ForceConsent, r.SessionID, scopes(r.Resources), r.Device, r.ResponseMode, r.Claims, r.UILocales)
	switch {
	case isUniqueViolation(err):
		return storage.ErrAlreadyExists
	case err != nil:
		return wrap("create auth request", err)
	}
	return nil
}

// GetAuthRequest implements storage.Store.
func (s *Store) GetAuthRequest(ctx context.Context, id string, now time.Time) (storage.AuthRequest, error) {
	var r storage.AuthRequest
	err := s.pool.QueryRow(ctx, `SELECT id, client_id, redirect_uri, scopes, state, code_challenge, code_challenge_method, subject, auth_time, expires_at,
		nonce, login_hint, force_consent, session_id, resources, device, response_mode, claims, ui_locales
		FROM auth_requests WHERE id = $1 AND expires_at > $2`, id, now).
		Scan(&r.ID, &r.ClientID, &r.RedirectURI, &r.Scopes, &r.State, &r.CodeChallenge, &r.CodeChallengeMethod, &r.Subject, &r.AuthTime, &r.ExpiresAt,
			&r.Nonce, &r.LoginHint, &r.ForceConsent, &r.SessionID, &r.Resources, &r.Device, &r.ResponseMode, &r.Claims, &r.UILocales)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.AuthRequest{}, storage.ErrNotFound
	case err != nil:
		return storage.AuthRequest{}, wrap("get auth request", err)
	}
	return r, nil
}

// UpdateAuthRequest implements storage.Store.
func (s *Store) UpdateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	if r.ID == "" || r.ExpiresAt.IsZero() {
		return invalid("auth request needs an ID and an expiry")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE auth_requests SET
		client_id = $2, redirect_uri = $3, scopes = $4, state = $5, code_challenge = $6,
		code_challenge_method = $7, subject = $8, auth_time = $9, expires_at = $10,
		nonce = $11, login_hint = $12, force_consent = $13, session_id = $14, resources = $15, device = $16,
		response_mode = $17, claims = $18, ui_locales = $19
		WHERE id = $1`,
		r.ID, r.ClientID, r.RedirectURI, scopes(r.Scopes), r.State, r.CodeChallenge, r.CodeChallengeMethod, r.Subject, r.AuthTime, r.ExpiresAt,
		r.Nonce, r.LoginHint, r.ForceConsent, r.SessionID, scopes(r.Resources), r.Device, r.ResponseMode, r.Claims, r.UILocales)
	switch {
	case err != nil:
		return wrap("update auth request", err)
	case tag.RowsAffected() == 0:
		return storage.ErrNotFound
	}
	return nil
}

// DeleteAuthRequest implements storage.Store.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM auth_requests WHERE id = $1", id); err != nil {
		return wrap("delete auth request", err)
	}
	return nil
}

// CreateCode implements storage.Store.
func (s *Store) CreateCode(ctx context.Context, c storage.AuthCode) error {
	if c.Hash == "" || c.ExpiresAt.IsZero() {
		return invalid("authorization code needs a hash and an expiry")
	}
	if c.RedeemedAt != nil {
		return invalid("a new authorization code cannot be redeemed already")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_codes
		(hash, client_id, redirect_uri, scopes, subject, auth_time, code_challenge, code_challenge_method, expires_at, nonce, session_id,
		resources, claims)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		c.Hash, c.ClientID, c.RedirectURI, scopes(c.Scopes), c.Subject, c.AuthTime, c.CodeChallenge, c.CodeChallengeMethod, c.ExpiresAt,
		c.Nonce, c.SessionID, scopes(c.Resources), c.Claims)
	switch {
	case isUniqueViolation(err):
		return storage.ErrAlreadyExists
	case err != nil:
		return wrap("create code", err)
	}
	return nil
}

const codeColumns = `hash, client_id, redirect_uri, scopes, subject, auth_time, code_challenge, code_challenge_method,
	expires_at, redeemed_at, issued_access_token_id, issued_access_token_expires_at, issued_refresh_family_id, nonce, session_id,
	resources, claims`

// scanCode reads codeColumns, then any extra columns into extra.
func scanCode(row pgx.Row, extra ...any) (storage.AuthCode, error) {
	var c storage.AuthCode
	dest := append([]any{&c.Hash, &c.ClientID, &c.RedirectURI, &c.Scopes, &c.Subject, &c.AuthTime, &c.CodeChallenge, &c.CodeChallengeMethod,
		&c.ExpiresAt, &c.RedeemedAt, &c.Issued.AccessTokenID, &c.Issued.AccessTokenExpiresAt, &c.Issued.RefreshFamilyID, &c.Nonce, &c.SessionID,
		&c.Resources, &c.Claims},
		extra...)
	err := row.Scan(dest...)
	return c, err
}

// redeemSQL redeems a code and, in the same statement, stores the first
// refresh token of the family it names when the code's bindings and scopes
// allow (storage.FirstRefresh; an empty $6 for none). The family row is
// upserted first, which locks it against a concurrent RevokeFamily; a
// revoked family yields no row to insert the token from. The code's client
// is recorded in the code's session, if that is live. The last column
// reports whether the token was stored.
const redeemSQL = `WITH redeemed AS (
		UPDATE auth_codes SET redeemed_at = $2,
			issued_access_token_id = $3, issued_access_token_expires_at = $4, issued_refresh_family_id = $5
		WHERE hash = $1 AND expires_at > $2 AND redeemed_at IS NULL
		RETURNING ` + codeColumns + `
	), bound AS (
		SELECT r.client_id, r.subject, r.auth_time, r.session_id, r.resources,
			ARRAY(SELECT u.s FROM unnest(r.scopes) WITH ORDINALITY AS u(s, i) WHERE u.s = ANY($10::text[]) ORDER BY u.i) AS scopes,
			CASE WHEN r.auth_time > '0001-01-01 00:00:00+00' THEN r.auth_time ELSE $2 END + $13::interval AS expires_at
		FROM redeemed r
		WHERE $6 <> '' AND r.client_id = $7 AND r.redirect_uri = $8 AND r.code_challenge = $9
	), refresh AS (
		SELECT * FROM bound WHERE $11 = '' OR NOT ($11 = ANY(bound.scopes)) OR $12 = ANY(bound.scopes)
	), family AS (
		INSERT INTO refresh_families (id, expires_at) SELECT $5, expires_at FROM refresh
		ON CONFLICT (id) DO UPDATE SET expires_at = greatest(refresh_families.expires_at, excluded.expires_at)
		RETURNING revoked_at
	), token AS (
		INSERT INTO refresh_tokens (hash, family_id, client_id, subject, scopes, auth_time, issued_at, expires_at, session_id, resources)
		SELECT $6, $5, t.client_id, t.subject, t.scopes, t.auth_time, $2, t.expires_at, t.session_id, t.resources
		FROM refresh t, family f WHERE f.revoked_at IS NULL
		RETURNING hash
	), client AS (
		INSERT INTO session_clients (sid, client_id, expires_at)
		SELECT r.session_id, r.client_id, s.expires_at FROM redeemed r JOIN sessions s ON s.sid = r.session_id AND s.expires_at > $2
		WHERE r.session_id <> ''
		ON CONFLICT (sid, client_id) DO NOTHING
	)
	SELECT redeemed.*, EXISTS (SELECT 1 FROM token) FROM redeemed`

// RedeemCode implements storage.Store. The conditional UPDATE is the whole
// decision: PostgreSQL re-checks "redeemed_at IS NULL" on the latest row
// version after waiting for a concurrent redeemer, so only one caller, on
// any replica, gets the row back. The first refresh token is stored by the
// same statement (redeemSQL), so a replay, which can only see the
// redemption once it has committed, always finds the token in the family
// it revokes.
func (s *Store) RedeemCode(ctx context.Context, hash string, issued storage.Issued, first *storage.FirstRefresh, now time.Time) (storage.AuthCode, bool, error) {
	f := storage.FirstRefresh{}
	if first != nil {
		if first.Hash == "" || first.TTL <= 0 || issued.RefreshFamilyID == "" {
			return storage.AuthCode{}, false, invalid("a first refresh token needs a hash, a lifetime and a family")
		}
		f = *first
	}
	var stored bool
	c, err := scanCode(s.pool.QueryRow(ctx, redeemSQL,
		hash, now, issued.AccessTokenID, issued.AccessTokenExpiresAt, issued.RefreshFamilyID,
		f.Hash, f.ClientID, f.RedirectURI, f.CodeChallenge, scopes(f.AllowedScopes), f.OpenIDScope, f.OfflineScope, f.TTL), &stored)
	switch {
	case err == nil:
		return c, stored, nil
	case isUniqueViolation(err):
		return storage.AuthCode{}, false, storage.ErrAlreadyExists
	case !errors.Is(err, pgx.ErrNoRows):
		return storage.AuthCode{}, false, wrap("redeem code", err)
	}
	// Unknown, expired, or redeemed before: find out which.
	c, err = scanCode(s.pool.QueryRow(ctx, `SELECT `+codeColumns+` FROM auth_codes WHERE hash = $1 AND expires_at > $2`, hash, now))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.AuthCode{}, false, storage.ErrNotFound
	case err != nil:
		return storage.AuthCode{}, false, wrap("redeem code", err)
	case c.RedeemedAt == nil:
		// The UPDATE saw no redeemable row, yet the code is unredeemed:
		// that cannot happen while codes are only created and redeemed.
		return storage.AuthCode{}, false, wrap("redeem code", errors.New("code is neither redeemable nor redeemed"))
	}
	return c, false, storage.ErrCodeReplayed
}

// CreateRefreshToken implements storage.Store. The family row is upserted
// first, which locks it against a concurrent RevokeFamily; a revoked family
// yields no row to insert from.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	if t.Hash == "" || t.FamilyID == "" || t.ExpiresAt.IsZero() {
		return invalid("refresh token needs a hash, a family and an expiry")
	}
	if t.RotatedAt != nil {
		return invalid("a new refresh token cannot be rotated already")
	}
	tag, err := s.pool.Exec(ctx, `WITH family AS (
			INSERT INTO refresh_families (id, expires_at) VALUES ($2, $8)
			ON CONFLICT (id) DO UPDATE SET expires_at = greatest(refresh_families.expires_at, excluded.expires_at)
			RETURNING revoked_at
		)
		INSERT INTO refresh_tokens (hash, family_id, client_id, subject, scopes, auth_time, issued_at, expires_at, session_id, resources)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM family WHERE family.revoked_at IS NULL`,
		t.Hash, t.FamilyID, t.ClientID, t.Subject, scopes(t.Scopes), t.AuthTime, t.IssuedAt, t.ExpiresAt, t.SessionID, scopes(t.Resources))
	switch {
	case isUniqueViolation(err):
		return storage.ErrAlreadyExists
	case err != nil:
		return wrap("create refresh token", err)
	case tag.RowsAffected() == 0:
		return storage.ErrRevoked
	}
	return nil
}

type refreshRow struct {
	storage.RefreshToken
	revoked bool
}

func scanRefreshToken(row pgx.Row) (refreshRow, error) {
	var r refreshRow
	err := row.Scan(&r.Hash, &r.FamilyID, &r.ClientID, &r.Subject, &r.Scopes, &r.AuthTime, &r.IssuedAt, &r.ExpiresAt, &r.RotatedAt, &r.SessionID, &r.Resources, &r.revoked)
	return r, err
}

const refreshSelect = `SELECT t.hash, t.family_id, t.client_id, t.subject, t.scopes, t.auth_time, t.issued_at, t.expires_at, t.rotated_at,
	t.session_id, t.resources, f.revoked_at IS NOT NULL
	FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
	WHERE t.hash = $1 AND t.expires_at > $2`

// GetRefreshToken implements storage.Store.
func (s *Store) GetRefreshToken(ctx context.Context, hash string, now time.Time) (storage.RefreshToken, error) {
	r, err := scanRefreshToken(s.pool.QueryRow(ctx, refreshSelect, hash, now))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.RefreshToken{}, storage.ErrNotFound
	case err != nil:
		return storage.RefreshToken{}, wrap("get refresh token", err)
	case r.revoked:
		return storage.RefreshToken{}, storage.ErrRevoked
	}
	return r.RefreshToken, nil
}

// RotateRefreshToken implements storage.Store.
//
// The common case is one statement: a conditional UPDATE marks the old
// token rotated only if it is live, unrotated and in an unrevoked family,
// and the same statement stores the successor. PostgreSQL re-checks the
// condition on the latest row version after waiting for a concurrent
// rotator, so of racing callers on any replica exactly one gets the row.
// When that statement changes nothing, rotateSlow works out why.
//
// Revocation is a flag on the family that every read checks, so a rotation
// racing a revocation leaves a revoked successor, never a live one.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next storage.RefreshToken, now time.Time) (storage.RefreshToken, error) {
	if next.Hash == "" || next.ExpiresAt.IsZero() {
		return storage.RefreshToken{}, invalid("refresh token needs a hash and an expiry")
	}
	if next.RotatedAt != nil {
		return storage.RefreshToken{}, invalid("a new refresh token cannot be rotated already")
	}
	r, err := scanRefreshToken(s.pool.QueryRow(ctx, `WITH rotated AS (
			UPDATE refresh_tokens t SET rotated_at = $9
			FROM refresh_families f
			WHERE t.hash = $10 AND t.rotated_at IS NULL AND t.expires_at > $9
				AND f.id = t.family_id AND f.revoked_at IS NULL AND ($2 = '' OR t.family_id = $2)
			RETURNING t.hash, t.family_id, t.client_id, t.subject, t.scopes, t.auth_time, t.issued_at, t.expires_at, t.rotated_at,
				t.session_id, t.resources
		), family AS (
			UPDATE refresh_families SET expires_at = greatest(expires_at, $8)
			WHERE id = (SELECT family_id FROM rotated)
		), successor AS (
			INSERT INTO refresh_tokens (hash, family_id, client_id, subject, scopes, auth_time, issued_at, expires_at, session_id, resources)
			SELECT $1, rotated.family_id, $3, $4, $5, $6, $7, $8, $11, $12 FROM rotated
		)
		SELECT *, false FROM rotated`,
		next.Hash, next.FamilyID, next.ClientID, next.Subject, scopes(next.Scopes), next.AuthTime, next.IssuedAt, next.ExpiresAt,
		now, oldHash, next.SessionID, scopes(next.Resources)))
	switch {
	case err == nil:
		return r.RefreshToken, nil
	case isUniqueViolation(err):
		return storage.RefreshToken{}, storage.ErrAlreadyExists
	case !errors.Is(err, pgx.ErrNoRows):
		return storage.RefreshToken{}, wrap("rotate refresh token", err)
	}
	return s.rotateSlow(ctx, oldHash, next, now)
}

// rotateSlow handles the rotations the one-statement path refused: unknown,
// expired, revoked, reused, or a successor in another family. It locks the
// old token's row (FOR UPDATE) for the transaction, so it decides on the
// same state a concurrent rotator would see.
func (s *Store) rotateSlow(ctx context.Context, oldHash string, next storage.RefreshToken, now time.Time) (storage.RefreshToken, error) {
	var old storage.RefreshToken
	errOutcome := error(nil) // the result that commits: nil or reuse
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := scanRefreshToken(tx.QueryRow(ctx, refreshSelect+" FOR UPDATE OF t", oldHash, now))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return storage.ErrNotFound
		case err != nil:
			return err
		case r.revoked:
			return storage.ErrRevoked
		}
		old = r.RefreshToken
		if old.RotatedAt != nil {
			retry, err := isRotationRetry(ctx, tx, old, next, now)
			if err != nil || retry {
				return err
			}
			errOutcome = storage.ErrRefreshTokenReused
			return revokeFamily(ctx, tx, old.FamilyID, now)
		}
		switch next.FamilyID {
		case "":
			next.FamilyID = old.FamilyID
		case old.FamilyID:
		default:
			return invalid("the successor of a refresh token must be in its family")
		}
		// One statement for the three writes: a duplicate successor hash
		// fails it whole.
		_, err = tx.Exec(ctx, `WITH rotated AS (
				UPDATE refresh_tokens SET rotated_at = $9 WHERE hash = $10
			), family AS (
				UPDATE refresh_families SET expires_at = greatest(expires_at, $8) WHERE id = $2
			)
			INSERT INTO refresh_tokens (hash, family_id, client_id, subject, scopes, auth_time, issued_at, expires_at, session_id, resources)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $11, $12)`,
			next.Hash, next.FamilyID, next.ClientID, next.Subject, scopes(next.Scopes), next.AuthTime, next.IssuedAt, next.ExpiresAt,
			now, oldHash, next.SessionID, scopes(next.Resources))
		if isUniqueViolation(err) {
			return storage.ErrAlreadyExists
		}
		if err != nil {
			return err
		}
		old.RotatedAt = &now
		return nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrRevoked),
		errors.Is(err, storage.ErrAlreadyExists), errors.Is(err, storage.ErrInvalid):
		return storage.RefreshToken{}, err
	case err != nil:
		return storage.RefreshToken{}, wrap("rotate refresh token", err)
	}
	if errOutcome != nil {
		s.rev.add('f', old.FamilyID, familyRevokedUntil(now))
	}
	return old, errOutcome
}

// isRotationRetry reports whether rotating the already rotated old into
// next repeats the rotation that stored next, which is still unused and
// recent (storage.RotationRetryWindow): a client retrying a rotation whose
// answer it never got.
func isRotationRetry(ctx context.Context, tx pgx.Tx, old, next storage.RefreshToken, now time.Time) (bool, error) {
	if now.After(old.RotatedAt.Add(storage.RotationRetryWindow)) || (next.FamilyID != "" && next.FamilyID != old.FamilyID) {
		return false, nil
	}
	var unused bool
	err := tx.QueryRow(ctx, `SELECT rotated_at IS NULL FROM refresh_tokens WHERE hash = $1 AND family_id = $2`,
		next.Hash, old.FamilyID).Scan(&unused)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return unused, err
}

// RevokeFamily implements storage.Store.
func (s *Store) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	if familyID == "" {
		return invalid("family ID is empty")
	}
	if err := revokeFamily(ctx, s.pool, familyID, now); err != nil {
		return wrap("revoke family", err)
	}
	// This replica knows at once; the others when the notification comes.
	s.rev.add('f', familyID, familyRevokedUntil(now))
	return nil
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// revokeFamily marks a family revoked, leaving a tombstone when it has no
// row yet (see storage.RevokedFamilyRetention).
func revokeFamily(ctx context.Context, db execer, familyID string, now time.Time) error {
	_, err := db.Exec(ctx, notifySQL("f", `INSERT INTO refresh_families (id, revoked_at, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET
			revoked_at = coalesce(refresh_families.revoked_at, excluded.revoked_at),
			expires_at = greatest(refresh_families.expires_at, excluded.expires_at)
		RETURNING id, expires_at`),
		familyID, now, familyRevokedUntil(now))
	return err
}

// RevokeAccessToken implements storage.Store.
func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	if jti == "" || expiresAt.IsZero() {
		return invalid("access-token revocation needs a jti and an expiry")
	}
	_, err := s.pool.Exec(ctx, notifySQL("a", `INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET expires_at = greatest(revoked_access_tokens.expires_at, excluded.expires_at)
		RETURNING jti AS id, expires_at`),
		jti, expiresAt)
	if err != nil {
		return wrap("revoke access token", err)
	}
	s.rev.add('a', jti, expiresAt)
	return nil
}

// IsAccessTokenRevoked implements storage.Store. It answers from the
// replica's copy of the revocations (see revocations) while that is live,
// from the database otherwise.
func (s *Store) IsAccessTokenRevoked(ctx context.Context, jti, familyID string, now time.Time) (bool, error) {
	if revoked, ok := s.rev.revoked(jti, familyID, now); ok {
		return revoked, nil
	}
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1 AND expires_at > $2)
		OR EXISTS (SELECT 1 FROM refresh_families WHERE $3 <> '' AND id = $3 AND revoked_at IS NOT NULL AND expires_at > $2)`,
		jti, now, familyID).Scan(&revoked)
	if err != nil {
		return false, wrap("check access-token revocation", err)
	}
	return revoked, nil
}

// SaveConsent implements storage.Store.
func (s *Store) SaveConsent(ctx context.Context, c storage.Consent) error {
	if c.Subject == "" || c.ClientID == "" || c.ExpiresAt.IsZero() {
		return invalid("consent needs a subject, a client and an expiry")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO consents (subject, client_id, scopes, granted_at, expires_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (subject, client_id) DO UPDATE SET
			scopes = excluded.scopes, granted_at = excluded.granted_at, expires_at = excluded.expires_at`,
		c.Subject, c.ClientID, scopes(c.Scopes), c.GrantedAt, c.ExpiresAt)
	if err != nil {
		return wrap("save consent", err)
	}
	return nil
}

// GetConsent implements storage.Store.
func (s *Store) GetConsent(ctx context.Context, subject, clientID string, now time.Time) (storage.Consent, error) {
	var c storage.Consent
	err := s.pool.QueryRow(ctx, `SELECT subject, client_id, scopes, granted_at, expires_at FROM consents
		WHERE subject = $1 AND client_id = $2 AND expires_at > $3`, subject, clientID, now).
		Scan(&c.Subject, &c.ClientID, &c.Scopes, &c.GrantedAt, &c.ExpiresAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.Consent{}, storage.ErrNotFound
	case err != nil:
		return storage.Consent{}, wrap("get consent", err)
	}
	return c, nil
}
