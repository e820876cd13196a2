package server

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// handleConsent asks the logged-in person to approve the scopes the client
// requested (GET) and records the decision (POST). Deny sends the browser
// back with access_denied (RFC 6749 §4.1.2.1). Every redirect answering a
// POST is 303 (redirectStatus), deny included.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	now := s.now()
	form, res, ok := s.readPageForm(w, r, snap)
	if !ok {
		return res
	}
	ar, client, ok := s.loadFlow(w, r, snap, form.Get("auth_request"), now)
	if !ok {
		return result{outcome: ErrInvalidRequest}
	}
	ctx := r.Context()
	// The consent must come from the browser that logged in as the
	// request's subject: the session cookie proves it.
	sess, ok := s.session(ctx, r, snap, now)
	if !ok || ar.Subject == "" || sess.Subject != ar.Subject {
		http.Redirect(w, r, pageURL(snap, endpoints.LoginPath, ar.ID), http.StatusSeeOther)
		return result{outcome: "login_required"}
	}
	// The rules again before the page and before the code: they may have
	// changed since the login.
	if d := s.subjectDenial(snap, client, ar.Subject); d != nil {
		return s.refuseLogin(w, r, snap, client, ar, ar.Subject, d, false)
	}
	if ar.Device != "" {
		return s.deviceConsent(w, r, snap, form, ar, client, now)
	}
	need, ask, err := s.consentNeeded(ctx, snap, client, ar, now)
	if err != nil {
		s.log.Error("reading consent", "error", err)
		s.authorizationError(w, r, snap, responseTo(ar), serverError("consent could not be read"))
		return result{outcome: ErrServerError}
	}
	if r.Method == http.MethodGet {
		if !ask {
			return s.issueCode(w, r, snap, ar, now)
		}
		s.pages.Render(w, http.StatusOK, "consent", ar.RedirectURI, s.page(r, snap, ar.UILocales, pages.Data{
			Title: "Allow access", Action: trimIssuer(snap) + endpoints.ConsentPath,
			CSRF: csrfToken(w, r, snap), AuthRequest: ar.ID, ClientName: client.DisplayName,
			ClientLogo: client.LogoURI, PolicyURI: client.PolicyURI, TOSURI: client.TOSURI,
			Subject: ar.Subject, Username: s.usernameOf(snap, ar.Subject), Scopes: need,
			OfferRemember: !client.Public,
		}))
		return result{outcome: outcomeSuccess}
	}

	decision := form.Get("decision")
	if decision == "approve" || decision == "deny" {
		ri := infoFrom(ctx)
		ri.auditPage(audit.EventConsent, client, ar.Subject)
		if ri != nil {
			ri.audit.scopes = ar.Scopes
		}
	}
	switch decision {
	case "deny":
		_ = s.store.DeleteAuthRequest(ctx, ar.ID)
		e := newError(ErrAccessDenied, "the user denied the request")
		s.authorizationError(w, r, snap, responseTo(ar), e)
		return failed(e)
	case "approve":
	default:
		s.errorPageIn(w, r, snap, ar.UILocales, http.StatusBadRequest, "Invalid request", "Choose Allow or Deny.")
		return result{outcome: ErrInvalidRequest}
	}
	// A public client's consent is never remembered (see consentNeeded),
	// so its page offers no such choice and a forged one is ignored.
	if form.Get("remember") == "yes" && !client.Public {
		s.rememberConsent(ctx, client, &ar, now)
	}
	return s.issueCode(w, r, snap, ar, now)
}

// rememberConsent keeps the person's consent to the request's scopes, added
// to what they consented to before. The scopes of claims asked for one by
// one are remembered as consented too: the page asked about them
// (consentScopes). Failing to remember is no reason to fail the flow.
func (s *Server) rememberConsent(ctx context.Context, client *config.Client, ar *storage.AuthRequest, now time.Time) {
	scopes := consentScopes(client, ar.Scopes, storedClaims(ar.Claims))
	if prev, err := s.store.GetConsent(ctx, ar.Subject, client.ID, now); err == nil {
		for _, sc := range prev.Scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	if err := s.store.SaveConsent(ctx, storage.Consent{
		Subject: ar.Subject, ClientID: client.ID, Scopes: scopes, GrantedAt: now, ExpiresAt: now.Add(s.consentTTL),
	}); err != nil {
		s.log.Warn("remembering consent", "error", err)
	}
}

// usernameOf names the logged-in person on the consent page: the username
// they typed, rather than an opaque subject.
func (s *Server) usernameOf(snap *config.Snapshot, subject string) string {
	if u, ok := s.personFor(snap, subject); ok {
		return u.Username
	}
	return subject
}
