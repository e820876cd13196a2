package server

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// clientCredentials is what a request presented to authenticate a client
// (RFC 6749 §2.3).
type clientCredentials struct {
	ID     string
	Secret string
	// Assertion is a JWT client assertion (RFC 7523 §2.2).
	Assertion string
	// Method is how the credentials came: client_secret_basic (the
	// Authorization header), client_secret_post (the body), none (a
	// client_id alone) or methodClientAssertion.
	Method oauthv1.TokenEndpointAuthMethod
}

// methodClientAssertion labels credentials that came as a JWT client
// assertion: a client whose method is private_key_jwt or federated_jwt
// presents them (clientassertion.go says which kind of JWT each expects).
const methodClientAssertion oauthv1.TokenEndpointAuthMethod = "client_assertion"

// usesAssertion reports whether a client's method is a JWT client
// assertion.
func usesAssertion(m oauthv1.TokenEndpointAuthMethod) bool {
	return m == oauthv1.AuthPrivateKeyJWT || m == oauthv1.AuthFederatedJWT
}

// readClientCredentials extracts client credentials from the Authorization
// header or the form. Using two methods at once is invalid_request
// (RFC 6749 §2.3).
func readClientCredentials(authorization string, form url.Values) (clientCredentials, *Error) {
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		return readClientAssertion(authorization, form)
	}
	if authorization != "" {
		scheme, payload, _ := strings.Cut(authorization, " ")
		if !strings.EqualFold(scheme, "Basic") {
			return clientCredentials{}, invalidClient("only HTTP Basic client authentication is supported in the Authorization header", true)
		}
		id, secret, err := decodeBasic(strings.TrimSpace(payload))
		if err != nil {
			return clientCredentials{}, invalidClient("the Authorization header is malformed: "+err.Error(), true)
		}
		if formSecret != "" {
			return clientCredentials{}, invalidRequest("client credentials were sent both in the Authorization header and in the body")
		}
		if formID != "" && formID != id {
			return clientCredentials{}, invalidRequest("client_id in the body differs from the Authorization header")
		}
		return clientCredentials{ID: id, Secret: secret, Method: oauthv1.AuthClientSecretBasic}, nil
	}
	if formID == "" {
		return clientCredentials{}, invalidClient("client authentication is required", true)
	}
	if formSecret != "" {
		return clientCredentials{ID: formID, Secret: formSecret, Method: oauthv1.AuthClientSecretPost}, nil
	}
	return clientCredentials{ID: formID, Method: oauthv1.AuthNone}, nil
}

type basicError string

func (e basicError) Error() string { return string(e) }

// decodeBasic decodes RFC 7617 credentials whose parts are, per RFC 6749
// §2.3.1, application/x-www-form-urlencoded before base64: a secret with
// ':' or '+' arrives escaped, and a literal '+' means a space.
func decodeBasic(payload string) (id, secret string, err error) {
	raw, derr := decodeBase64(payload)
	if derr != nil {
		return "", "", basicError("credentials are not base64")
	}
	rawID, rawSecret, ok := strings.Cut(raw, ":")
	if !ok {
		return "", "", basicError("credentials have no ':' separator")
	}
	if id, derr = url.QueryUnescape(rawID); derr != nil {
		return "", "", basicError("client_id is not form-urlencoded")
	}
	if secret, derr = url.QueryUnescape(rawSecret); derr != nil {
		return "", "", basicError("client secret is not form-urlencoded")
	}
	if id == "" {
		return "", "", basicError("client_id is empty")
	}
	return id, secret, nil
}

// decodeBase64 decodes standard base64 in stack buffers when it is short,
// as credentials are: one allocation (the string) instead of three.
func decodeBase64(s string) (string, error) {
	var in, out [256]byte
	if len(s) > len(in) {
		b, err := base64.StdEncoding.DecodeString(s)
		return string(b), err
	}
	n, err := base64.StdEncoding.Decode(out[:], in[:copy(in[:], s)])
	return string(out[:n]), err
}

// readClientAssertion reads a JWT client assertion (RFC 7521 §4.2, RFC
// 7523 §2.2). It is the client's only credential: with HTTP Basic or a
// client_secret as well it is invalid_request (RFC 6749 §2.3). client_id
// is optional (RFC 7521 §4.2): without it, the client is the assertion's
// sub, as a private_key_jwt assertion's sub is the client_id; the
// signature is checked against that client's keys, so an unverified sub
// only chooses which keys must verify it.
func readClientAssertion(authorization string, form url.Values) (clientCredentials, *Error) {
	typ, assertion := form.Get("client_assertion_type"), form.Get("client_assertion")
	switch {
	case authorization != "":
		return clientCredentials{}, invalidRequest("client credentials were sent both in the Authorization header and as a client_assertion")
	case form.Has("client_secret"):
		return clientCredentials{}, invalidRequest("client credentials were sent both as client_secret and as a client_assertion")
	case typ == "":
		return clientCredentials{}, invalidRequest("client_assertion_type is required with client_assertion")
	case assertion == "":
		return clientCredentials{}, invalidRequest("client_assertion is required with client_assertion_type")
	case typ != oauthv1.ClientAssertionTypeJWTBearer:
		return clientCredentials{}, invalidClient("client_assertion_type must be "+oauthv1.ClientAssertionTypeJWTBearer, false)
	}
	cred := clientCredentials{ID: form.Get("client_id"), Assertion: assertion, Method: methodClientAssertion}
	if cred.ID == "" {
		u, err := jwtverify.Peek(assertion)
		if err != nil || u.Subject == "" {
			return clientCredentials{}, invalidClient("client_assertion is not a JWT naming its client; send client_id", false)
		}
		cred.ID = u.Subject
	}
	return cred, nil
}

// assertionCheck verifies a client assertion for the client it names: the
// reason for the security log when it is refused, and the error to answer
// with (invalid_client, or server_error when the store fails).
type assertionCheck func(c *config.Client, assertion string) (reason string, e *Error)

// checkClient checks credentials against the snapshot; a client assertion
// is verified by assert (nil refuses every assertion). Every refusal is
// the same invalid_client, so that a caller cannot tell an unknown
// client_id from a wrong secret, method or assertion; the reason it also
// returns is for the security log only.
func checkClient(snap *config.Snapshot, cred clientCredentials, now time.Time, assert assertionCheck) (*config.Client, string, *Error) {
	c := snap.Clients.Get(cred.ID)
	reason := ""
	switch {
	case c == nil:
		reason = "unknown_client"
	case cred.Method == methodClientAssertion && !usesAssertion(c.AuthMethod),
		cred.Method != methodClientAssertion && !c.AcceptsAuthMethod(cred.Method):
		// A pinned method is enforced; a client that pinned none may
		// send its secret either way (OAuthClient.AuthMethods).
		reason = "wrong_method"
	case cred.Method == methodClientAssertion:
		if assert == nil {
			reason = "assertion_not_checkable"
			break
		}
		var e *Error
		if reason, e = assert(c, cred.Assertion); e != nil {
			return nil, reason, e
		}
		return c, "", nil
	case cred.Method == oauthv1.AuthNone:
		return c, "", nil
	case !secretMatches(c, cred.Secret, now):
		reason = "wrong_secret"
	default:
		return c, "", nil
	}
	return nil, reason, invalidClient("client authentication failed", cred.Method == oauthv1.AuthClientSecretBasic)
}

// secretMatches reports whether secret matches a hash that has not expired.
// It checks every hash, so the time taken does not reveal which matched.
func secretMatches(c *config.Client, secret string, now time.Time) bool {
	if secret == "" {
		return false
	}
	matched := false
	for _, h := range c.SecretHashes {
		if !h.NotAfter.IsZero() && !now.Before(h.NotAfter) {
			continue
		}
		if clientsecret.Matches(secret, h.Hash) {
			matched = true
		}
	}
	return matched
}

// clientAuthFromRequest reads and checks a request's client credentials.
// Refusing credentials that were presented is a security event: a run of
// them is someone guessing secrets, or a client left with a revoked one. A
// request that presents none is merely invalid.
func (s *Server) clientAuthFromRequest(r *http.Request, snap *config.Snapshot, form url.Values, now time.Time) (*config.Client, *Error) {
	authorization := r.Header.Get("Authorization")
	cred, e := readClientCredentials(authorization, form)
	reason := "malformed_credentials"
	var c *config.Client
	var detail string
	if e == nil {
		var assert assertionCheck
		if cred.Method == methodClientAssertion {
			assert = func(c *config.Client, assertion string) (string, *Error) {
				reason, d, ae := s.checkAssertion(r.Context(), snap, c, assertion, now)
				detail = d
				return reason, ae
			}
		}
		c, reason, e = checkClient(snap, cred, now, assert)
	}
	infoFrom(r.Context()).auditClientAuth(cred.ID)
	presented := authorization != "" || form.Get("client_id") != "" || form.Get("client_assertion") != ""
	if e != nil && e.Code == ErrInvalidClient && presented {
		attrs := []slog.Attr{slog.String("reason", reason)}
		if cred.ID != "" {
			attrs = append(attrs, slog.String("client_id", loggable(cred.ID)), slog.String("auth_method", string(cred.Method)))
		}
		if detail != "" {
			attrs = append(attrs, slog.String("detail", loggable(detail)))
		}
		event := EventClientAuthFailed
		if reason == reasonAssertionReplay {
			event = EventClientAssertionReplay
		}
		infoFrom(r.Context()).securityEvent(r.Context(), event, attrs...)
	}
	return c, e
}

// authenticatedForm is the opening the token, introspection and revocation
// endpoints share: a strict POST form (RFC 6749 §3.2) and the client's
// authentication (§2.3). The form comes back even when authentication
// fails, so that the token endpoint can label the attempt with its grant.
func (s *Server) authenticatedForm(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, now time.Time) (url.Values, *config.Client, *Error) {
	form, e := parsePostForm(w, r)
	if e != nil {
		return nil, nil, e
	}
	client, e := s.clientAuthFromRequest(r, snap, form, now)
	return form, client, e
}
