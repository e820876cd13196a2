package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// authRequestTTL is how long a person has to log in and consent.
const authRequestTTL = 10 * time.Minute

// ClockSkewLeeway is added to the stored expiry of the short-lived,
// single-use things a client or a browser carries from one replica to
// another (authorization codes, pushed request URIs), so a replica whose
// clock is up to this far ahead of the one that issued them still accepts
// them (docs/operations.md, "Clock skew between replicas"). They stay
// single use and bound to their client (a code also to its redirect URI
// and PKCE verifier); the lifetime only bounds how long an intercepted one
// is worth trying, and 60 s plus this stays well within the 10 minutes
// RFC 6749 §4.1.2 recommends at most for codes.
const ClockSkewLeeway = 2 * time.Minute

// handleAuthorize is the authorization endpoint (RFC 6749 §4.1.1) for
// response_type=code with PKCE S256 (RFC 7636), by GET or POST (OpenID
// Connect Core §3.1.2.1), with its parameters in the request, in a signed
// request object, or pushed before (RFC 9126; authorize_request.go).
//
// client_id and redirect_uri are checked first and, if either is wrong,
// answered with an error page: redirecting to an unverified URI would make
// the server an open redirector (RFC 6749 §4.1.2.1, RFC 9700 §4.11). Every
// later error goes back to the client with error, state and iss (RFC 9207),
// in the response mode it asked for (response_mode.go).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	q, res, ok := s.authorizeParams(w, r, snap)
	if !ok {
		return res
	}
	now := s.now()
	badPage := func(title, msg string) result {
		s.errorPageIn(w, r, snap, uiLocales(q), http.StatusBadRequest, title, msg)
		return result{outcome: ErrInvalidRequest}
	}
	if len(q["client_id"]) > 1 || len(q["redirect_uri"]) > 1 {
		return badPage("Invalid request", "The request names more than one application or return address.")
	}
	client := snap.Clients.Get(q.Get("client_id"))
	if client == nil {
		return badPage("Unknown application", "The application that sent you here is not registered with this server (unknown client_id).")
	}
	in, res, ok := s.resolveRequest(w, r, snap, client, q, now)
	if !ok {
		return res
	}
	q = in.params
	if len(q["redirect_uri"]) > 1 {
		return badPage("Invalid request", "The request names more than one return address.")
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" || !client.HasRedirectURI(redirectURI) {
		return badPage("Invalid return address", "The application asked to send you back to an address it has not registered (redirect_uri does not match).")
	}

	to := responseTarget{redirectURI: redirectURI, state: q.Get("state"), uiLocales: uiLocales(q)}
	fail := func(e *Error) result {
		s.authorizationError(w, r, snap, to, e)
		return failed(e)
	}
	mode, e := parseResponseMode(q.Get("response_mode"), redirectURI)
	if e != nil {
		return fail(e)
	}
	to.mode = mode
	if (client.RequirePAR || snap.RequirePAR) && !in.pushed {
		// RFC 9126 §5, §6: only a request the client pushed, with its
		// authentication, and whose parameters the browser never carried.
		return fail(invalidRequest("this client must push its authorization requests to the pushed authorization request endpoint (RFC 9126) and send only client_id and request_uri"))
	}
	ar, op, e := authorizeRequest(snap, client, redirectURI, q, now)
	if e != nil {
		return fail(e)
	}
	ar.ResponseMode = mode
	if r.Method == http.MethodPost {
		return s.holdPost(w, r, snap, client, in, to, now)
	}
	return s.signInOrConsent(w, r, snap, client, ar, op, fail, now)
}

// signInOrConsent answers a checked authorization request: a code now
// when the person is signed in and nothing needs asking (single sign-on),
// otherwise the login or consent page, or with prompt=none the error that
// says which of them it would have needed.
func (s *Server) signInOrConsent(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, client *config.Client,
	ar storage.AuthRequest, op oidcParams, fail func(*Error) result, now time.Time) result {
	ctx := r.Context()
	var remembered *storage.Consent
	if sess, c, ok := s.sessionConsent(ctx, r, snap, client.ID, now); ok && !op.reauthenticate(sess, now) {
		ar.Subject, ar.AuthTime, ar.SessionID = sess.Subject, sess.AuthTime, sess.ID
		remembered = c
	}
	if ar.Subject == "" {
		if op.none {
			// prompt=none (Core §3.1.2.1): answer now or fail, never show
			// a page, and store nothing when failing.
			return fail(newError(ErrLoginRequired, "prompt=none, but the user is not signed in (or signed in longer ago than max_age, or as someone other than id_token_hint's subject)"))
		}
		return s.startFlow(w, r, snap, ar, endpoints.LoginPath, http.StatusFound)
	}
	// Signed in already, perhaps for another client: this client's login
	// rules (and the server's, which may have changed) decide now.
	if d := s.subjectDenial(snap, client, ar.Subject); d != nil {
		ar.ID = "" // never stored
		return s.refuseLogin(w, r, snap, client, ar, ar.Subject, d, false)
	}
	need, ask := decideConsent(snap, client, ar, remembered)
	switch {
	case !ask:
		// Single sign-on: the person is known and nothing needs asking,
		// so the code is issued now and the request is never stored.
		ar.ID = ""
		return s.issueCode(w, r, snap, ar, now)
	case op.none && len(need) > 0:
		return fail(newError(ErrConsentRequired, "prompt=none, but the user has not consented to the requested scopes"))
	case op.none:
		// A public client's request is always shown to the person
		// (decideConsent), even with nothing to consent to.
		return fail(newError(ErrInteractionRequired, "prompt=none, but the user must confirm this application's request"))
	}
	return s.startFlow(w, r, snap, ar, endpoints.ConsentPath, http.StatusSeeOther)
}

// authorizeRequest checks the parameters of an authorization request
// whose client and redirect URI are valid, and builds the request to
// store: response type, grant, scopes, PKCE (RFC 7636 §4.4.1) and the
// OpenID Connect parameters.
func authorizeRequest(snap *config.Snapshot, client *config.Client, redirectURI string, q url.Values, now time.Time) (ar storage.AuthRequest, op oidcParams, e *Error) {
	q, e = strictValues(q)
	if e != nil {
		return ar, op, e
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		return ar, op, invalidRequest("response_type is required")
	case rt != "code":
		return ar, op, newError(ErrUnsupportedResponseType, "only response_type=code is supported")
	}
	if !client.GrantTypes[oauthv1.GrantAuthorizationCode] {
		return ar, op, unauthorizedClient("the client is not allowed the authorization_code grant")
	}
	requested, e := parseScope(q.Get("scope"))
	if e != nil {
		return ar, op, e
	}
	scopes, e := grantableScopes(snap, client, requested)
	if e != nil {
		return ar, op, e
	}
	// RFC 8707 §2: the resources the tokens of this grant may be for.
	// The code and its refresh tokens remember them, so no later request
	// can widen them.
	resources, e := parseResources(q["resource"])
	if e != nil {
		return ar, op, e
	}
	targets, e := resolveTargets(snap, client, nil, resources)
	if e != nil {
		return ar, op, e
	}
	if e := checkScopesFitTargets(snap, requested, targets); e != nil {
		return ar, op, e
	}
	scopes = scopesForTargets(snap, scopes, targets)
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return ar, op, invalidRequest("code_challenge_method without code_challenge")
	case challenge == "" && client.RequirePKCE:
		return ar, op, invalidRequest("code_challenge is required: this client must use PKCE with S256 (RFC 7636)")
	case challenge != "" && method != "S256":
		// RFC 7636 §4.4.1; "plain" would let a stolen code be redeemed.
		return ar, op, invalidRequest("code_challenge_method must be S256")
	case challenge != "" && !validChallenge(challenge):
		return ar, op, invalidRequest("code_challenge must be 43 characters of base64url (RFC 7636 §4.2)")
	}

	// Without openid there is no max_age: a zero value would mean
	// max_age=0, and a live session would never be used.
	op = oidcParams{maxAge: -1}
	if isOpenIDRequest(scopes) {
		if op, e = parseOIDCParams(snap, q); e != nil {
			return ar, op, e
		}
	}

	ar = storage.AuthRequest{
		ID: randomToken(32), ClientID: client.ID, RedirectURI: redirectURI, Scopes: scopes, Resources: targets, State: q.Get("state"),
		CodeChallenge: challenge, ExpiresAt: now.Add(authRequestTTL),
		Nonce: op.nonce, LoginHint: op.loginHint, ForceConsent: op.consent, Claims: op.claimsParam,
		UILocales: uiLocales(q),
	}
	if challenge != "" {
		ar.CodeChallengeMethod = method
	}
	return ar, op, nil
}

// startFlow stores the authorization request and sends the browser to the
// page that continues it.
func (s *Server) startFlow(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, ar storage.AuthRequest, page string, status int) result {
	if err := s.store.CreateAuthRequest(r.Context(), ar); err != nil {
		s.authorizationError(w, r, snap, responseTo(ar), s.storageFailed(r.Context(), "storing an authorization request", err))
		return result{outcome: ErrServerError}
	}
	http.Redirect(w, r, pageURL(snap, page, ar.ID), status)
	return result{outcome: outcomeSuccess}
}

// validChallenge: an S256 challenge is a base64url SHA-256, 43 characters.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if b := c[i]; !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// pageURL is the absolute URL of one of the server's pages for a flow.
func pageURL(snap *config.Snapshot, path, authRequest string) string {
	return strings.TrimSuffix(snap.Issuer, "/") + path + "?" + url.Values{"auth_request": {authRequest}}.Encode()
}

// afterLogin continues a flow once the person is known: to the consent
// page if the person must be asked, else straight back with a code.
func (s *Server) afterLogin(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, client *config.Client, ar storage.AuthRequest, now time.Time) result {
	if ar.Device != "" {
		// A device approval always asks (deviceConsent).
		http.Redirect(w, r, pageURL(snap, endpoints.ConsentPath, ar.ID), http.StatusSeeOther)
		return result{outcome: outcomeSuccess}
	}
	_, ask, err := s.consentNeeded(r.Context(), snap, client, ar, now)
	if err != nil {
		s.log.Error("reading consent", "error", err)
		s.authorizationError(w, r, snap, responseTo(ar), serverError("consent could not be read"))
		return result{outcome: ErrServerError}
	}
	if ask {
		http.Redirect(w, r, pageURL(snap, endpoints.ConsentPath, ar.ID), http.StatusSeeOther)
		return result{outcome: outcomeSuccess}
	}
	return s.issueCode(w, r, snap, ar, now)
}

// consentNeeded decides whether the person must see the consent page, and
// which of the requested scopes it lists (see decideConsent), reading the
// remembered consent from storage.
func (s *Server) consentNeeded(ctx context.Context, snap *config.Snapshot, client *config.Client, ar storage.AuthRequest, now time.Time) (need []*config.Scope, ask bool, err error) {
	var remembered *storage.Consent
	c, err := s.store.GetConsent(ctx, ar.Subject, client.ID, now)
	switch {
	case err == nil:
		remembered = &c
	case !errors.Is(err, storage.ErrNotFound):
		return nil, false, err
	}
	need, ask = decideConsent(snap, client, ar, remembered)
	return need, ask, nil
}

// decideConsent decides whether the person must see the consent page, and
// which of the requested scopes it lists: those that require consent.
//
// A confidential client is asked only for what no remembered decision
// covers, and not at all with skipConsent. A public client is always
// asked, whatever it remembers or claims: anyone can send a browser to
// /authorize with its client_id, and for a native app's loopback or
// private-use redirect URI the server cannot tell the real app from an
// impostor, so only the person's approval of this very request keeps
// codes from being issued silently to whoever asked (RFC 6749 §10.2,
// RFC 8252 §8.6). The CRD refuses skipConsent on public clients; this
// holds for objects stored before that rule.
func decideConsent(snap *config.Snapshot, client *config.Client, ar storage.AuthRequest, remembered *storage.Consent) (need []*config.Scope, ask bool) {
	if client.SkipConsent && !client.Public && !ar.ForceConsent {
		return nil, false
	}
	for _, name := range consentScopes(client, ar.Scopes, storedClaims(ar.Claims)) {
		if sc, ok := snap.Scopes[name]; ok && sc.RequiresConsent {
			need = append(need, sc)
		}
	}
	// prompt=consent (Core §3.1.2.1) asks again whatever was remembered.
	if client.Public || ar.ForceConsent {
		return need, true
	}
	if len(need) == 0 {
		return nil, false
	}
	if remembered == nil {
		return need, true
	}
	need = slices.DeleteFunc(need, func(sc *config.Scope) bool { return slices.Contains(remembered.Scopes, sc.Name) })
	return need, len(need) > 0
}

// issueCode ends a flow: it stores a single-use code bound to the client,
// redirect URI, PKCE challenge and person, and sends the browser back with
// code, state and iss (RFC 6749 §4.1.2, RFC 9207).
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, ar storage.AuthRequest, now time.Time) result {
	if sub := storedClaims(ar.Claims).requestedSubject(); sub != "" && sub != ar.Subject {
		// Core §5.5.1: never a code for anyone but the person the
		// request's sub value names.
		e := newError(ErrAccessDenied, "the person who signed in is not the one the claims parameter's sub names")
		s.authorizationError(w, r, snap, responseTo(ar), e)
		return failed(e)
	}
	code := randomToken(32)
	ctx := r.Context()
	err := s.store.CreateCode(ctx, storage.AuthCode{
		Hash: storage.HashToken(code), ClientID: ar.ClientID, RedirectURI: ar.RedirectURI, Scopes: ar.Scopes, Resources: ar.Resources,
		Subject: ar.Subject, AuthTime: ar.AuthTime, CodeChallenge: ar.CodeChallenge,
		CodeChallengeMethod: ar.CodeChallengeMethod, ExpiresAt: now.Add(snap.CodeTTL + ClockSkewLeeway),
		Nonce: ar.Nonce, SessionID: ar.SessionID, Claims: ar.Claims,
	})
	if err != nil {
		s.log.Error("storing authorization code", "error", err)
		s.authorizationError(w, r, snap, responseTo(ar), serverError("the authorization code could not be stored"))
		return result{outcome: ErrServerError}
	}
	// A request answered at once by single sign-on was never stored
	// (its ID is empty).
	if ar.ID != "" {
		if err := s.store.DeleteAuthRequest(ctx, ar.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.log.Warn("deleting finished authorization request", "error", err)
		}
	}
	s.authorizationResponse(w, r, snap, responseTo(ar), url.Values{"code": {code}})
	return result{outcome: outcomeSuccess}
}
