package server

import (
	"errors"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// handleRevoke is token revocation (RFC 7009). Revoking a refresh token
// revokes its family, and with it every access token issued under the
// family (§2.1: they carry its ID as grant_id); revoking an access token
// records its jti until it expires. Introspection then reports them
// inactive. A resource server that validates JWTs offline cannot learn of
// either, which is why access tokens are short-lived. Unknown, invalid
// or expired tokens are answered with 200, as §2.2 requires, so the
// endpoint cannot be used to probe for tokens.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	now := s.now()
	fail := func(e *Error) result { writeError(w, e, snap.Issuer); return failed(e) }
	form, client, e := s.authenticatedForm(w, r, snap, now)
	if e != nil {
		return fail(e)
	}
	token := form.Get("token")
	if token == "" {
		return fail(invalidRequest("token is required"))
	}
	// token_type_hint only orders the look-ups (§2.1); both are cheap.
	ctx := r.Context()
	ri := infoFrom(ctx)
	if claims, ok := s.verifiedAccessToken(snap, token); ok {
		ri.auditRevoked(claims.Subject, claims.ID, "")
		if claims.ClientID != client.ID {
			return fail(unauthorizedClient("the token was not issued to this client"))
		}
		if exp := claims.ExpiresAt.Time; exp.After(now) {
			if err := s.store.RevokeAccessToken(ctx, claims.ID, exp); err != nil {
				return fail(s.storageFailed(ctx, "revoking an access token", err))
			}
		}
		writeRevoked(w)
		return result{outcome: outcomeSuccess}
	}
	rt, err := s.store.GetRefreshToken(ctx, storage.HashToken(token), now)
	switch {
	case err == nil:
		ri.auditRevoked(rt.Subject, "", rt.FamilyID)
		if rt.ClientID != client.ID {
			return fail(unauthorizedClient("the token was not issued to this client"))
		}
		if err := s.store.RevokeFamily(ctx, rt.FamilyID, now); err != nil {
			return fail(s.storageFailed(ctx, "revoking a refresh-token family", err))
		}
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrRevoked):
	default:
		return fail(s.storageFailed(ctx, "reading a refresh token", err))
	}
	writeRevoked(w)
	return result{outcome: outcomeSuccess}
}

func writeRevoked(w http.ResponseWriter) {
	noStore(w.Header())
	w.WriteHeader(http.StatusOK)
}
