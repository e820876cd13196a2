package server

import (
	"errors"
	"net/http"
	"strings"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/jsonappend"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// introspection is the RFC 7662 §2.2 response.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	// Act is a token exchange's act claim (RFC 8693 §4.1 allows it in
	// introspection responses): a resource server learns who acted.
	Act *actor `json:"act,omitempty"`
}

// handleIntrospect is token introspection (RFC 7662). Callers must be
// confidential clients (resource servers register as such): a token's
// contents are not for anyone who can name a client_id. Any such client may
// introspect access tokens, which are bearer tokens meant for resource
// servers; a refresh token is active only to the client it was issued to.
// Tokens of a person no identity source lists any more are inactive.
// Everything else, including revoked and expired tokens, is
// {"active": false} (§2.2).
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	now := s.now()
	fail := func(e *Error) result { writeError(w, e, snap.Issuer); return failed(e) }
	form, client, e := s.authenticatedForm(w, r, snap, now)
	if e != nil {
		return fail(e)
	}
	if client.AuthMethod == oauthv1.AuthNone {
		return fail(invalidClient("introspection requires a confidential client", false))
	}
	token := form.Get("token")
	if token == "" {
		return fail(invalidRequest("token is required"))
	}
	ctx := r.Context()
	resp := introspection{}
	if claims, ok := s.verifiedAccessToken(snap, token); ok {
		// auth_time marks a token issued for a person (not a client's own):
		// once the person is removed, it is inactive to resource servers
		// that ask. An unreadable users Secret removes nobody.
		removed := claims.AuthTime != 0 && snap.Subject(claims.Subject) == config.SubjectRemoved
		if claims.ExpiresAt.After(now) && !removed {
			revoked, err := s.store.IsAccessTokenRevoked(ctx, claims.ID, claims.GrantID, now)
			if err != nil {
				return fail(s.storageFailed(ctx, "checking an access token's revocation", err))
			}
			if !revoked {
				resp = introspection{
					Active: true, Scope: claims.Scope, ClientID: claims.ClientID, TokenType: "Bearer",
					Exp: unixTime(claims.ExpiresAt.Time), Sub: claims.Subject, Aud: claims.Audience,
					Iss: claims.Issuer, JTI: claims.ID, Act: claims.Act,
				}
				if claims.IssuedAt != nil {
					resp.Iat = unixTime(claims.IssuedAt.Time)
				}
			}
		}
	} else if !strings.Contains(token, ".") {
		rt, err := s.store.GetRefreshToken(ctx, storage.HashToken(token), now)
		switch {
		case err == nil:
			if rt.ClientID == client.ID && rt.RotatedAt == nil && snap.Subject(rt.Subject) != config.SubjectRemoved {
				resp = introspection{
					Active: true, Scope: strings.Join(rt.Scopes, " "), ClientID: rt.ClientID, TokenType: "refresh_token",
					Exp: unixTime(rt.ExpiresAt), Iat: unixTime(rt.IssuedAt), Sub: rt.Subject, Iss: snap.Issuer,
				}
			}
		case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrRevoked):
		default:
			return fail(s.storageFailed(ctx, "reading a refresh token", err))
		}
	}
	h := w.Header()
	noStore(h)
	h["Content-Type"] = jsonTypeValue
	_, _ = w.Write(resp.appendJSON(make([]byte, 0, 512)))
	return result{outcome: outcomeSuccess}
}

// appendJSON writes the response as encoding/json would, by hand: a
// resource server may introspect every request it serves.
func (in *introspection) appendJSON(b []byte) []byte {
	if !in.Active {
		return append(b, `{"active":false}`+"\n"...)
	}
	b = append(b, `{"active":true`...)
	for _, m := range [...]struct{ name, value string }{
		{"scope", in.Scope}, {"client_id", in.ClientID}, {"token_type", in.TokenType},
	} {
		if m.value != "" {
			b = jsonappend.Member(b, m.name, m.value)
		}
	}
	if in.Exp != 0 {
		b = jsonappend.Int(b, "exp", in.Exp)
	}
	if in.Iat != 0 {
		b = jsonappend.Int(b, "iat", in.Iat)
	}
	if in.Sub != "" {
		b = jsonappend.Member(b, "sub", in.Sub)
	}
	if len(in.Aud) > 0 {
		b = jsonappend.Strings(b, "aud", in.Aud)
	}
	if in.Iss != "" {
		b = jsonappend.Member(b, "iss", in.Iss)
	}
	if in.JTI != "" {
		b = jsonappend.Member(b, "jti", in.JTI)
	}
	if in.Act != nil {
		b = appendActor(b, "act", in.Act)
	}
	return append(b, '}', '\n')
}

// unixTime is a NumericDate for JSON responses.
func unixTime(t time.Time) int64 { return t.Unix() }
