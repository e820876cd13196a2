package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"log/slog"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
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
	person, e := s.refreshPerson(ctx, req, old.Subject)
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
	next := s.nextRefreshToken(req.Snap, req.Client, presented, req.Now)
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

// refreshPerson is the person of a refresh as known now, or why they get
// no more tokens: a person from an identity provider may be due a re-check
// there, and then the login rules are checked again (refreshAdmits). nil
// when neither read them.
func (s *Server) refreshPerson(ctx context.Context, req *tokenRequest, subject string) (*identity.Person, *Error) {
	person, e := s.recheckUpstream(ctx, req.Snap, subject, req.Now)
	if e != nil {
		return nil, e
	}
	return s.refreshAdmits(ctx, req.Snap, req.Client, subject, person)
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

// nextRefreshToken is the successor of presented: derived, not random,
// when retries are on for the client (spec.refreshTokenRetry, or
// Options.RefreshRetry for every client), so a client that retries after
// an answer it never got (a database failover between commit and
// acknowledgement) gets the same successor instead of tripping reuse
// detection.
func (s *Server) nextRefreshToken(snap *config.Snapshot, client *config.Client, presented string, now time.Time) string {
	if s.refreshRetry || snap.RefreshTokenRetry.Covers(client.Public) {
		return successorRefreshToken(snap, presented, now)
	}
	return randomToken(32)
}

// successorRefreshToken is the refresh token that rotating presented
// yields: HMAC-SHA256 of the presented token under a key every replica
// derives alike from the signing key, so a retry of the same rotation asks
// the store for the same successor (storage.RotationRetryWindow), and
// nobody without the signing key can compute a family's next token. When
// there is no private signing key to derive from, it is random (a retry is
// then reuse, as before).
func successorRefreshToken(snap *config.Snapshot, presented string, now time.Time) string {
	if snap.Keys == nil {
		return randomToken(32)
	}
	k, ok := snap.Keys.SigningKey(now)
	if !ok || k.Signer() == nil {
		return randomToken(32)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Signer())
	if err != nil {
		return randomToken(32)
	}
	kdf := hmac.New(sha256.New, []byte("gatehouse refresh successor v1"))
	kdf.Write(der)
	m := hmac.New(sha256.New, kdf.Sum(nil))
	m.Write([]byte(presented))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
