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

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// grantAuthorizationCode is RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6).
//
// The code is redeemed first, atomically, recording the jti and refresh
// family the response will carry; only then are its bindings checked. So a
// code is burnt by any attempt, right or wrong, and a replay finds the
// first redemption's tokens and revokes them (RFC 6749 §4.1.2,
// RFC 9700 §4.5). The first refresh token is stored by the redemption
// itself, on the condition that the bindings hold (storage.FirstRefresh):
// a successful exchange is one storage round trip.
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
	challenge := ""
	if verifier != "" {
		challenge = s256Challenge(verifier)
	}
	issued, first, rt := s.codeIssue(req, redirectURI, challenge)
	ac, stored, err := s.store.RedeemCode(ctx, storage.HashToken(code), issued, first, req.Now)
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
	// The store stored the first refresh token only under these same
	// bindings (storage.FirstRefresh), so a code refused here has none.
	if e := checkCodeBindings(ac, req.Client.ID, redirectURI, verifier, challenge); e != nil {
		return nil, e
	}

	// RFC 8707 §2.2: resource at the token endpoint picks, among the
	// resources the code was granted for, what this access token is for.
	// The refresh token keeps the code's resources (FirstRefresh).
	targets, e := resolveTargets(req.Snap, req.Client, ac.Resources, req.Resources)
	if e != nil {
		return nil, e
	}
	g := tokenGrant{Client: req.Client, Subject: ac.Subject, AuthTime: ac.AuthTime, Resources: targets,
		Scopes: scopesForTargets(req.Snap, usableScopes(req.Snap, req.Client, ac.Scopes), targets)}
	if claims := storedClaims(ac.Claims); claims != nil && isOpenIDRequest(g.Scopes) {
		g.IDTokenClaims, g.UserinfoClaims = claims.idTokenClaims(req.Client), claims.userinfoClaims(req.Client)
	}
	// An OpenID Connect request gets a refresh token only with
	// offline_access (Core §11); a plain OAuth request whenever the client
	// may refresh, as before. The store applied the same rule (first).
	openID := isOpenIDRequest(g.Scopes)
	refresh := first != nil && (!openID || slices.Contains(g.Scopes, oidc.ScopeOfflineAccess))
	if refresh {
		g.GrantID = issued.RefreshFamilyID
		if !stored {
			if e := s.firstRefreshToken(ctx, req, ac, g, rt); e != nil {
				return nil, e
			}
		}
	} else {
		// The store applied this rule too, so it stored no token. Had it
		// stored one, that token would be unreachable, which is safe: the
		// store has only its hash, the value is dropped here, and its
		// family, named on the code, dies with a replay or its TTL.
		rt = ""
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

// codeIssue is what a code's redemption will issue: the access token's jti
// and, for a client that may refresh, the refresh family the redemption
// names (so that a replay can revoke it) and its first token rt, which the
// store keeps only if the code's bindings are the request's (client,
// redirect_uri, the challenge the verifier hashes to) and its scopes get a
// refresh token.
func (s *Server) codeIssue(req *tokenRequest, redirectURI, challenge string) (storage.Issued, *storage.FirstRefresh, string) {
	issued := storage.Issued{AccessTokenID: newID(), AccessTokenExpiresAt: req.Now.Add(req.Snap.Lifetimes(req.Client).AccessToken)}
	if !req.Client.GrantTypes[oauthv1.GrantRefreshToken] {
		return issued, nil, ""
	}
	issued.RefreshFamilyID = newID()
	rt := randomToken(32)
	return issued, &storage.FirstRefresh{
		Hash: storage.HashToken(rt), ClientID: req.Client.ID, RedirectURI: redirectURI, CodeChallenge: challenge,
		AllowedScopes: usableScopes(req.Snap, req.Client, req.Client.AllowedScopes),
		OpenIDScope:   oidc.ScopeOpenID, OfflineScope: oidc.ScopeOfflineAccess,
		TTL: req.Snap.Lifetimes(req.Client).RefreshToken,
	}, rt
}

// checkCodeBindings is the authoritative check that the redeemed code was
// issued to this client, for this redirect_uri, with the challenge this
// verifier answers (challenge is its S256; both "" without one).
func checkCodeBindings(ac storage.AuthCode, clientID, redirectURI, verifier, challenge string) *Error {
	switch {
	case ac.ClientID != clientID:
		return invalidGrant("the authorization code was issued to another client")
	case ac.RedirectURI != redirectURI:
		return invalidGrant("redirect_uri does not match the authorization request")
	case ac.CodeChallenge == "" && verifier != "":
		// RFC 9700 §2.1.1: a verifier without a challenge is a PKCE
		// downgrade attempt.
		return invalidGrant("code_verifier sent, but the authorization request had no code_challenge")
	case ac.CodeChallenge != "" && verifier == "":
		return invalidGrant("code_verifier is required: the authorization request had a code_challenge")
	case ac.CodeChallenge != "" && subtle.ConstantTimeCompare([]byte(challenge), []byte(ac.CodeChallenge)) != 1:
		return invalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}

// firstRefreshToken stores rt as the first refresh token of the family the
// code's redemption named (g.GrantID), when the redemption did not: the
// store is to store it whenever this server issues one, so this is only a
// safety net, an extra round trip on a path that should not be taken.
func (s *Server) firstRefreshToken(ctx context.Context, req *tokenRequest, ac storage.AuthCode, g tokenGrant, rt string) *Error {
	err := s.store.CreateRefreshToken(ctx, storage.RefreshToken{
		Hash: storage.HashToken(rt), FamilyID: g.GrantID, ClientID: req.Client.ID,
		Subject: ac.Subject, Scopes: usableScopes(req.Snap, req.Client, ac.Scopes), Resources: ac.Resources, AuthTime: ac.AuthTime, IssuedAt: req.Now,
		ExpiresAt: refreshExpiry(req, ac.AuthTime), SessionID: ac.SessionID,
	})
	switch {
	case errors.Is(err, storage.ErrRevoked):
		// A replay of this code revoked the family between our redemption
		// and now: the code was stolen, so nothing is issued.
		return invalidGrant("the authorization code was used more than once")
	case err != nil:
		return s.storageFailed(ctx, "storing a refresh token", err)
	}
	return nil
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

// s256Challenge is RFC 7636 §4.2's S256 code_challenge of a verifier:
// BASE64URL(SHA256(verifier)).
func s256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// refreshExpiry is when a new refresh-token family ends: the refresh-token
// lifetime counted from the login that started it.
func refreshExpiry(req *tokenRequest, authTime time.Time) time.Time {
	if authTime.IsZero() {
		authTime = req.Now
	}
	return authTime.Add(req.Snap.Lifetimes(req.Client).RefreshToken)
}
