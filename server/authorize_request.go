package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/formparse"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// requestURIPrefix starts the request_uri of a pushed authorization
// request (RFC 9126 §2.2); what follows is a random value whose hash the
// store keeps.
const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// heldRequestTTL is how long a POST to /authorize is kept for the
// browser's GET that follows it at once.
const heldRequestTTL = time.Minute

// requestObjectMaxExpiresIn bounds a request object's exp: it is made for
// one request, and one that leaked may be replayed until it expires.
const requestObjectMaxExpiresIn = time.Hour

// authorizeInput is an authorization request's parameters, once a request
// passed by reference (request_uri) or by value (request) is resolved.
type authorizeInput struct {
	params url.Values
	// pushed: the parameters came from the client's authenticated push to
	// /par (RFC 9126), not through the browser.
	pushed bool
}

// authorizeParams reads the parameters of a GET's query or a POST's body
// (OpenID Connect Core §3.1.2.1: both must be supported), the POST form
// as strictly as the token endpoint's. When it returns false it has
// written an error page.
func (s *Server) authorizeParams(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) (url.Values, result, bool) {
	switch r.Method {
	case http.MethodGet:
		return r.URL.Query(), result{}, true
	case http.MethodPost:
		if r.URL.RawQuery != "" {
			// Two sets of parameters would leave it to us to pick one.
			s.errorPage(w, r, snap, http.StatusBadRequest, "Invalid request", "A POST to the authorization endpoint carries its parameters in the body, not in the URL.")
			return nil, result{outcome: ErrInvalidRequest}, false
		}
		form, e := parsePostForm(w, r)
		if e != nil {
			s.errorPage(w, r, snap, e.Status, "Invalid request", e.Description)
			return nil, failed(e), false
		}
		return form, result{}, true
	}
	w.Header().Set("Allow", "GET, POST")
	s.errorPage(w, r, snap, http.StatusMethodNotAllowed, "Request not allowed", "The authorization endpoint accepts GET and POST requests only.")
	return nil, result{outcome: "method_not_allowed"}, false
}

// resolveRequest turns a request passed by reference or by value into its
// parameters; a plain request is its own. Refusals go back to the
// client's redirect URI when the outer request names one it registered,
// otherwise to an error page, as for every request whose redirect URI is
// not yet known to be the client's.
//
//   - request_uri of a pushed request (RFC 9126 §4): the pushed
//     parameters, and only those, once; the client_id must be the one that
//     pushed them. An unknown, used or expired one is an error page: its
//     redirect URI is in the request that is gone.
//   - any other request_uri: request_uri_not_supported. Fetching a URL
//     the request names would make the server call out on a request path.
//   - request (RFC 9101, OpenID Connect Core §6.1): a JWT signed with one
//     of the client's registered keys (spec.authentication.privateKeyJWT);
//     its parameters, and only those, as RFC 9101 §5 says.
func (s *Server) resolveRequest(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, client *config.Client, q url.Values, now time.Time) (authorizeInput, result, bool) {
	requestURI, object := q.Get("request_uri"), q.Get("request")
	refuse := func(e *Error) (authorizeInput, result, bool) {
		ru := q.Get("redirect_uri")
		if ru == "" || len(q["redirect_uri"]) > 1 || !client.HasRedirectURI(ru) {
			s.errorPage(w, r, snap, http.StatusBadRequest, "Invalid request", "The application's request could not be used: %s.", e.Description)
			return authorizeInput{}, failed(e), false
		}
		mode, _ := parseResponseMode(q.Get("response_mode"), ru)
		s.authorizationError(w, r, snap, responseTarget{redirectURI: ru, state: q.Get("state"), mode: mode}, e)
		return authorizeInput{}, failed(e), false
	}
	switch {
	case requestURI != "" && object != "":
		return refuse(invalidRequest("request and request_uri cannot be sent together"))
	case requestURI != "":
		value, ok := strings.CutPrefix(requestURI, requestURIPrefix)
		if !ok {
			return refuse(newError(ErrRequestURINotSupported, "request_uri is supported only for pushed authorization requests (RFC 9126, "+requestURIPrefix+"...); this server never fetches a request object from a URL"))
		}
		return s.pushedRequest(w, r, snap, client, value, now)
	case object != "":
		params, e := requestObjectParams(snap, client, object, now)
		if e != nil {
			return refuse(e)
		}
		return authorizeInput{params: params}, result{}, true
	}
	return authorizeInput{params: q}, result{}, true
}

// pushedRequest consumes the pushed (or held) request whose request_uri
// ends in value.
func (s *Server) pushedRequest(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, client *config.Client, value string, now time.Time) (authorizeInput, result, bool) {
	page := func(msg string) (authorizeInput, result, bool) {
		s.errorPage(w, r, snap, http.StatusBadRequest, "Sign-in expired", msg)
		return authorizeInput{}, result{outcome: ErrInvalidRequestURI}, false
	}
	p, err := s.store.ConsumePushedRequest(r.Context(), storage.HashToken(value), now)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return page("This sign-in request has expired or was already used. Go back to the application and start again.")
	case err != nil:
		e := s.storageFailed(r.Context(), "reading a pushed authorization request", err)
		s.errorPage(w, r, snap, http.StatusInternalServerError, "Something went wrong", "The sign-in request could not be read. Try again later.")
		return authorizeInput{}, failed(e), false
	case p.ClientID != client.ID:
		return page("This sign-in request was made by another application. Go back to the application and start again.")
	}
	params, fe := formparse.Parse(p.Params)
	if fe != nil {
		// Stored by this server after the same checks; a bad one means
		// a corrupt store.
		return page("This sign-in request cannot be read. Go back to the application and start again.")
	}
	return authorizeInput{params: params, pushed: p.Pushed}, result{}, true
}

// requestObjectParams verifies a request object (RFC 9101 §4) and returns
// its parameters. It must be signed (never alg none) by a key the client
// registered, with iss the client_id, aud the issuer, and an exp at most
// requestObjectMaxExpiresIn away; it may not name another client or carry
// a request or request_uri of its own.
func requestObjectParams(snap *config.Snapshot, client *config.Client, object string, now time.Time) (url.Values, *Error) {
	if client.Assertion == nil || client.Assertion.Keys == nil {
		return nil, newError(ErrRequestNotSupported, "request objects are accepted only from clients whose keys are registered (spec.authentication.privateKeyJWT), to verify their signature; send the parameters themselves instead")
	}
	if u, err := jwtverify.Peek(object); err == nil && strings.EqualFold(u.Alg, "none") {
		return nil, newError(ErrInvalidRequestObject, "the request object must be signed (ES256, RS256 or EdDSA); alg none is not accepted")
	}
	claims, err := jwtverify.Verify(object, client.Assertion.Keys, &jwtverify.Policy{
		Issuer: client.ID, Audiences: []string{snap.Issuer}, MaxExpiresIn: requestObjectMaxExpiresIn,
	}, now)
	if err != nil {
		return nil, newError(ErrInvalidRequestObject, "the request object is refused ("+string(jwtverify.ReasonOf(err))+
			"): it must be signed with a key of the client, with iss the client_id, aud the issuer and exp at most "+requestObjectMaxExpiresIn.String()+" away")
	}
	params, e := requestObjectValues(claims.Payload())
	if e != nil {
		return nil, e
	}
	switch {
	case params.Get("client_id") != "" && params.Get("client_id") != client.ID:
		return nil, newError(ErrInvalidRequestObject, "client_id in the request object is not the request's client_id")
	case params.Has("request") || params.Has("request_uri"):
		return nil, newError(ErrInvalidRequestObject, "a request object cannot contain request or request_uri (RFC 9101 §4)")
	}
	params.Set("client_id", client.ID)
	return params, nil
}

// jwtOnlyClaims are a request object's claims that are about the JWT, not
// parameters of the request.
var jwtOnlyClaims = map[string]bool{"iss": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true, "sub": true}

// requestObjectValues turns a request object's claims into parameters:
// strings as they are, numbers and booleans as written, an array of
// strings as a repeated parameter (resource), an object as its JSON
// (claims).
func requestObjectValues(payload []byte) (url.Values, *Error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, newError(ErrInvalidRequestObject, "the request object's payload is not a JSON object")
	}
	params := url.Values{}
	for k, v := range raw {
		v = bytes.TrimSpace(v)
		if jwtOnlyClaims[k] || len(v) == 0 || bytes.Equal(v, []byte("null")) {
			continue
		}
		switch v[0] {
		case '"':
			var str string
			if json.Unmarshal(v, &str) != nil {
				return nil, newError(ErrInvalidRequestObject, "the request object's "+formparse.SafeName(k)+" is not a string")
			}
			params.Add(k, str)
		case '[':
			var list []string
			if json.Unmarshal(v, &list) != nil {
				return nil, newError(ErrInvalidRequestObject, "the request object's "+formparse.SafeName(k)+" is not a list of strings")
			}
			for _, item := range list {
				params.Add(k, item)
			}
		case '{':
			var compact bytes.Buffer
			if json.Compact(&compact, v) != nil {
				return nil, newError(ErrInvalidRequestObject, "the request object's "+formparse.SafeName(k)+" is not valid JSON")
			}
			params.Add(k, compact.String())
		default:
			params.Add(k, string(v))
		}
	}
	v, e := strictValues(params)
	if e != nil {
		return nil, newError(ErrInvalidRequestObject, "the request object's parameters are invalid: "+e.Description)
	}
	return v, nil
}

// holdPost keeps a POSTed authorization request, already checked, and
// sends the browser to the GET that continues it (303, so the form is not
// posted again). The person's session cookie is SameSite=Lax, so a
// browser leaves it off a POST that another site's page sends, and the
// request would not see who is signed in: no single sign-on, and
// prompt=none would always fail. The GET carries the cookie, and the held
// parameters replace the query as a pushed request's do.
func (s *Server) holdPost(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, client *config.Client, in authorizeInput, to responseTarget, now time.Time) result {
	value := randomToken(32)
	err := s.store.CreatePushedRequest(r.Context(), storage.PushedRequest{
		Hash: storage.HashToken(value), ClientID: client.ID, Params: in.params.Encode(), Pushed: in.pushed, ExpiresAt: now.Add(heldRequestTTL),
	})
	if err != nil {
		e := s.storageFailed(r.Context(), "holding a POSTed authorization request", err)
		s.authorizationError(w, r, snap, to, e)
		return failed(e)
	}
	target := strings.TrimSuffix(snap.Issuer, "/") + endpoints.AuthorizePath + "?" +
		url.Values{"client_id": {client.ID}, "request_uri": {requestURIPrefix + value}}.Encode()
	http.Redirect(w, r, target, http.StatusSeeOther)
	return result{outcome: outcomeSuccess}
}
