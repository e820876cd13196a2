package server

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// idTokenClaims is an ID token (OpenID Connect Core §2), with the claims
// of the person that its scopes release (§5.4). They are in the ID token,
// not only at userinfo, because relying parties such as the Kubernetes API
// server read username and groups from the ID token alone.
type idTokenClaims struct {
	jwt.RegisteredClaims
	AuthTime int64    `json:"auth_time,omitempty"`
	Nonce    string   `json:"nonce,omitempty"`
	AtHash   string   `json:"at_hash,omitempty"`
	AZP      string   `json:"azp"`
	SID      string   `json:"sid,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	userClaims
}

// idTokenGrant is what an ID token is about beyond the access token's
// grant.
type idTokenGrant struct {
	tokenGrant
	// Nonce is the authorization request's, echoed exactly; empty on
	// refresh (Core §12.2: a refreshed ID token should not carry one).
	Nonce     string
	SessionID string
}

// isOpenIDRequest: a grant is an OpenID Connect one when it includes the
// openid scope (Core §3.1.2.1); only then is an ID token issued.
func isOpenIDRequest(scopes []string) bool { return slices.Contains(scopes, oidc.ScopeOpenID) }

// signIDToken signs an ID token for the client (Core §3.1.3.3, §3.1.3.6):
// aud is the client_id alone and azp names it too, so that a token for one
// client is never accepted by another; at_hash binds it to the access
// token it came with.
//
// It is signed with the client's idTokenSignedResponseAlg. Without one it
// is RS256 (Discovery §3's default), or the access-token key while a newly
// added RS256 key is still prepublished, as discovery lists both. A client
// that chose an algorithm gets that or nothing: its relying party accepts
// no other.
func (s *Server) signIDToken(snap *config.Snapshot, g idTokenGrant, accessToken string, now time.Time) (string, *Error) {
	key, e := idTokenKey(snap, g.Client, now)
	if e != nil {
		return "", e
	}
	atHash, err := leftHalfHash(key.Algorithm, accessToken)
	if err != nil {
		return "", serverError("at_hash: " + err.Error())
	}
	claims := idTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    snap.Issuer,
			Subject:   g.Subject,
			Audience:  jwt.ClaimStrings{g.Client.ID},
			ExpiresAt: jwt.NewNumericDate(now.Add(snap.Lifetimes(g.Client).IDToken)),
			IssuedAt:  jwt.NewNumericDate(now),
		},
		Nonce:      g.Nonce,
		AtHash:     atHash,
		AZP:        g.Client.ID,
		SID:        g.SessionID,
		AMR:        passwordAMR,
		userClaims: releasedClaims(g.Person, g.Scopes, g.IDTokenClaims...),
	}
	if !g.AuthTime.IsZero() {
		claims.AuthTime = g.AuthTime.Unix()
	}
	payload, err := json.Marshal(claims)
	if err == nil {
		payload, err = appendMappedClaims(payload, g.MappedClaims)
	}
	if err != nil {
		return "", s.signingFailed("ID token", key, err)
	}
	signed, err := s.signJWS(snap, key, true, payload)
	if err != nil {
		return "", s.signingFailed("ID token", key, err)
	}
	return signed, nil
}

// idTokenKey is the key that signs the client's ID tokens (and logout
// tokens) at now: see signIDToken.
func idTokenKey(snap *config.Snapshot, client *config.Client, now time.Time) (*keyset.Key, *Error) {
	var key *keyset.Key
	var ok bool
	if alg := client.IDTokenAlg; alg != "" {
		if snap.Keys != nil {
			key, ok = snap.Keys.KeyFor(alg, now)
		}
		if !ok {
			return nil, newError(ErrTemporarilyUnavailable, "no "+alg+" key signs yet (a new key is published for the prepublish period before it signs); try again later")
		}
	} else if key, ok = snap.IDTokenKey(keyset.RS256, now); !ok {
		return nil, newError(ErrTemporarilyUnavailable, "the server has no signing key yet")
	}
	return key, nil
}

// verifyIDTokenHint checks an id_token_hint (Core §3.1.2.1): an ID token
// this server signed, with any key still in the set, for this issuer. It
// may have expired: a relying party sends back the ID token it has,
// however old.
func verifyIDTokenHint(snap *config.Snapshot, hint string) (*idTokenClaims, bool) {
	if snap.Keys == nil || strings.Count(hint, ".") != 2 {
		return nil, false
	}
	claims := &idTokenClaims{}
	p := jwt.NewParser(jwt.WithValidMethods([]string{keyset.ES256, keyset.RS256, keyset.EdDSA}), jwt.WithoutClaimsValidation())
	t, err := p.ParseWithClaims(hint, claims, func(t *jwt.Token) (any, error) {
		// An access token or a logout token is not an ID token, whoever
		// signed it: ID tokens are typ JWT.
		if typ, _ := t.Header["typ"].(string); typ != "" && !strings.EqualFold(typ, "JWT") {
			return nil, errNotIDToken
		}
		return verificationKey(snap, t, errNotIDToken)
	})
	if err != nil || !t.Valid || claims.Issuer != snap.Issuer || claims.Subject == "" || claims.AZP == "" {
		return nil, false
	}
	return claims, true
}

const errNotIDToken = constError("not an ID token of this server")

// leftHalfHash is at_hash (Core §3.1.3.6): the base64url of the left half
// of the hash of the token's ASCII octets, with the hash of the JWS
// algorithm: SHA-256 for RS256 and ES256, SHA-512 for EdDSA with Ed25519
// (the hash Ed25519 itself uses, as OpenID's errata and go-oidc agree).
func leftHalfHash(alg, token string) (string, error) {
	var h hash.Hash
	switch alg {
	case keyset.RS256, keyset.ES256:
		h = sha256.New()
	case keyset.EdDSA:
		h = sha512.New()
	default:
		return "", constError("no at_hash for algorithm " + alg)
	}
	h.Write([]byte(token))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}
