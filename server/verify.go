package server

import (
	"strings"
	"sync"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// verifiedAccessToken is verifyAccessToken with a memory: introspection
// is asked about the same token again and again (a resource server
// introspects each request it gets), and the signature check was most of
// its cost. Only tokens that verified are remembered; expiry, revocation
// and removed users are checked on every call by the callers, as before.
// The memory belongs to one configuration snapshot, so a key that leaves
// the set takes its tokens' entries with it.
func (s *Server) verifiedAccessToken(snap *config.Snapshot, token string) (*accessTokenClaims, bool) {
	cache := s.derive(snap).verified
	if c, ok := cache.get(token); ok {
		return c, true
	}
	c, ok := verifyAccessToken(snap, token)
	if ok {
		cache.put(token, c)
	}
	return c, ok
}

// verifiedGeneration bounds the memory: two generations of this many
// tokens, about 1 KiB each. When the current generation is full it becomes
// the previous one and the oldest is dropped, so tokens still asked about
// survive (a hit in the previous generation moves the token forward).
const verifiedGeneration = 4096

// verifiedTokens maps a token to its verified claims, bounded in entries.
type verifiedTokens struct {
	mu        sync.Mutex
	cur, prev map[string]*accessTokenClaims
}

func newVerifiedTokens() *verifiedTokens {
	return &verifiedTokens{cur: make(map[string]*accessTokenClaims, verifiedGeneration)}
}

func (v *verifiedTokens) get(token string) (*accessTokenClaims, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if c, ok := v.cur[token]; ok {
		return c, true
	}
	c, ok := v.prev[token]
	if ok {
		v.putLocked(token, c)
	}
	return c, ok
}

func (v *verifiedTokens) put(token string, c *accessTokenClaims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.putLocked(token, c)
}

func (v *verifiedTokens) putLocked(token string, c *accessTokenClaims) {
	if len(v.cur) >= verifiedGeneration {
		v.prev, v.cur = v.cur, make(map[string]*accessTokenClaims, verifiedGeneration)
	}
	v.cur[token] = c
}

func (v *verifiedTokens) len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cur) + len(v.prev)
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
		return verificationKey(snap, t, errNotAccessToken)
	})
	if err != nil || !t.Valid || claims.Issuer != snap.Issuer || claims.ID == "" || claims.ExpiresAt == nil {
		return nil, false
	}
	return claims, true
}

const errNotAccessToken = constError("not an access token of this server")

// verificationKey is the public key of the set's key that t names by kid,
// for t's algorithm; notOurs when there is none.
func verificationKey(snap *config.Snapshot, t *jwt.Token, notOurs error) (any, error) {
	kid, _ := t.Header["kid"].(string)
	for i := range snap.Keys.Keys {
		k := &snap.Keys.Keys[i]
		if k.ID == kid && k.Signer() != nil && k.Algorithm == t.Method.Alg() {
			return k.Signer().Public(), nil
		}
	}
	return nil, notOurs
}
