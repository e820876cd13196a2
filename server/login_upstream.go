package server

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
	"github.com/gatehouse-dev/gatehouse/server/internal/seal"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Upstream OpenID Provider logins. The login page links to
// UpstreamStartPath for each provider; the provider sends the browser back
// to UpstreamCallbackPath, the redirect URI to register at the provider.
//
// What the callback must match (the authorization request, the provider,
// state, nonce, PKCE verifier) stays in the browser, in an HttpOnly
// cookie set at the start and cleared at the first callback, sealed
// (package seal: AES-256-GCM with a key every replica derives from the
// signing keys), so that nobody can read it or make one up, even where
// the cookie has no __Host- prefix (http issuers). A callback from another
// browser (login CSRF, a code injected from elsewhere) carries no
// matching state; each state is accepted once, across replicas (the
// store's single-use record, as for client assertions), so a callback
// replayed with its cookie restored is refused too; and the ID token is
// still verified, its nonce included.
//
// A provider the operator finds unreachable (its condition
// IdentityProviderUnreachable) is not sent anyone: its button leads to a
// page that says so (503), as the troubleshooting guide promises.
const (
	UpstreamStartPath    = "/login/upstream"
	UpstreamCallbackPath = "/login/callback"
	upstreamCookie       = "gatehouse-upstream"
	// upstreamCookieMaxAge bounds the time at the provider (seconds).
	upstreamCookieMaxAge = 600
	// upstreamFlowPurpose names the keys that seal the flow cookie.
	upstreamFlowPurpose = "upstream login flow cookie"
)

// pendingUpstream is the cookie's content, sealed.
type pendingUpstream struct {
	AuthRequest string           `json:"a"`
	Provider    string           `json:"p"`
	Pending     identity.Pending `json:"x"`
	// Expires bounds the cookie's use server-side too (Unix seconds): a
	// browser keeping it past its Max-Age gains nothing.
	Expires int64 `json:"e"`
}

// flowKeysFor derives the keys that seal the flow cookie.
func flowKeysFor(snap *config.Snapshot) seal.Keys { return seal.Derive(snap.Keys, upstreamFlowPurpose) }

// sealPending seals a pending login for the cookie, with the key that
// signs now.
func (s *Server) sealPending(snap *config.Snapshot, p pendingUpstream, now time.Time) (string, error) {
	key, ok := snap.SigningKey(now)
	if !ok {
		return "", errors.New("no signing key")
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	return s.derive(snap).flowKeys.Seal(key.ID, plain, []byte(upstreamCookie))
}

// openPending opens the cookie; an error says why it is not a pending
// login of this server's, for the security log.
func (s *Server) openPending(snap *config.Snapshot, v string, now time.Time) (pendingUpstream, error) {
	if v == "" {
		return pendingUpstream{}, errors.New("no pending sign-in in this browser")
	}
	plain, err := s.derive(snap).flowKeys.Open(v, []byte(upstreamCookie))
	if errors.Is(err, seal.ErrUnknownKey) {
		return pendingUpstream{}, errors.New("the sign-in cookie was sealed with a key no longer in the key set")
	}
	var p pendingUpstream
	if err != nil || json.Unmarshal(plain, &p) != nil {
		return pendingUpstream{}, errors.New("the sign-in cookie is not one this server sealed (forged or altered)")
	}
	if now.Unix() >= p.Expires {
		return pendingUpstream{}, errors.New("the pending sign-in expired")
	}
	return p, nil
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
		s.errorPage(w, r, snap, http.StatusMethodNotAllowed, "Request not allowed", "This page accepts GET requests only.")
		return result{outcome: "method_not_allowed"}
	}
	q := r.URL.Query()
	ar, _, ok := s.loadFlow(w, r, snap, q.Get("auth_request"), s.now())
	if !ok {
		return result{outcome: ErrInvalidRequest}
	}
	src, ok := snap.IdentitySet().Redirect(q.Get("provider"))
	if !ok {
		s.errorPageIn(w, r, snap, ar.UILocales, http.StatusBadRequest, "Unknown sign-in option", "This sign-in option is not offered any more. Go back to the application and start again.")
		return result{outcome: ErrInvalidRequest}
	}
	if why, down := snap.Unreachable[src.Name()]; down {
		// Not to a provider known to be down: the person would be left
		// at a browser error.
		return s.upstreamFailed(w, r, snap, ar.UILocales, src, fmt.Errorf("%w: the operator's last check: %s", identity.ErrUnavailable, why))
	}
	now := s.now()
	dest, pend, err := src.Start(r.Context(), upstreamCallbackURL(snap))
	if err != nil {
		return s.upstreamFailed(w, r, snap, ar.UILocales, src, err)
	}
	v, err := s.sealPending(snap, pendingUpstream{AuthRequest: ar.ID, Provider: src.Name(), Pending: pend,
		Expires: now.Add(upstreamCookieMaxAge * time.Second).Unix()}, now)
	if err != nil {
		s.log.Error("sealing the upstream sign-in cookie", "error", err)
		s.errorPageIn(w, r, snap, ar.UILocales, http.StatusServiceUnavailable, "Sign-in is not available", "Sign-in cannot start right now. Try again shortly.")
		return result{outcome: ErrTemporarilyUnavailable}
	}
	setCookie(w, snap, upstreamCookie, v, upstreamCookieMaxAge)
	http.Redirect(w, r, dest, http.StatusFound)
	return result{outcome: outcomeSuccess}
}

// handleUpstreamCallback finishes an upstream login: the provider's answer
// is verified against this browser's pending login, then the person is
// logged in here as any other.
func (s *Server) handleUpstreamCallback(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.errorPage(w, r, snap, http.StatusMethodNotAllowed, "Request not allowed", "This page accepts GET requests only.")
		return result{outcome: "method_not_allowed"}
	}
	// Single use: whatever happens next, this pending login is over.
	setCookie(w, snap, upstreamCookie, "", -1)
	ctx := r.Context()
	ri := infoFrom(ctx)
	ri.auditPage(audit.EventUpstreamLogin, nil, "")
	now := s.now()
	const noneWaiting = "This browser has no sign-in waiting for that answer (it expired, finished already, or was started elsewhere). Go back to the application and start again."
	rejected := func(reason, page string) result {
		ri.securityEvent(ctx, EventUpstreamCallbackRejected, slog.String("reason", reason))
		s.errorPage(w, r, snap, http.StatusBadRequest, "Sign-in could not be completed", page)
		return result{outcome: "upstream_rejected"}
	}
	pend, err := s.openPending(snap, readCookie(r, snap, upstreamCookie), now)
	if err != nil {
		return rejected(err.Error(), noneWaiting)
	}
	// RFC 6749 §10.12: the callback must answer this browser's sign-in
	// (checked again by the source, with the nonce and PKCE verifier).
	if st := r.URL.Query()["state"]; len(st) != 1 || subtle.ConstantTimeCompare([]byte(st[0]), []byte(pend.Pending.State)) != 1 {
		return rejected("the state does not match this browser's sign-in (another browser's, or forged)",
			"The answer could not be verified: it does not belong to the sign-in started in this browser. Go back to the application and start again.")
	}
	// Each pending login is finished once, on any replica: a callback
	// replayed with its cookie restored stops here.
	err = s.store.UseAssertion(ctx, storage.AssertionID("upstream-callback", pend.Pending.State), time.Unix(pend.Expires, 0), now)
	switch {
	case errors.Is(err, storage.ErrAssertionReplayed):
		return rejected("this sign-in was finished already (a replayed callback)", noneWaiting)
	case err != nil:
		s.log.Error("recording an upstream callback", "error", err)
		s.errorPage(w, r, snap, http.StatusServiceUnavailable, "Sign-in is not available", "Sign-in cannot be completed right now. Try again shortly.")
		return result{outcome: ErrTemporarilyUnavailable}
	}
	ar, client, ok := s.loadFlow(w, r, snap, pend.AuthRequest, now)
	if !ok {
		return result{outcome: ErrInvalidRequest}
	}
	src, ok := snap.IdentitySet().Redirect(pend.Provider)
	if !ok {
		s.errorPageIn(w, r, snap, ar.UILocales, http.StatusBadRequest, "Unknown sign-in option", "This sign-in option is not offered any more. Go back to the application and start again.")
		return result{outcome: ErrInvalidRequest}
	}
	if ri != nil {
		ri.audit.clientID, ri.audit.provider = client.ID, src.Name()
	}
	person, err := src.Finish(r.Context(), upstreamCallbackURL(snap), pend.Pending, r.URL.Query())
	if err != nil {
		return s.upstreamFailed(w, r, snap, ar.UILocales, src, err)
	}
	return s.completeLogin(w, r, snap, client, ar, person, now)
}

// upstreamFailed shows what went wrong at or with the provider: a page
// the person can act on, in the sign-in's languages, never a stack. The log line says why, without
// codes or tokens (identity's errors carry none).
func (s *Server) upstreamFailed(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, locales string, src identity.Source, err error) result {
	name := src.DisplayName()
	switch {
	case errors.Is(err, identity.ErrNotAllowed):
		s.log.Warn("upstream login not allowed", "provider", src.Name(), "error", err)
		s.errorPageIn(w, r, snap, locales, http.StatusForbidden, "Not allowed", "Your %s account is not allowed to sign in here. Ask your administrator for access.", name)
		return result{outcome: "upstream_not_allowed"}
	case errors.Is(err, identity.ErrRejected):
		infoFrom(r.Context()).securityEvent(r.Context(), EventUpstreamCallbackRejected, slog.String("provider", src.Name()), slog.String("reason", err.Error()))
		s.errorPageIn(w, r, snap, locales, http.StatusBadRequest, "Sign-in could not be completed", "The answer from %s could not be verified. Go back to the application and start again.", name)
		return result{outcome: "upstream_rejected"}
	default:
		s.log.Warn("identity provider unavailable", "provider", src.Name(), "error", err)
		s.errorPageIn(w, r, snap, locales, http.StatusServiceUnavailable, "Sign-in is not available", "%s is not available: it could not be reached. Try again in a few minutes.", name)
		return result{outcome: ErrTemporarilyUnavailable}
	}
}
