package server

import (
	"context"
	"log/slog"
	"net/netip"
)

// Security events: what an operator alerts on. Each occurrence is one log
// line at level WARN with msg "security event" and attribute event, and
// one increment of gatehouse_server_security_events_total{event}. Neither
// ever carries a code, token, secret or password.
const (
	// EventCodeReplay: an authorization code was presented again; what its
	// first redemption issued is revoked (RFC 6749 §4.1.2).
	EventCodeReplay = "code_replay"
	// EventDeviceCodeReplay: a redeemed device code was presented again;
	// what its redemption issued is revoked (RFC 8628, treated as a code).
	EventDeviceCodeReplay = "device_code_replay"
	// EventRefreshTokenReuse: a rotated refresh token was presented; its
	// family and the family's access tokens are revoked (RFC 9700 §4.14.2).
	EventRefreshTokenReuse = "refresh_token_reuse"
	// EventLoginThrottled: the login throttle refused to check a password.
	EventLoginThrottled = "login_throttled"
	// EventDeviceAuthorizationThrottled: a client or a client address
	// asked for more device authorizations than it may (RFC 8628 §3.1;
	// throttle.DefaultDeviceAuthorizations): a flood, or a client in a loop.
	EventDeviceAuthorizationThrottled = "device_authorization_throttled"
	// EventClientAuthFailed: client authentication was refused at the
	// token, revocation or introspection endpoint.
	EventClientAuthFailed = "client_authentication_failed"
	// EventUpstreamCallbackRejected: an upstream identity provider's
	// callback did not match this browser's sign-in, or its answer failed
	// verification (login CSRF, a forged or replayed callback).
	EventUpstreamCallbackRejected = "upstream_callback_rejected"
	// EventClientAssertionReplay: a JWT client assertion (private_key_jwt,
	// or a single-use trusted issuer's token) was presented again; it is
	// refused like any failed client authentication.
	EventClientAssertionReplay = "client_assertion_replay"
	// EventLoginDenied: a login rule (spec.claimMapping.loginRules of
	// the AuthorizationServer or the OAuthClient) refused a person, or
	// could not be evaluated for them: no code or token was issued.
	EventLoginDenied = "login_denied"
)

// securityEvents lists every event, so that each counter exists at zero
// from the start and rate() alerts work before the first occurrence.
var securityEvents = []string{EventCodeReplay, EventDeviceCodeReplay, EventRefreshTokenReuse, EventLoginThrottled, EventDeviceAuthorizationThrottled, EventClientAuthFailed, EventUpstreamCallbackRejected, EventClientAssertionReplay, EventLoginDenied}

// maxLoggedValue bounds a client-chosen string (a client_id that does not
// exist) in a log line.
const maxLoggedValue = 128

// requestInfo is what the server worked out about a request before routing
// it, carried in the request's context to the code that needs it: grants
// get a context, not the request.
type requestInfo struct {
	s        *Server
	endpoint string
	// addr is the client's address as the trusted proxies report it.
	addr netip.Addr
	// traceID is the request's W3C trace ID, zero when it has none.
	traceID [16]byte
	// audit is what the request's audit line says (audit.go).
	audit auditRecord
}

type requestInfoKey struct{}

// infoContext carries a request's info: one allocation for the context
// and the info together, where context.WithValue and the info would be
// two.
type infoContext struct {
	context.Context
	info requestInfo
}

func (c *infoContext) Value(key any) any {
	if key == (requestInfoKey{}) {
		return &c.info
	}
	return c.Context.Value(key)
}

// infoFrom returns the request's info; nil outside ServeHTTP (unit tests
// and fuzzers calling handlers' helpers directly), which records nothing.
func infoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return ri
}

// securityEvent records one security event: a log line and a count.
func (ri *requestInfo) securityEvent(ctx context.Context, event string, attrs ...slog.Attr) {
	if ri == nil {
		return
	}
	ri.s.metrics.security.WithLabelValues(event).Inc()
	ri.audit.securityEvent = event
	attrs = append([]slog.Attr{
		slog.String("event", event),
		slog.String("endpoint", ri.endpoint),
		slog.String("client_address", ri.addr.String()),
	}, attrs...)
	ri.s.log.LogAttrs(ctx, slog.LevelWarn, "security event", attrs...)
}

// loggable shortens a client-chosen value for a log line.
func loggable(s string) string {
	if len(s) <= maxLoggedValue {
		return s
	}
	return s[:maxLoggedValue] + "…"
}
