// Package storage is the token server's state that must outlive a request
// and be shared by replicas: pending authorization requests, authorization
// codes, refresh tokens, access-token revocations, consents, sessions and
// the logout tokens owed when they end.
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
	"slices"
	"time"
)

var (
	// ErrNotFound means no such object, or it has expired.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means an object with that ID exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrCodeReplayed means the code was redeemed before. RedeemCode returns
	// the code with what its first redemption issued, so the caller can
	// revoke it (RFC 6749 §4.1.2, RFC 9700 §4.5).
	ErrCodeReplayed = errors.New("authorization code already redeemed")
	// ErrRefreshTokenReused means the refresh token was rotated before. The
	// store has already revoked its whole family (RFC 9700 §4.14.2).
	ErrRefreshTokenReused = errors.New("refresh token reused; family revoked")

	// ErrRevoked means the refresh token's family was revoked.
	ErrRevoked = errors.New("revoked")
	// ErrInvalid means the caller passed an object a store cannot keep (an
	// empty key or a zero ExpiresAt). Nothing was written.
	ErrInvalid = errors.New("invalid object")
	// ErrUnavailable means the store could not be reached, or could not
	// serve the request in time: it is restarting, failing over, out of
	// connections, or the network to it stalls. Nothing about the request
	// was decided; the same request may succeed a moment later, so a
	// server answers 503 with Retry-After. Drivers mark such errors (the
	// driver's own error stays in the chain, for the log).
	ErrUnavailable = errors.New("storage unavailable")
)

// RotationRetryWindow is how long after a refresh token's rotation a retry
// of that same rotation (RotateRefreshToken) gets the same, still unused,
// successor instead of counting as reuse. It covers a client that was
// answered 503 while the rotation had committed (a database crash or
// failover between the commit and its acknowledgement) and retries through
// the outage.
const RotationRetryWindow = 2 * time.Minute

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
	ID          string // random, carried by the login and consent pages
	ClientID    string
	RedirectURI string
	Scopes      []string
	// Resources are the RFC 8707 resource indicators the request named:
	// the audiences its tokens may be for. Empty: no restriction beyond
	// the scopes' and the client's audiences.
	Resources           []string
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

	// Device is the Hash of the device authorization (RFC 8628) this
	// request is the person's approval of, on the /device page; empty
	// for a request from /authorize, which has a RedirectURI instead.
	Device string

	// ResponseMode is how the response goes back to the client: "" for
	// the redirect's query, or form_post (OAuth 2.0 Form Post Response
	// Mode).
	ResponseMode string
	// Claims is the request's claims parameter (OpenID Connect Core
	// §5.5), JSON; empty without one.
	Claims string
	// UILocales is the request's ui_locales (Core §3.1.2.1): the
	// languages the pages of this sign-in should speak, in order.
	UILocales string
}

// AuthCode is an issued authorization code, stored under HashToken(code).
type AuthCode struct {
	Hash        string
	ClientID    string
	RedirectURI string
	Scopes      []string
	// Resources are the authorization request's resource indicators
	// (RFC 8707), which the code's tokens may not exceed.
	Resources           []string
	Subject             string
	AuthTime            time.Time
	CodeChallenge       string
	CodeChallengeMethod string
	ExpiresAt           time.Time
	// Nonce and SessionID go into the ID token (Core §3.1.3.6).
	Nonce     string
	SessionID string
	// Claims is the authorization request's claims parameter (Core
	// §5.5), for the tokens the code is exchanged for.
	Claims string

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

// FirstRefresh asks RedeemCode to store the first refresh token of the
// family the redemption names (Issued.RefreshFamilyID) in the same atomic
// step, so that a successful code exchange is one round trip. The token is
// stored only when the redeemed code has the bindings the caller is about
// to check and the scope rule below holds; otherwise the code is redeemed
// all the same and nothing else is stored. The caller still checks the
// bindings itself: these conditions only decide whether the token is
// stored, so that one is never stored for a redemption the caller refuses.
//
// The stored token is copied from the code: its client, subject, AuthTime,
// SessionID and Resources, and the scopes described at AllowedScopes; IssuedAt is
// the redemption's now.
type FirstRefresh struct {
	// Hash is HashToken of the refresh token.
	Hash string
	// The code must have been issued to ClientID for RedirectURI, with
	// CodeChallenge: "" for a token request without a code_verifier,
	// otherwise the S256 challenge its verifier hashes to.
	ClientID      string
	RedirectURI   string
	CodeChallenge string
	// AllowedScopes are the scopes the client may still use: the token
	// carries the code's scopes that are among them, in the code's order.
	AllowedScopes []string
	// When the token's scopes include OpenIDScope, it is stored only if
	// they include OfflineScope too (OpenID Connect Core §11). An empty
	// OpenIDScope means no such rule.
	OpenIDScope  string
	OfflineScope string
	// TTL is the refresh token's lifetime, counted from the code's
	// AuthTime (from now for a code without one): rotation never extends
	// a family past the login that started it.
	TTL time.Duration
}

// Token is the refresh token f describes for the redeemed code c in
// family familyID, and whether c and the scope rule let it be stored.
// Drivers that decide in Go share it; SQL drivers spell out the same rule.
func (f *FirstRefresh) Token(c AuthCode, familyID string, now time.Time) (RefreshToken, bool) {
	if c.ClientID != f.ClientID || c.RedirectURI != f.RedirectURI || c.CodeChallenge != f.CodeChallenge {
		return RefreshToken{}, false
	}
	scopes := make([]string, 0, len(c.Scopes))
	for _, sc := range c.Scopes {
		if slices.Contains(f.AllowedScopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	if f.OpenIDScope != "" && slices.Contains(scopes, f.OpenIDScope) && !slices.Contains(scopes, f.OfflineScope) {
		return RefreshToken{}, false
	}
	from := c.AuthTime
	if from.IsZero() {
		from = now
	}
	return RefreshToken{
		Hash: f.Hash, FamilyID: familyID, ClientID: c.ClientID, Subject: c.Subject, Scopes: scopes,
		Resources: slices.Clone(c.Resources),
		AuthTime:  c.AuthTime, IssuedAt: now, ExpiresAt: from.Add(f.TTL), SessionID: c.SessionID,
	}, true
}

// RefreshToken is stored under HashToken(token). Tokens that replace one
// another on rotation share a FamilyID.
type RefreshToken struct {
	Hash     string
	FamilyID string
	ClientID string
	Subject  string
	Scopes   []string
	// Resources are the resource indicators (RFC 8707) the family was
	// granted for; a refresh may narrow the audience within them, never
	// widen it. Empty: no restriction beyond the scopes'.
	Resources []string
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

// Store is implemented by the memory and PostgreSQL drivers.
//
// Reads treat an object whose ExpiresAt has passed (relative to now) as
// ErrNotFound; DeleteExpired removes such objects for good. An object is
// live while now is before its ExpiresAt: at ExpiresAt it has expired.
// Every object needs a non-zero ExpiresAt and a non-empty key (ErrInvalid).
// Deleting something that does not exist is not an error.
type Store interface {
	IdentityStore
	AssertionStore
	DeviceStore
	SessionStore
	PushedRequestStore

	// Authorization requests between /authorize and the redirect back.
	CreateAuthRequest(ctx context.Context, r AuthRequest) error
	GetAuthRequest(ctx context.Context, id string, now time.Time) (AuthRequest, error)
	UpdateAuthRequest(ctx context.Context, r AuthRequest) error
	DeleteAuthRequest(ctx context.Context, id string) error

	// CreateCode stores a new authorization code.
	CreateCode(ctx context.Context, c AuthCode) error
	// RedeemCode atomically marks the code redeemed and records issued,
	// and records the code's client in the code's session (SessionID) if
	// that session is live (AddSessionClient).
	// With first (non-nil), the same atomic step also stores the family's
	// first refresh token if the code and first's conditions allow (see
	// FirstRefresh) and the family is not revoked; stored reports whether
	// it did. first needs a Hash, a positive TTL and issued to name a
	// RefreshFamilyID (ErrInvalid). Were the token to be stored but one
	// with its hash exists, it is ErrAlreadyExists and nothing changes,
	// the code included.
	// An unknown or expired code is ErrNotFound. A code redeemed before is
	// ErrCodeReplayed, returned with the stored code (and its first Issued)
	// so the caller can revoke that; revoking Issued.RefreshFamilyID
	// revokes the token a first redemption stored.
	RedeemCode(ctx context.Context, hash string, issued Issued, first *FirstRefresh, now time.Time) (c AuthCode, stored bool, err error)

	// CreateRefreshToken stores the first token of a family. If the family
	// was revoked already (a replayed code can revoke the family its first
	// redemption named before that redemption stores the token), it is
	// ErrRevoked and nothing is stored. The token endpoint stores the
	// first token with RedeemCode and calls this only when the store did
	// not (see FirstRefresh).
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
	//
	// One exception makes a rotation whose answer was lost safe to retry:
	// when the old token's rotation stored exactly next (same hash, same
	// family), that successor is still unrotated, and now is within
	// RotationRetryWindow of the rotation, it changes nothing and returns
	// the old token with no error. The token server derives the successor
	// from the presented token with a server secret, so only a retry of
	// the same token asks for the same successor; a client that got its
	// answer and used the successor has moved on, and any later
	// presentation of the old token is reuse.
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

	// DeleteExpired removes everything expired before now (device
	// authorizations DeviceExpiredRetention after they expired) and
	// reports how many objects it removed.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)

	// Ping reports whether the store can serve (readiness).
	Ping(ctx context.Context) error
	Close() error
}
