// Package audit is Gatehouse's audit log: one JSON line per event that
// matters to an auditor (a token issued or refused, a login, a consent, a
// logout, a revocation; from the operator, a client secret generated,
// rotated or adopted, a signing key rotated, a client admitted or
// refused), on a stream of its own, apart from the debug log.
//
// The line's fields are named like the Kubernetes audit event
// (audit.k8s.io/v1 Event: auditID, stage, requestReceivedTimestamp,
// stageTimestamp, user, sourceIPs, userAgent, objectRef, responseStatus)
// wherever one means the same; the rest are Gatehouse's own. The schema is
// documented in docs/operations.md ("Audit log"). A line never carries a
// secret, code, token or password: Event has no field for one.
//
// Lines are written without reflection (package jsonappend) and handed to
// a Log, which writes them in order from a goroutine of its own and makes
// callers wait, never drops, when the stream falls behind (log.go).
package audit

import (
	"crypto/rand"
	"net/netip"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jsonappend"
)

// APIVersion is the version of the line's schema.
const APIVersion = "audit.gatehouse.dev/v1alpha1"

// Event names: what happened. A token request is one "token" event,
// issued (Success) or refused (Failure), whatever its grant.
const (
	EventToken               = "token"
	EventDeviceAuthorization = "device_authorization"
	EventLogin               = "login"
	EventUpstreamLogin       = "upstream_login"
	EventConsent             = "consent"
	EventLogout              = "logout"
	EventRevocation          = "revocation"
	EventIntrospection       = "introspection"
	// The operator's.
	EventClientSecret    = "client_secret"
	EventSigningKey      = "signing_key"
	EventClientAdmission = "client_admission"
)

// Response statuses, as in a Kubernetes Status.
const (
	StatusSuccess = "Success"
	StatusFailure = "Failure"
)

// maxValue bounds a string a client or browser chose (a user agent, a
// client_id that does not exist) in a line.
const maxValue = 256

// ObjectRef names the Kubernetes object an operator event is about.
type ObjectRef struct {
	Resource   string
	Namespace  string
	Name       string
	APIGroup   string
	APIVersion string
}

// Event is one audit line. Empty fields are left out.
type Event struct {
	// Event is what happened: one of the Event* names.
	Event string
	// Received is when the request arrived (requestReceivedTimestamp);
	// the time of writing when zero.
	Received time.Time
	// Now is the time of writing (stageTimestamp); time.Now when zero.
	Now time.Time
	// TraceID is the W3C trace ID of the request, zero when none.
	TraceID [16]byte

	Issuer   string
	ClientID string
	// Subject is the sub of what was issued or of who logged in: a
	// person's subject or client:<client_id> (user.username).
	Subject string
	// LoginName is the name a person logged in with, when it names a real
	// account (a name that does not may be a password typed into the
	// wrong field).
	LoginName string
	// IdentityProvider names the upstream of an upstream login.
	IdentityProvider string
	SourceIP         netip.Addr
	UserAgent        string

	GrantType string
	Scopes    []string
	Audience  []string
	// JTI is the jti of the access token issued, or of the token revoked.
	JTI string
	// GrantID names the refresh-token family a token was issued under.
	GrantID string

	// Failure makes responseStatus.status Failure.
	Failure bool
	// Code is the HTTP status answered, 0 when none.
	Code int
	// Reason is the outcome in a word: an OAuth error code, or a reason
	// such as Generated or NamespaceNotAllowed.
	Reason string
	// Message says why, for a person; never a secret.
	Message string
	// SecurityEvent names the security event the request raised (the
	// security log's event), if any.
	SecurityEvent string

	// Object is what an operator event is about.
	Object *ObjectRef
}

// AppendJSON appends e as one JSON line, ending in a newline, with a new
// random auditID.
func (e *Event) AppendJSON(b []byte) []byte {
	now := e.Now
	if now.IsZero() {
		now = time.Now()
	}
	received := e.Received
	if received.IsZero() {
		received = now
	}
	b = append(b, `{"kind":"Event","apiVersion":"`+APIVersion+`","level":"Metadata","auditID":"`...)
	b = appendUUID(b)
	b = append(b, `","stage":"ResponseComplete"`...)
	b = appendTime(b, "requestReceivedTimestamp", received)
	b = appendTime(b, "stageTimestamp", now)
	b = member(b, "event", e.Event)
	if e.TraceID != ([16]byte{}) {
		b = append(b, `,"traceID":"`...)
		b = appendHex(b, e.TraceID[:])
		b = append(b, '"')
	}
	b = member(b, "issuer", e.Issuer)
	b = member(b, "clientID", bounded(e.ClientID))
	if e.Subject != "" {
		b = append(b, `,"user":{`...)
		b = jsonappend.Member(b, "username", e.Subject)
		b = append(b, '}')
	}
	b = member(b, "loginName", e.LoginName)
	b = member(b, "identityProvider", e.IdentityProvider)
	if e.SourceIP.IsValid() {
		b = append(b, `,"sourceIPs":["`...)
		b = e.SourceIP.AppendTo(b)
		b = append(b, `"]`...)
	}
	b = member(b, "userAgent", bounded(e.UserAgent))
	b = member(b, "grantType", e.GrantType)
	if len(e.Scopes) > 0 {
		b = jsonappend.Strings(b, "scopes", e.Scopes)
	}
	if len(e.Audience) > 0 {
		b = jsonappend.Strings(b, "audience", e.Audience)
	}
	b = member(b, "jti", e.JTI)
	b = member(b, "grantID", e.GrantID)
	b = e.appendObject(b)
	b = e.appendStatus(b)
	b = member(b, "securityEvent", e.SecurityEvent)
	return append(b, '}', '\n')
}

func (e *Event) appendObject(b []byte) []byte {
	o := e.Object
	if o == nil {
		return b
	}
	b = append(b, `,"objectRef":{`...)
	b = member(b, "resource", o.Resource)
	b = member(b, "namespace", o.Namespace)
	b = member(b, "name", o.Name)
	b = member(b, "apiGroup", o.APIGroup)
	b = member(b, "apiVersion", o.APIVersion)
	return append(b, '}')
}

func (e *Event) appendStatus(b []byte) []byte {
	status := StatusSuccess
	if e.Failure {
		status = StatusFailure
	}
	b = append(b, `,"responseStatus":{"status":"`...)
	b = append(b, status...)
	b = append(b, '"')
	if e.Code != 0 {
		b = jsonappend.Int(b, "code", int64(e.Code))
	}
	b = member(b, "reason", e.Reason)
	b = member(b, "message", bounded(e.Message))
	return append(b, '}')
}

// member appends ,"name":"value" unless value is empty.
func member(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	return jsonappend.Member(b, name, value)
}

// bounded shortens a value someone else chose.
func bounded(s string) string {
	if len(s) <= maxValue {
		return s
	}
	return s[:maxValue]
}

// appendTime appends ,"name":"<RFC 3339 in UTC with microseconds>", the
// format of a Kubernetes MicroTime.
func appendTime(b []byte, name string, t time.Time) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":"`...)
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

func appendHex(b, v []byte) []byte {
	for _, c := range v {
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

// appendUUID appends a random (version 4) UUID, as Kubernetes audit IDs
// are.
func appendUUID(b []byte) []byte {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	b = appendHex(b, u[0:4])
	b = append(b, '-')
	b = appendHex(b, u[4:6])
	b = append(b, '-')
	b = appendHex(b, u[6:8])
	b = append(b, '-')
	b = appendHex(b, u[8:10])
	b = append(b, '-')
	return appendHex(b, u[10:16])
}

// ParseTraceParent returns the trace ID of a W3C traceparent header value
// (version 00: 00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>), so
// that a line can name the caller's trace even when this process does not
// trace. ok is false for anything else, and for the all-zero trace ID.
func ParseTraceParent(v string) (id [16]byte, ok bool) {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || v[0:2] == "ff" {
		return id, false
	}
	if len(v) > 55 && (v[0:2] == "00" || v[55] != '-') {
		return id, false
	}
	for i := range 16 {
		hi, ok1 := unhex(v[3+2*i])
		lo, ok2 := unhex(v[4+2*i])
		if !ok1 || !ok2 {
			return [16]byte{}, false
		}
		id[i] = hi<<4 | lo
	}
	return id, id != [16]byte{}
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// String is the line, for tests and errors.
func (e *Event) String() string { return string(e.AppendJSON(nil)) }
