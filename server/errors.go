package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/server/internal/formparse"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 7009 §2.2.1.
const (
	ErrInvalidRequest          = "invalid_request"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrInvalidScope            = "invalid_scope"
	ErrAccessDenied            = "access_denied"
	ErrUnsupportedResponseType = "unsupported_response_type"
	ErrServerError             = "server_error"
	ErrTemporarilyUnavailable  = "temporarily_unavailable"
	ErrUnsupportedTokenType    = "unsupported_token_type"
	// OpenID Connect Core §3.1.2.6, for prompt=none.
	ErrLoginRequired       = "login_required"
	ErrConsentRequired     = "consent_required"
	ErrInteractionRequired = "interaction_required"
	// OpenID Connect Core §3.1.2.6 and RFC 9101 §6.2, for requests
	// passed by value (request) or by reference (request_uri).
	ErrRequestNotSupported    = "request_not_supported"
	ErrRequestURINotSupported = "request_uri_not_supported"
	ErrInvalidRequestObject   = "invalid_request_object"
	ErrInvalidRequestURI      = "invalid_request_uri"
)

// Error is an OAuth 2.0 error response. Handlers return it as a value and
// writeError or authorizationError turns it into the wire format in one
// place.
// Description is shown to client developers: it never carries a secret.
type Error struct {
	Code        string
	Description string
	// Status is the HTTP status of a JSON error response.
	Status int
	// Challenge makes a 401 carry WWW-Authenticate: Basic, required when
	// the client tried HTTP Basic authentication (RFC 6749 §5.2).
	Challenge bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func newError(code, description string) *Error {
	status := http.StatusBadRequest
	switch code {
	case ErrServerError:
		status = http.StatusInternalServerError
	case ErrTemporarilyUnavailable:
		status = http.StatusServiceUnavailable
	}
	return &Error{Code: code, Description: description, Status: status}
}

func invalidRequest(desc string) *Error { return newError(ErrInvalidRequest, desc) }
func invalidGrant(desc string) *Error   { return newError(ErrInvalidGrant, desc) }
func invalidScope(desc string) *Error   { return newError(ErrInvalidScope, desc) }
func serverError(desc string) *Error    { return newError(ErrServerError, desc) }

// invalidClient is a failed client authentication (RFC 6749 §5.2). With
// challenge it is 401 with WWW-Authenticate: Basic, which §5.2 requires
// when the client tried the Authorization header and allows to say which
// scheme to use when it sent no credentials at all. Otherwise (a wrong
// client_secret_post secret, a wrong method) it is the default 400.
func invalidClient(desc string, challenge bool) *Error {
	if challenge {
		return &Error{Code: ErrInvalidClient, Description: desc, Status: http.StatusUnauthorized, Challenge: true}
	}
	return newError(ErrInvalidClient, desc)
}

func unauthorizedClient(desc string) *Error { return newError(ErrUnauthorizedClient, desc) }

// formRefused is a request the form parser refused, as the
// invalid_request it is, with the parser's status (405, 413 or 400).
func formRefused(e *formparse.Error) *Error {
	return &Error{Code: ErrInvalidRequest, Description: e.Description, Status: e.Status}
}

// parsePostForm reads a strict form POST body (package form).
func parsePostForm(w http.ResponseWriter, r *http.Request) (url.Values, *Error) {
	v, e := formparse.ParsePost(w, r)
	if e != nil {
		return nil, formRefused(e)
	}
	return v, nil
}

// strictValues applies the form rules to parameters parsed elsewhere (a
// query string).
func strictValues(v url.Values) (url.Values, *Error) {
	v, e := formparse.Strict(v)
	if e != nil {
		return nil, formRefused(e)
	}
	return v, nil
}

// storageUnavailable is what a client is told when storage fails: a
// driver's message can name hosts, tables or values, and RFC 6749 §5.2's
// error_description is for client developers, not operators.
const storageUnavailable = "the server could not complete the request; try again later"

// storageFailed is the one policy for a storage error on a request path:
// the cause goes to the log with what was being done, and the client gets
// a generic server_error. Callers return the Error and log nothing more.
// A store that cannot be reached or cannot serve in time
// (storage.ErrUnavailable: a restart, a failover, a stalled network) is
// 503 temporarily_unavailable with Retry-After, which clients retry;
// anything else is 500 server_error.
func (s *Server) storageFailed(ctx context.Context, op string, err error) *Error {
	s.logStorageFailure(ctx, op, err)
	if storageUnreachable(err) {
		return newError(ErrTemporarilyUnavailable, storageUnavailable)
	}
	return serverError(storageUnavailable)
}

// storageUnreachable: the store could not be reached or did not answer in
// time, so the same request may succeed a moment later.
func storageUnreachable(err error) bool {
	return errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// storagePageStatus is the status of a page that reports a storage
// failure to a person (503 with Retry-After while the store is
// unreachable, otherwise 500), and the outcome for metrics.
func storagePageStatus(w http.ResponseWriter, err error) (int, string) {
	if storageUnreachable(err) {
		w.Header().Set("Retry-After", retryAfterUnavailable)
		return http.StatusServiceUnavailable, ErrTemporarilyUnavailable
	}
	return http.StatusInternalServerError, ErrServerError
}

// retryAfterUnavailable is the Retry-After of a 503 that names no better
// time: a store failing over or a server shedding load is worth asking
// again within seconds.
const retryAfterUnavailable = "1"

// logStorageFailure is storageFailed's log line alone, for the pages that
// answer a person with a page of their own rather than an OAuth error.
func (s *Server) logStorageFailure(ctx context.Context, op string, err error) {
	attrs := []any{"op", op, "error", err}
	if ri := infoFrom(ctx); ri != nil {
		attrs = append(attrs, "endpoint", ri.endpoint)
	}
	s.log.ErrorContext(ctx, "storage failed", attrs...)
}

// Header values built once and assigned to a response's header map
// directly: Header.Set canonicalises the name and allocates a slice each
// time. The slices are capped at their length, so that an Add elsewhere
// appends to a copy, never to these.
var (
	noStoreValue  = []string{"no-store"}[:1:1]
	noCacheValue  = []string{"no-cache"}[:1:1]
	jsonTypeValue = []string{"application/json"}[:1:1]
)

// noStore marks a response as carrying credentials (RFC 6749 §5.1).
func noStore(h http.Header) {
	h["Cache-Control"] = noStoreValue
	h["Pragma"] = noCacheValue
}

// writeError writes an RFC 6749 §5.2 JSON error response.
func writeError(w http.ResponseWriter, e *Error, realm string) {
	h := w.Header()
	noStore(h)
	h.Set("Content-Type", "application/json")
	if e.Challenge {
		h.Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
	}
	if e.Status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", retryAfterUnavailable)
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
}

// writeJSON writes a successful JSON response that must not be cached.
func writeJSON(w http.ResponseWriter, v any) {
	noStore(w.Header())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeTokenResponse writes an RFC 6749 §5.1 response.
func writeTokenResponse(w http.ResponseWriter, resp *tokenResponse) {
	h := w.Header()
	noStore(h)
	h["Content-Type"] = jsonTypeValue
	// The tokens and the scope, and room for the names and punctuation.
	size := len(resp.AccessToken) + len(resp.RefreshToken) + len(resp.IDToken) + len(resp.Scope) + 128
	_, _ = w.Write(resp.appendJSON(make([]byte, 0, size)))
}

// redirectURL adds params to a registered redirect URI, keeping its own
// query (RFC 6749 §3.1.2).
func redirectURL(redirectURI string, params url.Values) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		// Registered URIs are validated by the CRD; this cannot happen.
		return redirectURI
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Set(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// redirectStatus is 303 for the answer to a POST, so that the browser
// follows with a GET and never re-posts the form, password included, to
// the client (RFC 9700 §4.12: 307 would); 302 otherwise.
func redirectStatus(r *http.Request) int {
	if r.Method == http.MethodPost {
		return http.StatusSeeOther
	}
	return http.StatusFound
}
