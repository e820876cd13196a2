package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// grantRefreshToken is RFC 6749 §6 with rotation (RFC 9700 §4.14.2): every
// use returns a new refresh token of the same family and retires the old
// one; presenting a retired token revokes the whole family, because then
// either the client or an attacker holds a stolen copy. The scope may be
// narrowed for the access token; the new refresh token keeps the family's
// scope (§6: "identical to that of the refresh token included").
func (s *Server) grantRefreshToken(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	presented := req.Form.Get("refresh_token")
	if presented == "" {
		return nil, invalidRequest("refresh_token is required")
	}
	hash := storage.HashToken(presented)
	old, err := s.store.GetRefreshToken(ctx, hash, req.Now)
	if e := s.refreshStoreError(ctx, "reading a refresh token", err); e != nil {
		return nil, e
	}
	if old.ClientID != req.Client.ID {
		// Not rotated: the token's owner must not lose it to someone who
		// merely saw it.
		return nil, invalidGrant("the refresh token was issued to another client")
	}
	// A person removed from the identity source gets no more tokens. The
	// family is refused, not revoked, so that undoing a mistaken removal
	// brings the person's sessions back.
	switch req.Snap.Subject(old.Subject) {
	case config.SubjectRemoved:
		return nil, invalidGrant("the user this refresh token was issued to no longer exists")
	case config.SubjectUndetermined:
		return nil, newError(ErrTemporarilyUnavailable, "the users directory cannot be read right now; try again later")
	}
	// A person from an identity provider may be due a re-check there.
	person, e := s.recheckUpstream(ctx, req.Snap, old.Subject, req.Now)
	if e != nil {
		return nil, e
	}
	scopes, e := narrowScopes(old.Scopes, req.Scopes)
	if e != nil {
		return nil, e
	}
	// RFC 8707 §2.2: the family's resources bound every access token of
	// it; resource may narrow one token, and the family keeps them all.
	// Decided before rotating, so a refused request does not use up the
	// refresh token.
	targets, e := resolveTargets(req.Snap, req.Client, old.Resources, req.Resources)
	if e != nil {
		return nil, e
	}
	if e := checkScopesFitTargets(req.Snap, req.Scopes, targets); e != nil {
		return nil, e
	}
	next := randomToken(32)
	_, err = s.store.RotateRefreshToken(ctx, hash, storage.RefreshToken{
		Hash: storage.HashToken(next), FamilyID: old.FamilyID, ClientID: old.ClientID,
		Subject: old.Subject, Scopes: old.Scopes, Resources: old.Resources, AuthTime: old.AuthTime,
		IssuedAt: req.Now, ExpiresAt: old.ExpiresAt, SessionID: old.SessionID,
	}, req.Now)
	if errors.Is(err, storage.ErrRefreshTokenReused) {
		infoFrom(ctx).securityEvent(ctx, EventRefreshTokenReuse, slog.String("client_id", old.ClientID),
			slog.String("sub", old.Subject), slog.String("revoked_grant_id", old.FamilyID))
	}
	if e := s.refreshStoreError(ctx, "rotating a refresh token", err); e != nil {
		return nil, e
	}
	g := tokenGrant{Client: req.Client, Subject: old.Subject, AuthTime: old.AuthTime, GrantID: old.FamilyID, Resources: targets,
		Scopes: scopesForTargets(req.Snap, usableScopes(req.Snap, req.Client, scopes), targets)}
	if person != nil {
		g = withKnownPerson(req.Snap, g, person)
	} else {
		g = s.withPerson(req.Snap, g)
	}
	at, e := s.signAccessToken(req.Snap, g, newID(), req.Now)
	if e != nil {
		return nil, e
	}
	resp := newTokenResponse(at, next, g.Scopes, req.Now)
	// Core §12.2: a new ID token for the same person, client and login
	// (auth_time and sid of the original authentication), without nonce.
	if isOpenIDRequest(g.Scopes) {
		if resp.IDToken, e = s.signIDToken(req.Snap, idTokenGrant{tokenGrant: g, SessionID: old.SessionID}, at.JWT, req.Now); e != nil {
			return nil, e
		}
	}
	return resp, nil
}

// refreshStoreError maps what the store said about a presented refresh
// token: the outcomes the client must learn, or storageFailed.
func (s *Server) refreshStoreError(ctx context.Context, op string, err error) *Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrRefreshTokenReused):
		return invalidGrant("the refresh token was already used; every token of its family is revoked")
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrRevoked):
		return invalidGrant("the refresh token is invalid, expired or revoked")
	default:
		return s.storageFailed(ctx, op, err)
	}
}
