package server

import (
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// handleEndSession is the end_session_endpoint of OpenID Connect
// RP-Initiated Logout 1.0 (§2, §3), GET or POST: id_token_hint, client_id,
// post_logout_redirect_uri and state; other parameters are ignored.
//
// The browser's session ends at once when the relying party proves whose
// logout it asks for: an id_token_hint this server issued, about the
// person signed in. Otherwise the person confirms on a page first (§2: a
// logout request anyone can send from any site must not sign people out
// silently); that form carries the CSRF token.
//
// An id_token_hint also ends the session it was issued in (its sid),
// with or without this browser's cookie: a relying party's back end
// signing the person out (oauth2-proxy's --backend-logout-url) has no
// cookie, and the hint, signed by this server, names the session.
//
// Every other client that got tokens in an ended session and has a
// back-channel logout URI is sent a logout token (backchannel.go); the
// client that asked is not.
//
// post_logout_redirect_uri is followed only when it is registered for the
// client (spec.postLogoutRedirectURIs, exact match) that client_id or the
// hint names; otherwise a page says so and nothing redirects (§3, no open
// redirector). Bad input changes nothing: the session is ended only after
// every check has passed.
func (s *Server) handleEndSession(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	now := s.now()
	bad := func(msg string) result {
		s.errorPage(w, r, snap, http.StatusBadRequest, "Sign-out not possible", msg)
		return result{outcome: ErrInvalidRequest}
	}
	form, res, ok := s.endSessionForm(w, r, snap)
	if !ok {
		return res
	}
	// The confirmation form posts back with decision=logout; it alone
	// must carry the CSRF token.
	confirmed := r.Method == http.MethodPost && form.Get("decision") == "logout"
	if confirmed && !checkCSRF(r, snap, form) {
		s.errorPage(w, r, snap, http.StatusForbidden, "Session expired", "This form has expired or did not come from this site. Sign out again from the application.")
		return result{outcome: "csrf_failed"}
	}

	var hint *idTokenClaims
	if v := form.Get("id_token_hint"); v != "" {
		var ok bool
		if hint, ok = verifyIDTokenHint(snap, v); !ok {
			return bad("The application sent an ID token this server did not issue (id_token_hint).")
		}
	}
	clientID := form.Get("client_id")
	if hint != nil {
		if clientID != "" && clientID != hint.AZP {
			return bad("The application's client_id does not match the ID token it sent (id_token_hint).")
		}
		clientID = hint.AZP
	}
	var client *config.Client
	if clientID != "" {
		if client = snap.Clients.Get(clientID); client == nil {
			return bad("The application that sent you here is not registered with this server (unknown client_id).")
		}
	}
	redirect := form.Get("post_logout_redirect_uri")
	if redirect != "" && (client == nil || !client.HasPostLogoutRedirectURI(redirect)) {
		return bad("The application asked to send you to an address it has not registered for after sign-out (post_logout_redirect_uri).")
	}

	ctx := r.Context()
	failed := func(err error) result {
		s.logStorageFailure(ctx, "ending a session", err)
		status, outcome := storagePageStatus(w, err)
		s.errorPage(w, r, snap, status, "Something went wrong", "You could not be signed out. Try again shortly.")
		return result{outcome: outcome}
	}
	sess, signedIn := s.session(ctx, r, snap, now)
	if hint != nil && hint.SID != "" && (!signedIn || sess.ID != hint.SID) {
		// The sid is the server's own, in a token it signed: it names
		// one session of hint.Subject.
		infoFrom(ctx).auditPage(audit.EventLogout, client, hint.Subject)
		if _, err := s.endSessions(ctx, snap, storage.SessionSelector{ID: hint.SID}, storage.EndOptions{Except: clientID}, "end_session id_token_hint"); err != nil {
			return failed(err)
		}
	}
	if signedIn && !confirmed && (hint == nil || hint.Subject != sess.Subject) {
		s.confirmLogout(w, r, snap, form, client, sess, redirect)
		return result{outcome: "confirm"}
	}
	if signedIn {
		infoFrom(ctx).auditPage(audit.EventLogout, client, sess.Subject)
		if _, err := s.endSessions(ctx, snap, storage.SessionSelector{Hash: sess.Hash}, storage.EndOptions{Except: clientID}, "end_session"); err != nil {
			return failed(err)
		}
	}
	setCookie(w, snap, sessionCookie, "", -1)
	if redirect != "" {
		// §3: state is passed back as sent.
		http.Redirect(w, r, redirectURL(redirect, url.Values{"state": {form.Get("state")}}), redirectStatus(r))
		return result{outcome: outcomeSuccess}
	}
	s.pages.Render(w, http.StatusOK, "signed_out", "", s.page(r, snap, uiLocales(form), pages.Data{
		Title: "Signed out", Error: "You are signed out. You can close this page.",
	}))
	return result{outcome: outcomeSuccess}
}

// endSessionForm reads the logout request's parameters from the query (GET)
// or the body (POST); on failure the answer is written and ok is false.
func (s *Server) endSessionForm(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) (form url.Values, res result, ok bool) {
	var e *Error
	switch r.Method {
	case http.MethodGet:
		form, e = strictValues(r.URL.Query())
	case http.MethodPost:
		form, e = parsePostForm(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		s.errorPage(w, r, snap, http.StatusMethodNotAllowed, "Request not allowed", "The sign-out page accepts GET and POST requests only.")
		return nil, result{outcome: "method_not_allowed"}, false
	}
	if e != nil {
		s.errorPage(w, r, snap, http.StatusBadRequest, "Sign-out not possible", e.Description)
		return nil, result{outcome: ErrInvalidRequest}, false
	}
	return form, result{}, true
}

// confirmLogout asks the person signed in whether to sign out, carrying the
// relying party's parameters through the form.
func (s *Server) confirmLogout(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, form url.Values, client *config.Client, sess storage.Session, redirect string) {
	data := s.page(r, snap, uiLocales(form), pages.Data{
		Title: "Sign out", Action: trimIssuer(snap) + endpoints.EndSessionPath,
		CSRF: csrfToken(w, r, snap), Username: s.usernameOf(snap, sess.Subject),
	})
	if client != nil {
		data.ClientName = client.DisplayName
		data.Hidden = append(data.Hidden, pages.HiddenField{Name: "client_id", Value: client.ID})
	}
	for _, k := range []string{"post_logout_redirect_uri", "state", "ui_locales"} {
		if v := form.Get(k); v != "" {
			data.Hidden = append(data.Hidden, pages.HiddenField{Name: k, Value: v})
		}
	}
	s.pages.Render(w, http.StatusOK, "logout", redirect, data)
}
