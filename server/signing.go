package server

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/jsonappend"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
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
	// Groups are the person's groups when the groups scope was granted
	// (RFC 9068 §2.2.3.1), whichever source logged them in.
	Groups []string `json:"groups,omitempty"`
	// Act names who acts for the subject in a token from a token exchange
	// (RFC 8693 §4.1), the earlier actors nested inside.
	Act *actor `json:"act,omitempty"`
	// UserinfoClaims are the claims the authorization request's claims
	// parameter asked userinfo for one by one (OpenID Connect Core §5.5),
	// which the token carries to userinfo: it reads no storage.
	UserinfoClaims []string `json:"userinfo_claims,omitempty"`
}

// actor is an RFC 8693 §4.1 act claim: the current actor, and inside it
// the actor before it.
type actor struct {
	Subject string `json:"sub"`
	// Issuer is set for an actor named by another issuer's token.
	Issuer string `json:"iss,omitempty"`
	Act    *actor `json:"act,omitempty"`
}

// depth is the number of actors in the chain.
func (a *actor) depth() int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// appendActor writes ,"name":{...} for a chain of actors.
func appendActor(b []byte, name string, a *actor) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":{`...)
	b = jsonappend.Member(b, "sub", a.Subject)
	if a.Issuer != "" {
		b = jsonappend.Member(b, "iss", a.Issuer)
	}
	if a.Act != nil {
		b = appendActor(b, "act", a.Act)
	}
	return append(b, '}')
}

// accessToken is what signing produced.
type accessToken struct {
	JWT       string
	ID        string
	ExpiresAt time.Time
	// issued is what the token says, for the audit log.
	issued issuedToken
}

// issuedToken is what the audit log says of an issued access token: never
// the token itself.
type issuedToken struct {
	ID       string
	Subject  string
	Scopes   []string
	Audience []string
	// GrantID names the refresh-token family, empty when there is none.
	GrantID string
}

// tokenGrant is what a grant decided: whom a token is for and what it
// carries.
type tokenGrant struct {
	Client   *config.Client
	Subject  string
	Scopes   []string
	AuthTime time.Time // zero for client_credentials
	GrantID  string    // refresh-token family; empty when there is none
	// Resources restrict the token's aud to these targets (RFC 8707),
	// chosen by resolveTargets; nil for the default audience.
	Resources []string
	// Person is who Subject is, when the scopes release any of their
	// claims (withPerson); nil otherwise, and for a client's own token.
	Person *identity.Person
	// Act is the act claim of a token from a token exchange.
	Act *actor
	// NotAfter caps the token's expiry when not zero: a token exchanged
	// for another never outlives it.
	NotAfter time.Time
	// IDTokenClaims and UserinfoClaims are the person's claims the claims
	// parameter asked for one by one (Core §5.5), beyond the scopes'.
	IDTokenClaims, UserinfoClaims []string
	// MappedClaims are the claims spec.claimMapping adds to the ID token
	// (mapClaims); mappingErr is why the mapping failed, which refuses
	// the token.
	MappedClaims map[string]any
	mappingErr   error
}

// signAccessToken signs a JWT access token (RFC 9068) with the key that is
// active at now. jti is chosen by the caller, so that a code redemption can
// record it before the token exists.
func (s *Server) signAccessToken(snap *config.Snapshot, g tokenGrant, jti string, now time.Time) (accessToken, *Error) {
	if g.mappingErr != nil {
		s.log.Error("claim mapping failed", "client_id", g.Client.ID, "error", g.mappingErr)
		return accessToken{}, serverError("the claim mapping failed for this person")
	}
	key, ok := snap.SigningKey(now)
	if !ok {
		return accessToken{}, newError(ErrTemporarilyUnavailable, "the server has no signing key yet")
	}
	exp := now.Add(snap.Lifetimes(g.Client).AccessToken)
	if !g.NotAfter.IsZero() && g.NotAfter.Before(exp) {
		exp = g.NotAfter
	}
	var authTime int64
	if !g.AuthTime.IsZero() {
		authTime = g.AuthTime.Unix()
	}
	aud := grantAudience(snap, g)
	payload := make([]byte, 0, 512)
	payload = appendAccessTokenClaims(payload, accessTokenClaimValues{
		Issuer: snap.Issuer, Subject: g.Subject, Audience: aud,
		ExpiresAt: exp.Unix(), IssuedAt: now.Unix(), ID: jti,
		ClientID: g.Client.ID, Scopes: g.Scopes, AuthTime: authTime, GrantID: g.GrantID,
		Groups: accessTokenGroups(g), Act: g.Act, UserinfoClaims: g.UserinfoClaims,
	})
	signed, err := s.signJWS(snap, key, false, payload)
	if err != nil {
		return accessToken{}, s.signingFailed("access token", key, err)
	}
	return accessToken{JWT: signed, ID: jti, ExpiresAt: exp,
		issued: issuedToken{ID: jti, Subject: g.Subject, Scopes: g.Scopes, Audience: aud, GrantID: g.GrantID}}, nil
}

// signJWS signs payload with key: as an access token, or as an ID token.
func (s *Server) signJWS(snap *config.Snapshot, key *keyset.Key, idToken bool, payload []byte) (string, error) {
	js, err := s.derive(snap).signers.Get(key)
	if err != nil {
		return "", err
	}
	if idToken {
		return js.SignIDToken(payload)
	}
	return js.SignAccessToken(payload)
}

// signingFailed logs why a key could not sign; the client learns only
// that signing failed.
func (s *Server) signingFailed(what string, key *keyset.Key, err error) *Error {
	s.log.Error("signing failed", "token", what, "kid", key.ID, "alg", key.Algorithm, "error", err)
	return serverError("signing the " + what + " failed")
}

// accessTokenClaimValues are the RFC 9068 §2.2 claims of one token.
type accessTokenClaimValues struct {
	Issuer, Subject     string
	Audience            []string
	ExpiresAt, IssuedAt int64
	ID, ClientID        string
	Scopes              []string
	AuthTime            int64 // 0 when no person logged in
	GrantID             string
	Groups              []string
	Act                 *actor
	UserinfoClaims      []string
}

// appendAccessTokenClaims writes the claim set accessTokenClaims decodes.
func appendAccessTokenClaims(b []byte, c accessTokenClaimValues) []byte {
	b = append(b, '{')
	b = jsonappend.Member(b, "iss", c.Issuer)
	b = jsonappend.Member(b, "sub", c.Subject)
	b = jsonappend.Strings(b, "aud", c.Audience)
	b = jsonappend.Int(b, "exp", c.ExpiresAt)
	b = jsonappend.Int(b, "iat", c.IssuedAt)
	b = jsonappend.Member(b, "jti", c.ID)
	b = jsonappend.Member(b, "client_id", c.ClientID)
	if len(c.Scopes) > 0 {
		b = append(b, `,"scope":"`...)
		for i, sc := range c.Scopes {
			if i > 0 {
				b = append(b, ' ')
			}
			b = jsonappend.Chars(b, sc)
		}
		b = append(b, '"')
	}
	if c.AuthTime != 0 {
		b = jsonappend.Int(b, "auth_time", c.AuthTime)
	}
	if c.GrantID != "" {
		b = jsonappend.Member(b, "grant_id", c.GrantID)
	}
	if len(c.Groups) > 0 {
		b = jsonappend.Strings(b, "groups", c.Groups)
	}
	if c.Act != nil {
		b = appendActor(b, "act", c.Act)
	}
	if len(c.UserinfoClaims) > 0 {
		b = jsonappend.Strings(b, "userinfo_claims", c.UserinfoClaims)
	}
	return append(b, '}')
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
	// IssuedTokenType answers a token exchange (RFC 8693 §2.2.1).
	IssuedTokenType string `json:"issued_token_type,omitempty"`

	// issued describes the access token for the audit log.
	issued issuedToken
}

func newTokenResponse(at accessToken, refresh string, scopes []string, now time.Time) *tokenResponse {
	return &tokenResponse{
		AccessToken:  at.JWT,
		TokenType:    "Bearer",
		ExpiresIn:    int64(at.ExpiresAt.Sub(now).Round(time.Second) / time.Second),
		RefreshToken: refresh,
		Scope:        strings.Join(scopes, " "),
		issued:       at.issued,
	}
}

// appendJSON writes the response as encoding/json would, by hand, since
// the token endpoint writes one per request.
func (r *tokenResponse) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = jsonappend.Member(b, "access_token", r.AccessToken)
	b = jsonappend.Member(b, "token_type", r.TokenType)
	b = jsonappend.Int(b, "expires_in", r.ExpiresIn)
	if r.RefreshToken != "" {
		b = jsonappend.Member(b, "refresh_token", r.RefreshToken)
	}
	if r.Scope != "" {
		b = jsonappend.Member(b, "scope", r.Scope)
	}
	if r.IDToken != "" {
		b = jsonappend.Member(b, "id_token", r.IDToken)
	}
	if r.IssuedTokenType != "" {
		b = jsonappend.Member(b, "issued_token_type", r.IssuedTokenType)
	}
	return append(b, '}', '\n')
}
