package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
)

// Upstream OpenID Provider logins. The login page links to
// UpstreamStartPath for each provider; the provider sends the browser back
// to UpstreamCallbackPath, the redirect URI to register at the provider.
//
// What the callback must match (state, nonce, PKCE verifier) stays in the
// browser, in an HttpOnly cookie set at the start and cleared at the first
// callback: a callback from another browser (login CSRF, a code injected
// from elsewhere) carries no matching state, and a replayed one finds the
// cookie gone. Altering one's own cookie only spoils one's own login: the
// ID token is still verified, and its nonce must match.
const (
	UpstreamStartPath    = "/login/upstream"
	UpstreamCallbackPath = "/login/callback"
	upstreamCookie       = "gatehouse-upstream"
	// upstreamCookieMaxAge bounds the time at the provider (seconds).
	upstreamCookieMaxAge = 600
)

// pendingUpstream is the cookie's content.
type pendingUpstream struct {
	AuthRequest string           `json:"a"`
	Provider    string           `json:"p"`
	Pending     identity.Pending `json:"x"`
}

func upstreamButtons(snap *config.Snapshot, set *identity.Set, authRequest string) []pages.UpstreamButton {
	var out []pages.UpstreamButton
	for _, src := range set.Redirects() {
		u := strings.TrimSuffix(snap.Issuer, "/") + UpstreamStartPath + "?" + url.Values{"auth_request": {authRequest}, "provider": {src.Name()}}.Encode()
		out = append(out, pages.UpstreamButton{Name: src.Name(), DisplayName: src.DisplayName(), URL: u})
	}
	return out
}

func upstreamCallbackURL(snap *config.Snapshot) string {
	return strings.TrimSuffix(snap.Issuer, "/") + UpstreamCallbackPath
}

// handleUpstreamStart sends the browser to the provider.
func (s *Server) handleUpstreamStart(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.errorPage(w, snap, http.StatusMethodNotAllowed, "Request not allowed", "This page accepts GET requests only.")
		return result{outcome: "method_not_allowed"}
	}
	q := r.URL.Query()
	ar, _, ok := s.loadFlow(w, r, snap, q.Get("auth_request"), s.now())
	if !ok {
		return result{outcome: ErrInvalidRequest}
	}
	src, ok := snap.IdentitySet().Redirect(q.Get("provider"))
	if !ok {
		s.errorPage(w, snap, http.StatusBadRequest, "Unknown sign-in option", "This sign-in option is not offered any more. Go back to the application and start again.")
		return result{outcome: ErrInvalidRequest}
	}
	dest, pend, err := src.Start(r.Context(), upstreamCallbackURL(snap))
	if err != nil {
		return s.upstreamFailed(w, r, snap, src, err)
	}
	v, _ := json.Marshal(pendingUpstream{AuthRequest: ar.ID, Provider: src.Name(), Pending: pend})
	setCookie(w, snap, upstreamCookie, base64.RawURLEncoding.EncodeToString(v), upstreamCookieMaxAge)
	http.Redirect(w, r, dest, http.StatusFound)
	return result{outcome: outcomeSuccess}
}

// handleUpstreamCallback finishes an upstream login: the provider's answer
// is verified against this browser's pending login, then the person is
// logged in here as any other.
func (s *Server) handleUpstreamCallback(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.errorPage(w, snap, http.StatusMethodNotAllowed, "Request not allowed", "This page accepts GET requests only.")
		return result{outcome: "method_not_allowed"}
	}
	// Single use: whatever happens next, this pending login is over.
	setCookie(w, snap, upstreamCookie, "", -1)
	ri := infoFrom(r.Context())
	ri.auditPage(audit.EventUpstreamLogin, nil, "", false, "")
	var pend pendingUpstream
	raw, err := base64.RawURLEncoding.DecodeString(readCookie(r, snap, upstreamCookie))
	if err != nil || len(raw) == 0 || json.Unmarshal(raw, &pend) != nil {
		infoFrom(r.Context()).securityEvent(r.Context(), EventUpstreamCallbackRejected, slog.String("reason", "no pending sign-in in this browser"))
		s.errorPage(w, snap, http.StatusBadRequest, "Sign-in could not be completed", "This browser has no sign-in waiting for that answer (it expired, finished already, or was started elsewhere). Go back to the application and start again.")
		return result{outcome: "upstream_rejected"}
	}
	now := s.now()
	ar, client, ok := s.loadFlow(w, r, snap, pend.AuthRequest, now)
	if !ok {
		return result{outcome: ErrInvalidRequest}
	}
	src, ok := snap.IdentitySet().Redirect(pend.Provider)
	if !ok {
		s.errorPage(w, snap, http.StatusBadRequest, "Unknown sign-in option", "This sign-in option is not offered any more. Go back to the application and start again.")
		return result{outcome: ErrInvalidRequest}
	}
	if ri != nil {
		ri.audit.clientID, ri.audit.provider = client.ID, src.Name()
	}
	person, err := src.Finish(r.Context(), upstreamCallbackURL(snap), pend.Pending, r.URL.Query())
	if err != nil {
		return s.upstreamFailed(w, r, snap, src, err)
	}
	return s.completeLogin(w, r, snap, client, ar, person, now)
}

// upstreamFailed shows what went wrong at or with the provider: a page
// the person can act on, never a stack. The log line says why, without
// codes or tokens (identity's errors carry none).
func (s *Server) upstreamFailed(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, src identity.Source, err error) result {
	name := src.DisplayName()
	switch {
	case errors.Is(err, identity.ErrNotAllowed):
		s.log.Warn("upstream login not allowed", "provider", src.Name(), "error", err)
		s.errorPage(w, snap, http.StatusForbidden, "Not allowed", "Your "+name+" account is not allowed to sign in here. Ask your administrator for access.")
		return result{outcome: "upstream_not_allowed"}
	case errors.Is(err, identity.ErrRejected):
		infoFrom(r.Context()).securityEvent(r.Context(), EventUpstreamCallbackRejected, slog.String("provider", src.Name()), slog.String("reason", err.Error()))
		s.errorPage(w, snap, http.StatusBadRequest, "Sign-in could not be completed", "The answer from "+name+" could not be verified. Go back to the application and start again.")
		return result{outcome: "upstream_rejected"}
	default:
		s.log.Warn("identity provider unavailable", "provider", src.Name(), "error", err)
		s.errorPage(w, snap, http.StatusServiceUnavailable, name+" is not available", "Sign-in with "+name+" is not possible right now: it could not be reached. Try again in a few minutes.")
		return result{outcome: ErrTemporarilyUnavailable}
	}
}
