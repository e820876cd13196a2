package storage

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

// Traced wraps a Store so that each call made for a recorded span (a
// sampled request's) is a span of its own, "storage <Method>" with the
// driver as db.system.name ("memory", "postgresql"): the same names
// whatever the driver, so a trace reads the same in development and in
// production. PostgreSQL's statements are children of the call's span.
// Calls with no recorded parent (background sweeps, readiness, requests
// not sampled) cost a branch and build nothing.
func Traced(s Store, system string) Store {
	return traced{next: s, system: attribute.String("db.system.name", system)}
}

// SystemOf is s's database as OpenTelemetry names it (db.system.name):
// what its DBSystem method says, "other_sql" when it has none.
func SystemOf(s Store) string {
	if d, ok := s.(interface{ DBSystem() string }); ok {
		return d.DBSystem()
	}
	return "other_sql"
}

type traced struct {
	next   Store
	system attribute.KeyValue
}

func (w traced) start(ctx context.Context, op string) (context.Context, trace.Span) {
	if !tracing.Enabled() || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	ctx, span := tracing.Child(ctx, "storage "+op, trace.SpanKindInternal)
	if span != nil {
		span.SetAttributes(w.system, attribute.String("db.operation.name", op))
	}
	return ctx, span
}

// end ends span; an unknown or expired object (ErrNotFound) is an answer,
// not a failure of the store.
func end(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Close closes the wrapped store.
func (w traced) Close() error { return w.next.Close() }

func (w traced) AddSessionClient(ctx context.Context, id string, clientID string, now time.Time) error {
	ctx, span := w.start(ctx, "AddSessionClient")
	err := w.next.AddSessionClient(ctx, id, clientID, now)
	end(span, err)
	return err
}

func (w traced) ClaimIdentityRecheck(ctx context.Context, subject string, due time.Time, until time.Time, now time.Time) (Identity, bool, error) {
	ctx, span := w.start(ctx, "ClaimIdentityRecheck")
	v0, v1, err := w.next.ClaimIdentityRecheck(ctx, subject, due, until, now)
	end(span, err)
	return v0, v1, err
}

func (w traced) ClaimLogoutDeliveries(ctx context.Context, limit int, perClient int, busy []string, lease time.Duration, now time.Time) ([]LogoutDelivery, error) {
	ctx, span := w.start(ctx, "ClaimLogoutDeliveries")
	v0, err := w.next.ClaimLogoutDeliveries(ctx, limit, perClient, busy, lease, now)
	end(span, err)
	return v0, err
}

func (w traced) ConsumePushedRequest(ctx context.Context, hash string, now time.Time) (PushedRequest, error) {
	ctx, span := w.start(ctx, "ConsumePushedRequest")
	v0, err := w.next.ConsumePushedRequest(ctx, hash, now)
	end(span, err)
	return v0, err
}

func (w traced) CreateAuthRequest(ctx context.Context, r AuthRequest) error {
	ctx, span := w.start(ctx, "CreateAuthRequest")
	err := w.next.CreateAuthRequest(ctx, r)
	end(span, err)
	return err
}

func (w traced) CreateCode(ctx context.Context, c AuthCode) error {
	ctx, span := w.start(ctx, "CreateCode")
	err := w.next.CreateCode(ctx, c)
	end(span, err)
	return err
}

func (w traced) CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization, now time.Time) error {
	ctx, span := w.start(ctx, "CreateDeviceAuthorization")
	err := w.next.CreateDeviceAuthorization(ctx, d, now)
	end(span, err)
	return err
}

func (w traced) CreatePushedRequest(ctx context.Context, r PushedRequest) error {
	ctx, span := w.start(ctx, "CreatePushedRequest")
	err := w.next.CreatePushedRequest(ctx, r)
	end(span, err)
	return err
}

func (w traced) CreateRefreshToken(ctx context.Context, t RefreshToken) error {
	ctx, span := w.start(ctx, "CreateRefreshToken")
	err := w.next.CreateRefreshToken(ctx, t)
	end(span, err)
	return err
}

func (w traced) CreateSession(ctx context.Context, sess Session) error {
	ctx, span := w.start(ctx, "CreateSession")
	err := w.next.CreateSession(ctx, sess)
	end(span, err)
	return err
}

func (w traced) DecideDeviceAuthorization(ctx context.Context, hash string, dec DeviceDecision, now time.Time) error {
	ctx, span := w.start(ctx, "DecideDeviceAuthorization")
	err := w.next.DecideDeviceAuthorization(ctx, hash, dec, now)
	end(span, err)
	return err
}

func (w traced) DeleteAuthRequest(ctx context.Context, id string) error {
	ctx, span := w.start(ctx, "DeleteAuthRequest")
	err := w.next.DeleteAuthRequest(ctx, id)
	end(span, err)
	return err
}

func (w traced) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	ctx, span := w.start(ctx, "DeleteExpired")
	v0, err := w.next.DeleteExpired(ctx, now)
	end(span, err)
	return v0, err
}

func (w traced) DeleteSession(ctx context.Context, hash string) error {
	ctx, span := w.start(ctx, "DeleteSession")
	err := w.next.DeleteSession(ctx, hash)
	end(span, err)
	return err
}

func (w traced) EndSessions(ctx context.Context, sel SessionSelector, opts EndOptions, now time.Time) (Ended, error) {
	ctx, span := w.start(ctx, "EndSessions")
	v0, err := w.next.EndSessions(ctx, sel, opts, now)
	end(span, err)
	return v0, err
}

func (w traced) FinishLogoutDelivery(ctx context.Context, id string) error {
	ctx, span := w.start(ctx, "FinishLogoutDelivery")
	err := w.next.FinishLogoutDelivery(ctx, id)
	end(span, err)
	return err
}

func (w traced) GetAuthRequest(ctx context.Context, id string, now time.Time) (AuthRequest, error) {
	ctx, span := w.start(ctx, "GetAuthRequest")
	v0, err := w.next.GetAuthRequest(ctx, id, now)
	end(span, err)
	return v0, err
}

func (w traced) GetConsent(ctx context.Context, subject string, clientID string, now time.Time) (Consent, error) {
	ctx, span := w.start(ctx, "GetConsent")
	v0, err := w.next.GetConsent(ctx, subject, clientID, now)
	end(span, err)
	return v0, err
}

func (w traced) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string, now time.Time) (DeviceAuthorization, error) {
	ctx, span := w.start(ctx, "GetDeviceAuthorizationByUserCode")
	v0, err := w.next.GetDeviceAuthorizationByUserCode(ctx, userCode, now)
	end(span, err)
	return v0, err
}

func (w traced) GetIdentity(ctx context.Context, subject string, now time.Time) (Identity, error) {
	ctx, span := w.start(ctx, "GetIdentity")
	v0, err := w.next.GetIdentity(ctx, subject, now)
	end(span, err)
	return v0, err
}

func (w traced) GetRefreshToken(ctx context.Context, hash string, now time.Time) (RefreshToken, error) {
	ctx, span := w.start(ctx, "GetRefreshToken")
	v0, err := w.next.GetRefreshToken(ctx, hash, now)
	end(span, err)
	return v0, err
}

func (w traced) GetSession(ctx context.Context, hash string, now time.Time) (Session, error) {
	ctx, span := w.start(ctx, "GetSession")
	v0, err := w.next.GetSession(ctx, hash, now)
	end(span, err)
	return v0, err
}

func (w traced) GetSessionByID(ctx context.Context, id string, now time.Time) (EndedSession, error) {
	ctx, span := w.start(ctx, "GetSessionByID")
	v0, err := w.next.GetSessionByID(ctx, id, now)
	end(span, err)
	return v0, err
}

func (w traced) GetSessionConsent(ctx context.Context, hash string, clientID string, now time.Time) (Session, *Consent, error) {
	ctx, span := w.start(ctx, "GetSessionConsent")
	v0, v1, err := w.next.GetSessionConsent(ctx, hash, clientID, now)
	end(span, err)
	return v0, v1, err
}

func (w traced) IsAccessTokenRevoked(ctx context.Context, jti string, familyID string, now time.Time) (bool, error) {
	ctx, span := w.start(ctx, "IsAccessTokenRevoked")
	v0, err := w.next.IsAccessTokenRevoked(ctx, jti, familyID, now)
	end(span, err)
	return v0, err
}

func (w traced) Ping(ctx context.Context) error {
	ctx, span := w.start(ctx, "Ping")
	err := w.next.Ping(ctx)
	end(span, err)
	return err
}

func (w traced) PollDeviceAuthorization(ctx context.Context, hash string, clientID string, issued Issued, now time.Time) (DeviceAuthorization, error) {
	ctx, span := w.start(ctx, "PollDeviceAuthorization")
	v0, err := w.next.PollDeviceAuthorization(ctx, hash, clientID, issued, now)
	end(span, err)
	return v0, err
}

func (w traced) RedeemCode(ctx context.Context, hash string, issued Issued, first *FirstRefresh, now time.Time) (AuthCode, bool, error) {
	ctx, span := w.start(ctx, "RedeemCode")
	v0, v1, err := w.next.RedeemCode(ctx, hash, issued, first, now)
	end(span, err)
	return v0, v1, err
}

func (w traced) RetryLogoutDelivery(ctx context.Context, d LogoutDelivery) error {
	ctx, span := w.start(ctx, "RetryLogoutDelivery")
	err := w.next.RetryLogoutDelivery(ctx, d)
	end(span, err)
	return err
}

func (w traced) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	ctx, span := w.start(ctx, "RevokeAccessToken")
	err := w.next.RevokeAccessToken(ctx, jti, expiresAt)
	end(span, err)
	return err
}

func (w traced) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	ctx, span := w.start(ctx, "RevokeFamily")
	err := w.next.RevokeFamily(ctx, familyID, now)
	end(span, err)
	return err
}

func (w traced) RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, now time.Time) (RefreshToken, error) {
	ctx, span := w.start(ctx, "RotateRefreshToken")
	v0, err := w.next.RotateRefreshToken(ctx, oldHash, next, now)
	end(span, err)
	return v0, err
}

func (w traced) SaveConsent(ctx context.Context, c Consent) error {
	ctx, span := w.start(ctx, "SaveConsent")
	err := w.next.SaveConsent(ctx, c)
	end(span, err)
	return err
}

func (w traced) SaveIdentity(ctx context.Context, id Identity) error {
	ctx, span := w.start(ctx, "SaveIdentity")
	err := w.next.SaveIdentity(ctx, id)
	end(span, err)
	return err
}

func (w traced) UpdateAuthRequest(ctx context.Context, r AuthRequest) error {
	ctx, span := w.start(ctx, "UpdateAuthRequest")
	err := w.next.UpdateAuthRequest(ctx, r)
	end(span, err)
	return err
}

func (w traced) UseAssertion(ctx context.Context, id string, expiresAt time.Time, now time.Time) error {
	ctx, span := w.start(ctx, "UseAssertion")
	err := w.next.UseAssertion(ctx, id, expiresAt, now)
	end(span, err)
	return err
}
