package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/claimmap"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// loginDenial decides whether person p may sign in to client, by the
// login rules of the server's and the client's claim mappings
// (claimmap.Admit): nil when they may. Every path that lets a person into
// a client asks it: a login completing (completeLogin), a signed-in
// person's single sign-on (signInOrConsent), the consent page and its
// decision (handleConsent), and a refresh (grantRefreshToken). It fails
// closed: a mapping that does not compile, or a person no longer known
// (p nil), is refused while there may be rules.
func loginDenial(snap *config.Snapshot, client *config.Client, p *identity.Person) *claimmap.Denial {
	switch {
	case snap.ClaimMappingErr != nil:
		return &claimmap.Denial{Of: "AuthorizationServer", Rule: "spec.claimMapping", Err: snap.ClaimMappingErr}
	case client.ClaimMappingErr != nil:
		return &claimmap.Denial{Of: "OAuthClient", Rule: "spec.claimMapping", Err: client.ClaimMappingErr}
	case !snap.ClaimMapping.HasLoginRules() && !client.ClaimMapping.HasLoginRules():
		return nil
	case p == nil:
		return &claimmap.Denial{Of: "AuthorizationServer", Rule: "spec.claimMapping.loginRules", Err: errUnknownPerson}
	}
	return claimmap.Admit(snap.ClaimMapping, client.ClaimMapping, claimmap.User{
		Subject: p.Subject, Username: p.Username, Name: p.Name, Email: p.Email,
		EmailVerified: p.EmailVerified, Groups: p.Groups,
	}, claimmap.Client{ID: client.ID, Namespace: client.Namespace})
}

var errUnknownPerson = errors.New("the person is no longer known to the server, so the rules cannot be evaluated")

// subjectDenial is loginDenial for the person behind subject, read as the
// token and userinfo paths read them (personFor: memory or storage).
func (s *Server) subjectDenial(snap *config.Snapshot, client *config.Client, subject string) *claimmap.Denial {
	if !snap.ClaimMapping.HasLoginRules() && !client.ClaimMapping.HasLoginRules() &&
		snap.ClaimMappingErr == nil && client.ClaimMappingErr == nil {
		return nil
	}
	var person *identity.Person
	if p, ok := s.personFor(snap, subject); ok {
		person = &p
	}
	return loginDenial(snap, client, person)
}

// refuseLogin ends a flow that a login rule refused: no session (for a
// login just made), no code, no consent. It records the refusal (security
// event login_denied, the audit line's message, and for a login just
// made login_attempts_total{outcome="denied"}), then sends the client
// access_denied (RFC 6749 §4.1.2.1; its redirect URI was verified when the
// flow began), or, for a device approval, which has no redirect, records
// the denial for the device's next poll and tells the person on a page.
func (s *Server) refuseLogin(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, client *config.Client,
	ar storage.AuthRequest, subject string, d *claimmap.Denial, freshLogin bool) result {
	ctx := r.Context()
	ri := infoFrom(ctx)
	if ri != nil {
		if ri.audit.event == "" {
			ri.auditPage(audit.EventLogin, client, subject)
		}
		ri.audit.subject, ri.audit.message = subject, d.Reason()
	}
	ri.securityEvent(ctx, EventLoginDenied, slog.String("client_id", client.ID), slog.String("sub", subject),
		slog.String("rule", d.Of+" "+d.Rule), slog.String("reason", d.Reason()))
	if freshLogin {
		s.metrics.logins.WithLabelValues(loginDenied).Inc()
	}
	e := newError(ErrAccessDenied, deniedDescription(d))
	if ar.Device != "" {
		if err := s.store.DecideDeviceAuthorization(ctx, ar.Device, storage.DeviceDecision{Subject: subject}, s.now()); err != nil {
			s.log.Warn("recording a refused device approval", "error", err)
		}
	}
	if ar.ID != "" {
		if err := s.store.DeleteAuthRequest(ctx, ar.ID); err != nil {
			s.log.Warn("deleting a refused authorization request", "error", err)
		}
	}
	if ar.Device != "" {
		s.pages.Render(w, http.StatusForbidden, "device_done", "", s.deniedPage(r, snap, client, ar, d))
		return failed(e)
	}
	s.authorizationError(w, r, snap, responseTo(ar), e)
	return failed(e)
}

// loginDenied is login_attempts_total's outcome for a login with the
// right credentials that a login rule refused.
const loginDenied = "denied"

// deniedDescription is access_denied's error_description: that a rule
// refused, and the rule's message when it fits the characters RFC 6749
// §4.1.2.1 allows there (printable ASCII but " and \). Never the
// expression or why it failed: those are in the logs.
func deniedDescription(d *claimmap.Denial) string {
	desc := "the user may not sign in to this client: a login rule of the " + d.Of + " refused them"
	if d.Err != nil {
		desc += " (it could not be evaluated for them)"
	}
	if d.Message != "" && strings.IndexFunc(d.Message, func(r rune) bool { return r < 0x20 || r > 0x7e || r == '"' || r == '\\' }) < 0 {
		desc += ": " + d.Message
	}
	return desc
}

// deniedPage tells a person on a device approval that they were refused,
// in the sign-in's language: the rule's message (the administrator's own
// words, as written), or why there is none to give.
func (s *Server) deniedPage(r *http.Request, snap *config.Snapshot, client *config.Client, ar storage.AuthRequest, d *claimmap.Denial) pages.Data {
	data := pages.Data{Title: "Sign-in refused", Error: "Your account may not sign in to %s.", ErrorArgs: []any{client.DisplayName}}
	switch {
	case d.Message != "":
		data.Error, data.ErrorArgs = "Your account may not sign in to %[1]s: %[2]s", []any{client.DisplayName, d.Message}
	case d.Err != nil:
		data.Error = "Your account could not be checked against the sign-in rules of %[1]s, so sign-in was refused. Tell the administrator of %[1]s."
	}
	return s.page(r, snap, ar.UILocales, data)
}

// refreshAdmits checks the login rules again on a refresh, so that a
// person who no longer passes them (removed from a group in the users
// Secret, by an upstream re-check's answer, or a rule changed since) gets
// no more tokens. known is the person as a re-check just gave them, or
// nil; the person read is returned, for the tokens' claims. The family is
// refused, not revoked: undoing the change lets it refresh again, as with
// a person removed from the identity source.
func (s *Server) refreshAdmits(ctx context.Context, snap *config.Snapshot, client *config.Client, subject string, known *identity.Person) (*identity.Person, *Error) {
	if !snap.ClaimMapping.HasLoginRules() && !client.ClaimMapping.HasLoginRules() &&
		snap.ClaimMappingErr == nil && client.ClaimMappingErr == nil {
		return known, nil
	}
	if known == nil {
		if p, ok := s.personFor(snap, subject); ok {
			known = &p
		}
	}
	d := loginDenial(snap, client, known)
	if d == nil {
		return known, nil
	}
	ri := infoFrom(ctx)
	if ri != nil {
		ri.audit.message = d.Reason()
	}
	ri.securityEvent(ctx, EventLoginDenied, slog.String("client_id", client.ID), slog.String("sub", subject),
		slog.String("rule", d.Of+" "+d.Rule), slog.String("reason", d.Reason()))
	return nil, invalidGrant("the user may no longer sign in to this client: a login rule of the " + d.Of + " refused them")
}
