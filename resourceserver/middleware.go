package resourceserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

type claimsKey struct{}

// NewContext returns ctx carrying claims, as the middleware passes them to
// the next handler. Handy for testing handlers without tokens.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the claims of the token Require accepted for this
// request.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// Require returns middleware that lets a request through only with a
// valid access token granted every one of scopes, and puts its claims in
// the request context (ClaimsFrom). Other requests get the RFC 6750 §3
// answer: 400 invalid_request, 401 (invalid_token, or a bare challenge if
// no token was sent), 403 insufficient_scope; 503 if the issuer's keys
// cannot be had. Require panics if a scope is not a valid RFC 6749 §3.3
// scope token, as that is a programming error.
func (v *Validator) Require(scopes ...string) func(http.Handler) http.Handler {
	for _, s := range scopes {
		if !validScopeToken(s) {
			panic(fmt.Sprintf("resourceserver: Require(%q): not a valid scope token (RFC 6749 §3.3)", s))
		}
	}
	v.meta.require(scopes)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			claims, err := v.ValidateRequest(r)
			if err == nil {
				err = checkScopes(claims, scopes)
			}
			if err != nil {
				e := v.withMetadata(errorFor(err))
				if v.onReject != nil {
					v.onReject(r, e)
				}
				WriteError(w, v.realm, e)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), claims)))
		})
	}
}

// ValidateRequest finds the bearer token in r and validates it, for
// callers who write their own middleware. Errors are *Error values ready
// for WriteError.
func (v *Validator) ValidateRequest(r *http.Request) (*Claims, error) {
	token, e := bearerToken(r)
	if e != nil {
		return nil, v.withMetadata(e)
	}
	claims, err := v.Validate(r.Context(), token)
	if err != nil {
		return nil, v.withMetadata(errorFor(err))
	}
	return claims, nil
}

// withMetadata points a refusal at the resource's metadata, if it has any.
func (v *Validator) withMetadata(e *Error) *Error {
	if v.meta != nil && e.ResourceMetadata == "" {
		e.ResourceMetadata = v.meta.url
	}
	return e
}

func checkScopes(c *Claims, required []string) error {
	var missing []string
	for _, s := range required {
		if !c.HasScope(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &Error{
		Status:      http.StatusForbidden,
		Code:        CodeInsufficientScope,
		Description: "the access token lacks scope " + strings.Join(missing, " "),
		Scope:       required,
	}
}

// bearerToken extracts the token of RFC 6750 §2.1. Tokens are accepted
// only in the Authorization header: §2.3 (URI query) is refused because
// URIs end up in logs, and §2.2 (form body) is not read, since that would
// mean consuming the body of unauthenticated requests.
func bearerToken(r *http.Request) (string, *Error) {
	values := r.Header.Values("Authorization")
	inQuery := r.URL.RawQuery != "" && r.URL.Query().Has("access_token")
	switch {
	case len(values) > 1:
		return "", badRequest("the request has more than one Authorization header")
	case len(values) == 1 && inQuery:
		return "", badRequest("the request carries an access token in more than one place")
	case inQuery:
		return "", badRequest("access tokens in the URI are not accepted; send an Authorization: Bearer header")
	case len(values) == 0:
		return "", noToken()
	}
	scheme, token, found := strings.Cut(values[0], " ")
	// RFC 7235 §2.1: the scheme is case-insensitive. Another scheme means
	// no bearer token was sent, which §3.1 answers without an error code.
	if !strings.EqualFold(scheme, "Bearer") {
		return "", noToken()
	}
	token = strings.TrimLeft(token, " ")
	if !found || token == "" {
		return "", badRequest("the Authorization header has no bearer token")
	}
	if !validB64Token(token) {
		return "", badRequest("the bearer token has characters RFC 6750 section 2.1 does not allow")
	}
	return token, nil
}

func noToken() *Error {
	return &Error{Status: http.StatusUnauthorized, Description: "an access token is required"}
}

func badRequest(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc}
}

// validB64Token matches RFC 6750 §2.1's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func validB64Token(s string) bool {
	end := len(strings.TrimRight(s, "="))
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// validScopeToken matches RFC 6749 §3.3's
// scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
