package server

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// randomToken returns n random bytes, base64url: codes and refresh tokens
// use 32 bytes (256 bits, well over RFC 6749 §10.10's 128), IDs 16.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newID() string { return randomToken(16) }

// accessTokenClaims is the RFC 9068 §2.2 claim set.
type accessTokenClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
	// GrantID names the refresh-token family the token was issued under,
	// so that revoking the family revokes the token at introspection
	// (RFC 7009 §2.1). Absent when no refresh token was issued.
	GrantID string `json:"grant_id,omitempty"`
}

// accessToken is what signing produced.
type accessToken struct {
	JWT       string
	ID        string
	ExpiresAt time.Time
}

var signingMethods = map[string]jwt.SigningMethod{
	keyset.ES256: jwt.SigningMethodES256,
	keyset.RS256: jwt.SigningMethodRS256,
	keyset.EdDSA: jwt.SigningMethodEdDSA,
}

// tokenGrant is what a grant decided: whom a token is for and what it
// carries.
type tokenGrant struct {
	Client   *config.Client
	Subject  string
	Scopes   []string
	AuthTime time.Time // zero for client_credentials
	GrantID  string    // refresh-token family; empty when there is none
}

// signAccessToken signs a JWT access token (RFC 9068) with the key that is
// active at now. jti is chosen by the caller, so that a code redemption can
// record it before the token exists.
func signAccessToken(snap *config.Snapshot, g tokenGrant, jti string, now time.Time) (accessToken, *Error) {
	key, ok := snap.SigningKey(now)
	if !ok {
		return accessToken{}, newError(ErrTemporarilyUnavailable, "the server has no signing key yet")
	}
	method, ok := signingMethods[key.Algorithm]
	if !ok {
		return accessToken{}, serverError("the signing key's algorithm is not supported")
	}
	exp := now.Add(snap.AccessTokenTTL)
	claims := accessTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    snap.Issuer,
			Subject:   g.Subject,
			Audience:  audience(snap, g.Client, g.Scopes),
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		ClientID: g.Client.ID,
		Scope:    strings.Join(g.Scopes, " "),
		GrantID:  g.GrantID,
	}
	if !g.AuthTime.IsZero() {
		claims.AuthTime = g.AuthTime.Unix()
	}
	t := &jwt.Token{
		// RFC 9068 §2.1: typ at+jwt keeps an access token from being
		// mistaken for an ID token or any other JWT.
		Header: map[string]any{"typ": "at+jwt", "alg": method.Alg(), "kid": key.ID},
		Claims: claims,
		Method: method,
	}
	signed, err := t.SignedString(key.Signer())
	if err != nil {
		return accessToken{}, serverError("signing the access token failed")
	}
	return accessToken{JWT: signed, ID: jti, ExpiresAt: exp}, nil
}

// tokenResponse is RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	// IDToken answers an OpenID Connect request (Core §3.1.3.3, §12.2).
	IDToken string `json:"id_token,omitempty"`
}

func newTokenResponse(at accessToken, refresh string, scopes []string, now time.Time) *tokenResponse {
	return &tokenResponse{
		AccessToken:  at.JWT,
		TokenType:    "Bearer",
		ExpiresIn:    int64(at.ExpiresAt.Sub(now).Round(time.Second) / time.Second),
		RefreshToken: refresh,
		Scope:        strings.Join(scopes, " "),
	}
}

// verifyAccessToken checks that token is a JWT access token this server
// signed with a key of the current set (RFC 9068 §4): signature, typ and
// issuer. Expiry is left to the caller, since revocation wants expired
// tokens too.
func verifyAccessToken(snap *config.Snapshot, token string) (*accessTokenClaims, bool) {
	if snap.Keys == nil || strings.Count(token, ".") != 2 {
		return nil, false
	}
	claims := &accessTokenClaims{}
	p := jwt.NewParser(jwt.WithValidMethods([]string{keyset.ES256, keyset.RS256, keyset.EdDSA}), jwt.WithoutClaimsValidation())
	t, err := p.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") {
			return nil, errNotAccessToken
		}
		kid, _ := t.Header["kid"].(string)
		for i := range snap.Keys.Keys {
			k := &snap.Keys.Keys[i]
			if k.ID == kid && k.Signer() != nil && k.Algorithm == t.Method.Alg() {
				return k.Signer().Public(), nil
			}
		}
		return nil, errNotAccessToken
	})
	if err != nil || !t.Valid || claims.Issuer != snap.Issuer || claims.ID == "" || claims.ExpiresAt == nil {
		return nil, false
	}
	return claims, true
}

const errNotAccessToken = constError("not an access token of this server")
