package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// The audit log (package audit, docs/operations.md "Audit log").
//
// A request's audit line belongs to the dispatcher, like its metrics: the
// shared phases and the handler note what they learn in the request's
// auditRecord (requestInfo.audit), and ServeHTTP writes one line when the
// handler returns, with what every line has (time, issuer, source
// address, user agent, trace ID) and the outcome from the handler's
// result. The phases fill in most of it, so an endpoint gets its line for
// free:
//   - client authentication (authenticatedForm) makes every
//     client-authenticated request audited, as the event its endpoint
//     maps to (auditEvents), with the client_id it presented;
//   - the token dispatcher adds the grant, and what the grant issued
//     (subject, scopes, audience, jti, refresh-token family);
//   - the security-event helper names the security event;
//   - a result built by failed(e) carries the OAuth error, whose code and
//     description become the line's reason and message.
// The pages (login, consent, logout, upstream login) say themselves what
// they decided, since only they know a decision from a page view.

// auditRecord is what a request's line says beyond what every line has.
// Only strings, slices and numbers the request holds anyway: no
// allocation for the token path.
type auditRecord struct {
	// event is what happened (audit.Event*); "" records nothing.
	event     string
	clientID  string
	subject   string
	loginName string
	provider  string
	grant     string
	scopes    []string
	audience  []string
	jti       string
	grantID   string
	// message, when set, says why rather than the result's error.
	message       string
	securityEvent string
}

// auditEvents maps the endpoints that authenticate clients to the event
// their requests are audited as. An endpoint that is not listed is
// audited under its own name, so that a new client-authenticated endpoint
// is never left out.
var auditEvents = map[string]string{
	"token":                audit.EventToken,
	"revoke":               audit.EventRevocation,
	"introspect":           audit.EventIntrospection,
	"device_authorization": audit.EventDeviceAuthorization,
}

// auditOnlyFailures are events whose successes are not audited:
// introspection is resource servers' hot path, and an active token's
// issue has its own line already.
func auditOnlyFailures(event string) bool { return event == audit.EventIntrospection }

// auditClientAuth marks a client-authenticated request for the audit log,
// with the client_id it presented (before it is known to be right).
func (ri *requestInfo) auditClientAuth(clientID string) {
	if ri == nil {
		return
	}
	if ri.audit.event == "" {
		ev, ok := auditEvents[ri.endpoint]
		if !ok {
			ev = ri.endpoint
		}
		ri.audit.event = ev
	}
	ri.audit.clientID = clientID
}

// auditIssued records what a token response carries.
func (ri *requestInfo) auditIssued(resp *tokenResponse) {
	if ri == nil {
		return
	}
	a := &ri.audit
	a.subject, a.scopes, a.audience, a.jti, a.grantID = resp.issued.Subject, resp.issued.Scopes, resp.issued.Audience, resp.issued.ID, resp.issued.GrantID
}

// auditRevoked records what a revocation was about: an access token's
// jti, or a refresh-token family.
func (ri *requestInfo) auditRevoked(subject, jti, grantID string) {
	if ri == nil {
		return
	}
	ri.audit.subject, ri.audit.jti, ri.audit.grantID = subject, jti, grantID
}

// auditPage records a decision a page made: event, the flow's client and
// person. Whether it failed, and why, is the result's outcome.
func (ri *requestInfo) auditPage(event string, client *config.Client, subject string) {
	if ri == nil {
		return
	}
	a := &ri.audit
	a.event, a.subject = event, subject
	if client != nil {
		a.clientID = client.ID
	}
}

// auditPerson adds who logged in.
func (ri *requestInfo) auditPerson(p identity.Person) {
	if ri == nil {
		return
	}
	ri.audit.subject, ri.audit.loginName = p.Subject, p.Username
}

// auditSessionsEnded writes a logout line for each person whose sessions
// ended outside a request: an administrator's SessionRevocation, a person
// removed from the users Secret or with their identity provider. Within a
// request (end_session) the request's own line says it.
func (s *Server) auditSessionsEnded(ctx context.Context, snap *config.Snapshot, ended storage.Ended, why string) {
	if s.audit == nil || infoFrom(ctx) != nil || (len(ended.Sessions) == 0 && ended.FamiliesRevoked == 0) {
		return
	}
	sessions := map[string]int{}
	var order []string
	for _, e := range ended.Sessions {
		if sessions[e.Subject] == 0 {
			order = append(order, e.Subject)
		}
		sessions[e.Subject]++
	}
	if len(order) == 0 {
		s.audit.Record(&audit.Event{Event: audit.EventLogout, Issuer: snap.Issuer, Reason: why,
			Message: fmt.Sprintf("%d grants revoked", ended.FamiliesRevoked)})
		return
	}
	for _, sub := range order {
		s.audit.Record(&audit.Event{Event: audit.EventLogout, Issuer: snap.Issuer, Subject: sub, Reason: why,
			Message: fmt.Sprintf("%d sessions ended", sessions[sub])})
	}
}

// writeAudit writes the request's line, if it has one.
func (s *Server) writeAudit(r *http.Request, ri *requestInfo, snap *config.Snapshot, res result, start time.Time) {
	a := &ri.audit
	failed := res.outcome != outcomeSuccess
	if !failed && auditOnlyFailures(a.event) {
		return
	}
	e := audit.Event{
		Event: a.event, Received: start, TraceID: ri.traceID,
		Issuer: snap.Issuer, ClientID: a.clientID, Subject: a.subject, LoginName: a.loginName, IdentityProvider: a.provider,
		SourceIP: ri.addr, UserAgent: r.UserAgent(),
		GrantType: a.grant, Scopes: a.scopes, Audience: a.audience, JTI: a.jti, GrantID: a.grantID,
		Failure: failed, Reason: res.outcome, Message: a.message, SecurityEvent: a.securityEvent,
	}
	if res.err != nil {
		e.Code = res.err.Status
		if e.Message == "" {
			e.Message = res.err.Description
		}
	}
	s.audit.Record(&e)
}
