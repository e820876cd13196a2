package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"slices"
	"time"

	gatehousev1alpha1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// grantAuthorizationCode is RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6).
//
// The code is redeemed first, atomically, recording the jti and refresh
// family the response will carry; only then are its bindings checked. So a
// code is burnt by any attempt, right or wrong, and a replay finds the
// first redemption's tokens and revokes them (RFC 6749 §4.1.2,
// RFC 9700 §4.5).
func (s *Server) grantAuthorizationCode(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	code := req.Form.Get("code")
	redirectURI := req.Form.Get("redirect_uri")
	verifier := req.Form.Get("code_verifier")
	switch {
	case code == "":
		return nil, invalidRequest("code is required")
	case redirectURI == "":
		return nil, invalidRequest("redirect_uri is required: it was part of the authorization request")
	case verifier != "" && !validVerifier(verifier):
		return nil, invalidRequest("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)")
	}

	// The family is named before the code is read, so that a replay can
	// revoke it; whether a refresh token is issued under it depends on the
	// code's scopes, known only after redemption.
	mayRefresh := req.Client.GrantTypes[gatehousev1alpha1.GrantRefreshToken]
	issued := storage.Issued{AccessTokenID: newID(), AccessTokenExpiresAt: req.Now.Add(req.Snap.AccessTokenTTL)}
	if mayRefresh {
		issued.RefreshFamilyID = newID()
	}
	ac, err := s.store.RedeemCode(ctx, storage.HashToken(code), issued, req.Now)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, invalidGrant("the authorization code is invalid or has expired")
	case errors.Is(err, storage.ErrCodeReplayed):
		s.revokeIssued(ctx, ac.Issued)
		infoFrom(ctx).securityEvent(ctx, EventCodeReplay, slog.String("client_id", req.Client.ID),
			slog.String("code_client_id", ac.ClientID), slog.String("sub", ac.Subject),
			slog.String("revoked_jti", ac.Issued.AccessTokenID), slog.String("revoked_grant_id", ac.Issued.RefreshFamilyID))
		return nil, invalidGrant("the authorization code has already been used; the tokens issued for it are revoked")
	case err != nil:
		return nil, s.storageFailed(ctx, "redeeming an authorization code", err)
	}
	switch {
	case ac.ClientID != req.Client.ID:
		return nil, invalidGrant("the authorization code was issued to another client")
	case ac.RedirectURI != redirectURI:
		return nil, invalidGrant("redirect_uri does not match the authorization request")
	case ac.CodeChallenge == "" && verifier != "":
		// RFC 9700 §2.1.1: a verifier without a challenge is a PKCE
		// downgrade attempt.
		return nil, invalidGrant("code_verifier sent, but the authorization request had no code_challenge")
	case ac.CodeChallenge != "" && verifier == "":
		return nil, invalidGrant("code_verifier is required: the authorization request had a code_challenge")
	case ac.CodeChallenge != "" && !verifyS256(verifier, ac.CodeChallenge):
		return nil, invalidGrant("code_verifier does not match the code_challenge")
	}

	g := tokenGrant{Client: req.Client, Subject: ac.Subject, Scopes: usableScopes(req.Snap, req.Client, ac.Scopes), AuthTime: ac.AuthTime}
	// An OpenID Connect request gets a refresh token only with
	// offline_access (Core §11); a plain OAuth request whenever the client
	// may refresh, as before.
	openID := isOpenIDRequest(g.Scopes)
	refresh := mayRefresh && (!openID || slices.Contains(g.Scopes, oidc.ScopeOfflineAccess))
	if refresh {
		g.GrantID = issued.RefreshFamilyID
	}
	var rt string
	if refresh {
		var e *Error
		if rt, e = s.firstRefreshToken(ctx, req, ac, g); e != nil {
			return nil, e
		}
	}
	g = s.withPerson(req.Snap, g)
	at, e := s.signAccessToken(req.Snap, g, issued.AccessTokenID, req.Now)
	if e != nil {
		return nil, e
	}
	resp := newTokenResponse(at, rt, g.Scopes, req.Now)
	if openID {
		if resp.IDToken, e = s.signIDToken(req.Snap, idTokenGrant{tokenGrant: g, Nonce: ac.Nonce, SessionID: ac.SessionID}, at.JWT, req.Now); e != nil {
			return nil, e
		}
	}
	return resp, nil
}

// firstRefreshToken stores the first refresh token of the family the
// code's redemption named (g.GrantID) and returns it.
func (s *Server) firstRefreshToken(ctx context.Context, req *tokenRequest, ac storage.AuthCode, g tokenGrant) (string, *Error) {
	rt := randomToken(32)
	err := s.store.CreateRefreshToken(ctx, storage.RefreshToken{
		Hash: storage.HashToken(rt), FamilyID: g.GrantID, ClientID: req.Client.ID,
		Subject: ac.Subject, Scopes: g.Scopes, AuthTime: ac.AuthTime, IssuedAt: req.Now,
		ExpiresAt: refreshExpiry(req, ac.AuthTime), SessionID: ac.SessionID,
	})
	switch {
	case errors.Is(err, storage.ErrRevoked):
		// A replay of this code revoked the family between our redemption
		// and now: the code was stolen, so nothing is issued.
		return "", invalidGrant("the authorization code was used more than once")
	case err != nil:
		return "", s.storageFailed(ctx, "storing a refresh token", err)
	}
	return rt, nil
}

// revokeIssued revokes what a code's first redemption issued. Best effort:
// the replay fails either way, and storage errors are logged.
func (s *Server) revokeIssued(ctx context.Context, is storage.Issued) {
	if is.AccessTokenID != "" {
		if err := s.store.RevokeAccessToken(ctx, is.AccessTokenID, is.AccessTokenExpiresAt); err != nil {
			s.log.Error("revoking access token of a replayed code", "error", err)
		}
	}
	if is.RefreshFamilyID != "" {
		if err := s.store.RevokeFamily(ctx, is.RefreshFamilyID, s.now()); err != nil {
			s.log.Error("revoking refresh tokens of a replayed code", "error", err)
		}
	}
}

// validVerifier checks RFC 7636 §4.1's code_verifier syntax.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// verifyS256 is RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge,
// compared in constant time.
func verifyS256(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// refreshExpiry is when a new refresh-token family ends: the refresh-token
// lifetime counted from the login that started it.
func refreshExpiry(req *tokenRequest, authTime time.Time) time.Time {
	if authTime.IsZero() {
		authTime = req.Now
	}
	return authTime.Add(req.Snap.RefreshTokenTTL)
}
