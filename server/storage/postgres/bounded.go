package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Timeouts bound how long a request waits on the database, so that a
// database that restarts, fails over or stops answering (a network stall
// drops packets: no error ever comes back) costs a request a bounded time
// and an answer the client can retry, never a hang.
type Timeouts struct {
	// Connect bounds opening a connection: the TCP dial, TLS and
	// PostgreSQL's start-up. The URL's connect_timeout wins when set.
	Connect time.Duration
	// Acquire bounds the wait for a free connection of the pool.
	Acquire time.Duration
	// Statement bounds one statement (or one transaction's statement),
	// enforced by the client: a database that stalls cannot enforce its
	// own statement_timeout, and PgBouncer in transaction mode refuses it
	// as a start-up parameter.
	Statement time.Duration
}

// DefaultTimeouts are the timeouts of a store opened without WithTimeouts.
var DefaultTimeouts = Timeouts{Connect: 5 * time.Second, Acquire: 2 * time.Second, Statement: 5 * time.Second}

// WithTimeouts sets the store's timeouts; a zero field keeps its default.
func WithTimeouts(t Timeouts) Option {
	return func(s *settings) {
		if t.Connect > 0 {
			s.timeouts.Connect = t.Connect
		}
		if t.Acquire > 0 {
			s.timeouts.Acquire = t.Acquire
		}
		if t.Statement > 0 {
			s.timeouts.Statement = t.Statement
		}
	}
}

// boundedPool is the pool every statement goes through: each waits at
// most Acquire for a connection and Statement for its answer, and an error
// that says the database could not be reached or could not serve (rather
// than refusing the statement) is marked storage.ErrUnavailable, whichever
// way the calling method wraps it. Its method set is what the store uses
// of *pgxpool.Pool, so call sites read as plain pgx.
type boundedPool struct {
	*pgxpool.Pool
	t Timeouts
}

func (p *boundedPool) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, p.t.Acquire)
	defer cancel()
	c, err := p.Pool.Acquire(actx)
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		return nil, unavailable(fmt.Errorf("no database connection free within %s: %w", p.t.Acquire, err))
	}
	return c, classify(err)
}

// Exec runs one statement.
func (p *boundedPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer c.Release()
	sctx, cancel := context.WithTimeout(ctx, p.t.Statement)
	defer cancel()
	tag, err := c.Exec(sctx, sql, args...)
	return tag, classify(err)
}

// Query runs one statement whose rows are read until Close.
func (p *boundedPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := p.query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (p *boundedPool) query(ctx context.Context, sql string, args ...any) (*boundedRows, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, p.t.Statement)
	rows, err := c.Query(sctx, sql, args...)
	if err != nil {
		cancel()
		c.Release()
		return nil, classify(err)
	}
	return &boundedRows{Rows: rows, done: func() { cancel(); c.Release() }}, nil
}

// QueryRow runs one statement whose row is read by Scan.
func (p *boundedPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := p.query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return boundedRow{rows}
}

// Begin starts a transaction whose every statement is bounded.
func (p *boundedPool) Begin(ctx context.Context) (pgx.Tx, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, p.t.Statement)
	defer cancel()
	tx, err := c.Begin(sctx)
	if err != nil {
		c.Release()
		return nil, classify(err)
	}
	return &boundedTx{Tx: tx, t: p.t, release: c.Release}, nil
}

// Ping checks that a connection answers.
func (p *boundedPool) Ping(ctx context.Context) error {
	c, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	sctx, cancel := context.WithTimeout(ctx, p.t.Statement)
	defer cancel()
	return classify(c.Ping(sctx))
}

type boundedTx struct {
	pgx.Tx
	t       Timeouts
	release func()
}

func (tx *boundedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	sctx, cancel := context.WithTimeout(ctx, tx.t.Statement)
	defer cancel()
	tag, err := tx.Tx.Exec(sctx, sql, args...)
	return tag, classify(err)
}

func (tx *boundedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := tx.query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (tx *boundedTx) query(ctx context.Context, sql string, args ...any) (*boundedRows, error) {
	sctx, cancel := context.WithTimeout(ctx, tx.t.Statement)
	rows, err := tx.Tx.Query(sctx, sql, args...)
	if err != nil {
		cancel()
		return nil, classify(err)
	}
	return &boundedRows{Rows: rows, done: cancel}, nil
}

func (tx *boundedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := tx.query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return boundedRow{rows}
}

func (tx *boundedTx) Commit(ctx context.Context) error {
	defer tx.release()
	sctx, cancel := context.WithTimeout(ctx, tx.t.Statement)
	defer cancel()
	return classify(tx.Tx.Commit(sctx))
}

func (tx *boundedTx) Rollback(ctx context.Context) error {
	defer tx.release()
	sctx, cancel := context.WithTimeout(ctx, tx.t.Statement)
	defer cancel()
	return classify(tx.Tx.Rollback(sctx))
}

// boundedRows ends the statement's deadline and gives the connection back
// once the rows are closed (pgx closes them at the last row, and
// ForEachRow and Scan close them too).
type boundedRows struct {
	pgx.Rows
	done   func()
	closed bool
}

func (r *boundedRows) Close() {
	r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.done()
	}
}

func (r *boundedRows) Err() error { return classify(r.Rows.Err()) }

func (r *boundedRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

// boundedRow is pgx's QueryRow semantics over boundedRows.
type boundedRow struct{ rows *boundedRows }

func (r boundedRow) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return classify(err)
	}
	r.rows.Close()
	return r.rows.Err()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// unavailableError marks an error as storage.ErrUnavailable while keeping
// the driver's error for the log.
type unavailableError struct{ err error }

func (e unavailableError) Error() string { return e.err.Error() }
func (e unavailableError) Unwrap() error { return e.err }
func (e unavailableError) Is(target error) bool {
	return target == storage.ErrUnavailable
}

func unavailable(err error) error { return unavailableError{err} }

// classify marks the errors after which the same request may well succeed
// a moment later: the connection failed or timed out, the server is
// shutting down, starting, in recovery or read-only (a failover in
// progress), out of connections or resources, or gave up on a lock or a
// serialization conflict. The database refusing the statement itself
// (a constraint, a type) stays as it is.
func classify(err error) error {
	if err == nil || errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	// A failed connect never reached the statement, whatever the server
	// said while refusing it (a database not accepting connections,
	// 55000; too many clients; authentication): the request may succeed
	// once connections are possible again, so it is a 503, not a 500.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return unavailable(err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if transientSQLState(pgErr.Code) {
			return unavailable(err)
		}
		return err
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		pgconn.SafeToRetry(err):
		return unavailable(err)
	}
	return err
}

// transientSQLState: connection exceptions (class 08), insufficient
// resources (53), operator intervention (57: admin or crash shutdown,
// cannot connect now, query canceled by a timeout), a read-only
// transaction (25006: the host is, or has become, a standby), lock not
// available (55P03), serialization failure and deadlock (40001, 40P01).
func transientSQLState(code string) bool {
	switch {
	case len(code) != 5:
		return false
	case code[:2] == "08", code[:2] == "53", code[:2] == "57":
		return true
	}
	switch code {
	case "25006", "55P03", "40001", "40P01":
		return true
	}
	return false
}
