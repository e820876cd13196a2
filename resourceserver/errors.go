package resourceserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Reasons a token is refused. Validate wraps one of them, so callers can
// tell them apart with errors.Is; the wrapping message is safe to show to
// the client (it never echoes token contents).
var (
	// ErrMalformed: the token is not a compact JWS (RFC 7515 §7.1) this
	// package can read, or its header lacks kid or carries crit.
	ErrMalformed = errors.New("malformed access token")
	// ErrTokenType: the typ header is not at+jwt (RFC 9068 §4, step 1).
	ErrTokenType = errors.New("not an access token")
	// ErrAlgorithm: the alg header is not on the allow-list, or it is not
	// the algorithm of the key the kid names.
	ErrAlgorithm = errors.New("signing algorithm not accepted")
	// ErrUnknownKey: no key in the issuer's JWKS has the token's kid, even
	// after a refetch.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("invalid signature")
	// ErrIssuer: iss is not exactly the configured issuer.
	ErrIssuer = errors.New("wrong issuer")
	// ErrAudience: aud does not contain the configured audience.
	ErrAudience = errors.New("wrong audience")
	// ErrExpired: exp has passed, beyond the leeway.
	ErrExpired = errors.New("the access token expired")
	// ErrNotYetValid: nbf or iat lies in the future, beyond the leeway.
	ErrNotYetValid = errors.New("the access token is not valid yet")
	// ErrMissingClaim: a claim RFC 9068 §2.2 requires is absent.
	ErrMissingClaim = errors.New("required claim missing")
	// ErrKeysUnavailable: the issuer's keys could not be fetched, so the
	// token could not be checked at all. This is the server's problem, not
	// the client's: the middleware answers 503, not 401.
	ErrKeysUnavailable = errors.New("signing keys unavailable")
)

// Error codes of RFC 6750 §3.1.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// Error is a refusal as the middleware sends it (RFC 6750 §3): the HTTP
// status, the error code for WWW-Authenticate (empty when the request
// carried no token at all, §3.1) and a description. Err is the cause.
type Error struct {
	Status      int
	Code        string
	Description string
	// Scope lists the scopes the resource needs, sent with
	// insufficient_scope.
	Scope []string
	// ResourceMetadata is the URL of the resource's RFC 9728 metadata,
	// sent as resource_metadata in the challenge (§5.1) so that a client
	// can find out how to get a token. Validator sets it when it has
	// Config.Metadata.
	ResourceMetadata string
	Err              error
}

func (e *Error) Error() string {
	if e.Code == "" {
		return e.Description
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Err }

// errorFor maps a Validate error to the answer RFC 6750 §3.1 prescribes.
func errorFor(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, ErrKeysUnavailable) {
		return &Error{Status: http.StatusServiceUnavailable, Description: "the token cannot be checked right now", Err: err}
	}
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: err.Error(), Err: err}
}

// challenge builds the WWW-Authenticate value of RFC 6750 §3.
func (e *Error) challenge(realm string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="`)
	b.WriteString(quotable(realm))
	b.WriteByte('"')
	if e.Code != "" {
		b.WriteString(`, error="`)
		b.WriteString(e.Code)
		b.WriteByte('"')
		if e.Description != "" {
			b.WriteString(`, error_description="`)
			b.WriteString(quotable(e.Description))
			b.WriteByte('"')
		}
	}
	if len(e.Scope) > 0 {
		b.WriteString(`, scope="`)
		b.WriteString(quotable(strings.Join(e.Scope, " ")))
		b.WriteByte('"')
	}
	if e.ResourceMetadata != "" {
		b.WriteString(`, resource_metadata="`)
		b.WriteString(quotable(e.ResourceMetadata))
		b.WriteByte('"')
	}
	return b.String()
}

// quotable keeps only the characters RFC 6750 §3 allows inside the quoted
// attribute values (%x20-21 / %x23-5B / %x5D-7E): no quote, no backslash,
// no control or non-ASCII characters, so a value can never break out of
// its quotes.
func quotable(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !allowedInQuotes(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if allowedInQuotes(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

func allowedInQuotes(c byte) bool {
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'
}

// WriteError sends a refusal: status, WWW-Authenticate (except for 503,
// which is not a Bearer challenge), Cache-Control: no-store and a small
// JSON body with the same code and description for humans and scripts.
func WriteError(w http.ResponseWriter, realm string, e *Error) {
	h := w.Header()
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	} else {
		h.Set("WWW-Authenticate", e.challenge(realm))
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	code := e.Code
	switch {
	case code == "" && e.Status == http.StatusServiceUnavailable:
		code = "temporarily_unavailable"
	case code == "":
		code = "unauthorized"
	}
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
		Scope       string `json:"scope,omitempty"`
	}{code, e.Description, strings.Join(e.Scope, " ")}
	_ = json.NewEncoder(w).Encode(body)
}
