// Package storage is the token server's state that must outlive a request
// and be shared by replicas: pending authorization requests, authorization
// codes, refresh tokens, access-token revocations, consents and sessions.
//
// Secrets never reach a Store in the clear: codes, refresh tokens and session
// cookies are stored under the SHA-256 of their value (HashToken), so a
// leaked database cannot be replayed against the server.
//
// Every driver passes the conformance suite in storage/storagetest. The
// operations that decide security outcomes (RedeemCode, RotateRefreshToken)
// are atomic: of two concurrent callers, even on two server instances
// sharing one database, exactly one wins.
package storage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
)

var (
	// ErrNotFound: no such object, or it has expired.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an object with that ID exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrCodeReplayed: the code was redeemed before. RedeemCode returns
	// the code with what its first redemption issued, so the caller can
	// revoke it (RFC 6749 §4.1.2, RFC 9700 §4.5).
	ErrCodeReplayed = errors.New("authorization code already redeemed")
	// ErrRefreshTokenReused: the refresh token was rotated before. The
	// store has already revoked its whole family (RFC 9700 §4.14.2).
	ErrRefreshTokenReused = errors.New("refresh token reused; family revoked")
	// ErrRevoked: the refresh token's family was revoked.
	ErrRevoked = errors.New("revoked")
	// ErrInvalid: the caller passed an object a store cannot keep (an
	// empty key or a zero ExpiresAt). Nothing was written.
	ErrInvalid = errors.New("invalid object")
)

// RevokedFamilyRetention is how long a store remembers the revocation of a
// family after its refresh tokens are gone. Two things need it: a token
// created in a family revoked before it (see CreateRefreshToken) is
// refused, and an access token issued under the family is reported revoked
// (IsAccessTokenRevoked) until it expires. So it must be at least the
// longest access-token lifetime, which the AuthorizationServer API caps at
// 24h.
const RevokedFamilyRetention = 24 * time.Hour

// HashToken is the ID under which a bearer secret (code, refresh token,
// session cookie) is stored: base64url SHA-256. A fast hash is right: these
// values carry at least 128 random bits.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// AuthRequest is a validated /authorize request waiting for login and
// consent.
type AuthRequest struct {
	ID                  string // random, carried by the login and consent pages
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	CodeChallenge       string
	CodeChallengeMethod string
	// Subject is set once the user has logged in.
	Subject   string
	AuthTime  time.Time
	ExpiresAt time.Time

	// OpenID Connect (Core §3.1.2.1). Nonce is echoed in the ID token;
	// LoginHint pre-fills the login page; ForceConsent (prompt=consent)
	// shows the consent page even when a decision is remembered;
	// SessionID is the sid of the browser session that logged in.
	Nonce        string
	LoginHint    string
	ForceConsent bool
	SessionID    string
}

// AuthCode is an issued authorization code, stored under HashToken(code).
type AuthCode struct {
	Hash                string
	ClientID            string
	RedirectURI         string
	Scopes              []string
	Subject             string
	AuthTime            time.Time
	CodeChallenge       string
	CodeChallengeMethod string
	ExpiresAt           time.Time
	// Nonce and SessionID go into the ID token (Core §3.1.3.6).
	Nonce     string
	SessionID string

	// Set by RedeemCode: what the redemption issued.
	RedeemedAt *time.Time
	Issued     Issued
}

// Issued records the tokens one code redemption produced, so a replay of
// the code can revoke them.
type Issued struct {
	AccessTokenID        string // jti
	AccessTokenExpiresAt time.Time
	RefreshFamilyID      string // empty when no refresh token was issued
}

// RefreshToken is stored under HashToken(token). Tokens that replace one
// another on rotation share a FamilyID.
type RefreshToken struct {
	Hash     string
	FamilyID string
	ClientID string
	Subject  string
	Scopes   []string
	// AuthTime is when the user logged in; the family expires at
	// ExpiresAt, which rotation does not extend.
	AuthTime  time.Time
	IssuedAt  time.Time
	ExpiresAt time.Time
	// RotatedAt is set once the token has been exchanged for its successor.
	RotatedAt *time.Time
	// SessionID is the sid of the login the family started with, for the
	// ID tokens a refresh returns (Core §12.2).
	SessionID string
}

// Consent remembers that a user approved scopes for a client.
type Consent struct {
	Subject   string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
	ExpiresAt time.Time
}

// Session is a logged-in browser, stored under HashToken(cookie value).
type Session struct {
	Hash      string
	Subject   string
	AuthTime  time.Time
	ExpiresAt time.Time
}

// Store is implemented by the memory and PostgreSQL drivers.
//
// Reads treat an object whose ExpiresAt has passed (relative to now) as
// ErrNotFound; DeleteExpired removes such objects for good. An object is
// live while now is before its ExpiresAt: at ExpiresAt it has expired.
// Every object needs a non-zero ExpiresAt and a non-empty key (ErrInvalid).
// Deleting something that does not exist is not an error.
type Store interface {
	IdentityStore

	// Authorization requests between /authorize and the redirect back.
	CreateAuthRequest(ctx context.Context, r AuthRequest) error
	GetAuthRequest(ctx context.Context, id string, now time.Time) (AuthRequest, error)
	UpdateAuthRequest(ctx context.Context, r AuthRequest) error
	DeleteAuthRequest(ctx context.Context, id string) error

	// CreateCode stores a new authorization code.
	CreateCode(ctx context.Context, c AuthCode) error
	// RedeemCode atomically marks the code redeemed and records issued.
	// An unknown or expired code is ErrNotFound. A code redeemed before is
	// ErrCodeReplayed, returned with the stored code (and its first Issued)
	// so the caller can revoke that.
	RedeemCode(ctx context.Context, hash string, issued Issued, now time.Time) (AuthCode, error)

	// CreateRefreshToken stores the first token of a family. If the family
	// was revoked already (a replayed code can revoke the family its first
	// redemption named before that redemption stores the token), it is
	// ErrRevoked and nothing is stored.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// GetRefreshToken returns a token; ErrNotFound if unknown or expired,
	// ErrRevoked if its family is revoked.
	GetRefreshToken(ctx context.Context, hash string, now time.Time) (RefreshToken, error)
	// RotateRefreshToken atomically marks the token under oldHash rotated
	// and stores next (same family) in its place, returning the old token.
	// next.FamilyID may be empty (it takes the old token's family); another
	// family is ErrInvalid. If the old token was already rotated, it
	// revokes the whole family and returns ErrRefreshTokenReused with the
	// old token. ErrNotFound and ErrRevoked as for Get. Of concurrent
	// rotations of one token exactly one succeeds; the others are reuse.
	RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, now time.Time) (RefreshToken, error)
	// RevokeFamily revokes every refresh token of a family, including
	// tokens later created in it. Revoking an unknown or revoked family is
	// not an error.
	RevokeFamily(ctx context.Context, familyID string, now time.Time) error

	// RevokeAccessToken records a revoked JWT until it would have expired.
	RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error
	// IsAccessTokenRevoked reports whether the access token jti is revoked:
	// by itself (RevokeAccessToken), or because familyID, the refresh-token
	// family it was issued under (empty for none), is revoked (RFC 7009
	// §2.1: revoking a refresh token revokes the access tokens of its
	// grant). One round trip: introspection calls it on every request.
	IsAccessTokenRevoked(ctx context.Context, jti, familyID string, now time.Time) (bool, error)

	// SaveConsent creates or replaces the consent of (Subject, ClientID).
	SaveConsent(ctx context.Context, c Consent) error
	GetConsent(ctx context.Context, subject, clientID string, now time.Time) (Consent, error)

	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, hash string, now time.Time) (Session, error)
	// GetSessionConsent is GetSession and, for the session's subject,
	// GetConsent of clientID, in one round trip: the single-sign-on path
	// (/authorize with a live session and a remembered consent) needs
	// both. The consent is nil when there is none (or it expired); a
	// missing session is ErrNotFound.
	GetSessionConsent(ctx context.Context, hash, clientID string, now time.Time) (Session, *Consent, error)
	DeleteSession(ctx context.Context, hash string) error

	// DeleteExpired removes everything expired before now and reports how
	// many objects it removed.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)

	// Ping reports whether the store can serve (readiness).
	Ping(ctx context.Context) error
	Close() error
}
