package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

// Values of gatehouse_server_postgres_errors_total's reason label.
const (
	// ReasonConnection: no connection could be had, or it broke (SQLSTATE
	// class 08, or no SQLSTATE at all: the network, TLS, authentication).
	ReasonConnection = "connection"
	// ReasonTimeout: a deadline passed, or statement_timeout (57014).
	ReasonTimeout = "timeout"
	// ReasonCanceled: the request the statement served ended first (the
	// client went away); not a fault of the database.
	ReasonCanceled = "canceled"
	// ReasonConflict: an integrity or transaction-rollback error (classes
	// 23 and 40), which the driver may use as a signal (a duplicate key).
	ReasonConflict = "conflict"
	// ReasonUnavailable: the database refused work (classes 53, 57 and 58:
	// out of connections or disk, shutting down, a system error).
	ReasonUnavailable = "unavailable"
	// ReasonOther: any other error, such as a missing table.
	ReasonOther = "other"
)

var errorReasons = []string{ReasonConnection, ReasonTimeout, ReasonCanceled, ReasonConflict, ReasonUnavailable, ReasonOther}

// errorCounter counts failed statements and failed connection acquisitions,
// as a pgx tracer on every connection of the pool (and the revocation
// listener's). It is the Store's Prometheus collector.
type errorCounter struct {
	errors *prometheus.CounterVec
}

func newErrorCounter() *errorCounter {
	c := &errorCounter{errors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_server_postgres_errors_total",
		Help: "Failed PostgreSQL statements and connection acquisitions, by reason: connection, timeout, canceled, conflict, unavailable, other.",
	}, []string{"reason"})}
	// Every reason exists at zero, so that the first error shows in rate().
	for _, r := range errorReasons {
		c.errors.WithLabelValues(r)
	}
	return c
}

// tracer is what the pool's connections trace with: the counter, plus the
// caller's tracer (WithQueryTracer) when there is one.
func (c *errorCounter) tracer(other pgx.QueryTracer) pgx.QueryTracer {
	if other == nil {
		return c
	}
	return multitracer.New(c, other)
}

// TraceQueryStart starts a client span for the statement when it is made
// for a recorded span (a sampled request's, or its Store call's):
// "postgres SELECT", its child. Statements of background work (expiry
// sweeps, readiness pings) and of requests not sampled have none.
func (c *errorCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !tracing.Enabled() || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx // nothing built for a statement with no recorded parent
	}
	op, _, _ := strings.Cut(strings.TrimSpace(data.SQL), " ")
	op = strings.ToUpper(op)
	ctx, span := tracing.Child(ctx, "postgres "+op, trace.SpanKindClient)
	if span == nil {
		return ctx
	}
	span.SetAttributes(attribute.String("db.system.name", "postgresql"), attribute.String("db.operation.name", op))
	return context.WithValue(ctx, statementSpan{}, span)
}

func (c *errorCounter) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	c.count(data.Err)
	if span, ok := ctx.Value(statementSpan{}).(trace.Span); ok {
		err := data.Err
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
		tracing.End(span, err)
	}
}

// statementSpan is the context key of a statement's span.
type statementSpan struct{}

func (c *errorCounter) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return ctx
}

func (c *errorCounter) TraceAcquireEnd(_ context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	c.count(data.Err)
}

func (c *errorCounter) count(err error) {
	if err == nil || errors.Is(err, pgx.ErrNoRows) {
		return
	}
	c.errors.WithLabelValues(errorReason(err)).Inc()
}

// errorReason sorts an error into one of errorReasons.
func errorReason(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return ReasonCanceled
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return ReasonTimeout
	}
	// A failed connect is a connection error whatever the server said
	// (too many connections, authentication, a database that refuses).
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return ReasonConnection
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code == "57014" {
			return ReasonTimeout
		}
		switch pgErr.Code[:min(2, len(pgErr.Code))] {
		case "08":
			return ReasonConnection
		case "23", "40":
			return ReasonConflict
		case "53", "57", "58":
			return ReasonUnavailable
		}
		return ReasonOther
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) {
		return ReasonConnection
	}
	return ReasonOther
}

// Describe implements prometheus.Collector: a Store exports its error
// counter (the token server registers it next to its own metrics).
func (s *Store) Describe(ch chan<- *prometheus.Desc) { s.errs.errors.Describe(ch) }

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) { s.errs.errors.Collect(ch) }
