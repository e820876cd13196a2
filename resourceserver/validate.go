package resourceserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxTokenSize bounds the work an unauthenticated caller can make us do.
// Gatehouse tokens are well under 2 KiB.
const maxTokenSize = 16 << 10

// Claims are a validated access token's claims (RFC 9068 §2.2).
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ClientID  string
	Scopes    []string
	ID        string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// NotBefore and AuthTime are zero when the token does not carry them.
	NotBefore time.Time
	AuthTime  time.Time
}

// HasScope reports whether the token was granted scope.
func (c *Claims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// ClientSubjectPrefix begins the sub of a token a client got for itself
// (client_credentials): "client:" followed by its client_id. Gatehouse
// refuses user subjects that start with it, so the two never collide.
const ClientSubjectPrefix = "client:"

// IsClient reports whether the token was issued to a client acting for
// itself (client_credentials), with no user involved: its sub is
// ClientSubjectPrefix followed by its client_id.
func (c *Claims) IsClient() bool { return c.Subject == ClientSubjectPrefix+c.ClientID }

// UserSubject returns the subject of the user on whose behalf the token
// was issued, and false for a client's own token. Key per-user data by
// this, never by Subject alone: a client's own token has a Subject too.
func (c *Claims) UserSubject() (string, bool) {
	if clientNamespace(c.Subject) {
		return "", false
	}
	return c.Subject, true
}

// clientNamespace reports whether sub starts with ClientSubjectPrefix, in
// any case, as Gatehouse's check on user subjects does.
func clientNamespace(sub string) bool {
	return len(sub) >= len(ClientSubjectPrefix) && strings.EqualFold(sub[:len(ClientSubjectPrefix)], ClientSubjectPrefix)
}

// tokenClaims is the JSON form. Its own date and audience types decode
// without the allocations of generic ones: this runs on every request.
type tokenClaims struct {
	Issuer    string      `json:"iss"`
	Subject   string      `json:"sub"`
	Audience  audience    `json:"aud"`
	ExpiresAt numericDate `json:"exp"`
	NotBefore numericDate `json:"nbf"`
	IssuedAt  numericDate `json:"iat"`
	ID        string      `json:"jti"`
	ClientID  string      `json:"client_id"`
	Scope     string      `json:"scope"`
	AuthTime  numericDate `json:"auth_time"`
}

// numericDate is RFC 7519 §2's NumericDate: seconds since the epoch, a
// JSON number, possibly fractional. set is false when the claim is absent
// or null.
type numericDate struct {
	time.Time
	set bool
}

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = numericDate{}
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<50 {
		return errors.New("not a NumericDate")
	}
	sec, frac := math.Modf(f)
	*d = numericDate{Time: time.Unix(int64(sec), int64(frac*1e9)), set: true}
	return nil
}

// audience is aud: one string or an array of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

var b64 = base64.RawURLEncoding.Strict()

// Validate checks a JWT access token as RFC 9068 §4 prescribes and returns
// its claims. Checks run cheapest first, and nothing from the payload is
// read before the signature has been verified. On failure the error wraps
// one of the Err* reasons.
func (v *Validator) Validate(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxTokenSize {
		return nil, fmt.Errorf("%w: the token is longer than %d bytes", ErrMalformed, maxTokenSize)
	}
	headerPart, rest, ok1 := strings.Cut(token, ".")
	payloadPart, sigPart, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sigPart, ".") {
		return nil, fmt.Errorf("%w: the token is not a signed JWT (header.payload.signature)", ErrMalformed)
	}
	headerJSON, err := b64.DecodeString(headerPart)
	if err != nil {
		return nil, fmt.Errorf("%w: the JWT header is not base64url", ErrMalformed)
	}
	var header map[string]any
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return nil, fmt.Errorf("%w: the JWT header is not a JSON object", ErrMalformed)
	}
	// RFC 9068 §4 step 1 and RFC 8725 §3.11: explicit typing keeps an ID
	// token or any other JWT from this issuer from passing as an access
	// token. Media type names compare case-insensitively (RFC 7515 §4.1.9).
	typ, _ := header["typ"].(string)
	if t := strings.ToLower(typ); t != "at+jwt" && t != "application/at+jwt" {
		return nil, fmt.Errorf("%w: typ is not at+jwt", ErrTokenType)
	}
	alg, _ := header["alg"].(string)
	if !v.allowed[alg] {
		return nil, fmt.Errorf("%w: alg is not on the allow-list", ErrAlgorithm)
	}
	// RFC 7515 §4.1.11: we understand no extension, so any crit fails.
	if _, ok := header["crit"]; ok {
		return nil, fmt.Errorf("%w: the JWT header has critical extensions", ErrMalformed)
	}
	kid, _ := header["kid"].(string)
	if kid == "" {
		return nil, fmt.Errorf("%w: the JWT header has no kid", ErrMalformed)
	}
	sig, err := b64.DecodeString(sigPart)
	if err != nil {
		return nil, fmt.Errorf("%w: the JWT signature is not base64url", ErrMalformed)
	}
	key, err := v.keys.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	// The key decides the algorithm (RFC 8725 §3.1): a header cannot make
	// us verify an RSA key with PSS, or any key with another primitive.
	if key.alg != alg {
		return nil, fmt.Errorf("%w: alg is not the algorithm of the key kid names", ErrAlgorithm)
	}
	if err := key.method.Verify(token[:len(headerPart)+1+len(payloadPart)], sig, key.key); err != nil {
		return nil, ErrSignature
	}

	payload, err := b64.DecodeString(payloadPart)
	if err != nil {
		return nil, fmt.Errorf("%w: the JWT payload is not base64url", ErrMalformed)
	}
	var tc tokenClaims
	if err := json.Unmarshal(payload, &tc); err != nil {
		return nil, fmt.Errorf("%w: the JWT claims are not a valid JSON object", ErrMalformed)
	}
	return v.checkClaims(&tc)
}

// checkClaims applies RFC 9068 §4 steps 2 to 5 to signed claims.
func (v *Validator) checkClaims(tc *tokenClaims) (*Claims, error) {
	// RFC 9068 §4 step 2: exact match, no normalisation.
	if tc.Issuer != v.issuer {
		return nil, fmt.Errorf("%w: the token was not issued by %s", ErrIssuer, v.issuer)
	}
	if !slices.Contains(tc.Audience, v.audience) {
		return nil, fmt.Errorf("%w: the token is not meant for %s", ErrAudience, v.audience)
	}
	switch {
	case !tc.ExpiresAt.set:
		return nil, fmt.Errorf("%w: exp", ErrMissingClaim)
	case !tc.IssuedAt.set:
		return nil, fmt.Errorf("%w: iat", ErrMissingClaim)
	case tc.Subject == "":
		return nil, fmt.Errorf("%w: sub", ErrMissingClaim)
	case tc.ClientID == "":
		return nil, fmt.Errorf("%w: client_id", ErrMissingClaim)
	case tc.ID == "":
		return nil, fmt.Errorf("%w: jti", ErrMissingClaim)
	case clientNamespace(tc.Subject) && tc.Subject != ClientSubjectPrefix+tc.ClientID:
		// Gatehouse issues no such token: a sub in the clients' namespace
		// names the token's own client, or IsClient and UserSubject
		// would not tell a client from a user.
		return nil, fmt.Errorf("%w: sub starts with %q but is not the token's client_id", ErrMalformed, ClientSubjectPrefix)
	}
	now := v.now()
	exp, iat := tc.ExpiresAt.Time, tc.IssuedAt.Time
	if !now.Before(exp.Add(v.leeway)) {
		return nil, ErrExpired
	}
	if iat.After(now.Add(v.leeway)) {
		return nil, fmt.Errorf("%w: iat is in the future", ErrNotYetValid)
	}
	if !exp.After(iat) {
		return nil, fmt.Errorf("%w: exp is not after iat", ErrMalformed)
	}
	c := &Claims{
		Issuer:    tc.Issuer,
		Subject:   tc.Subject,
		Audience:  []string(tc.Audience),
		ClientID:  tc.ClientID,
		Scopes:    strings.Fields(tc.Scope),
		ID:        tc.ID,
		IssuedAt:  iat,
		ExpiresAt: exp,
	}
	if tc.NotBefore.set {
		if tc.NotBefore.After(now.Add(v.leeway)) {
			return nil, fmt.Errorf("%w: nbf is in the future", ErrNotYetValid)
		}
		c.NotBefore = tc.NotBefore.Time
	}
	if tc.AuthTime.set {
		c.AuthTime = tc.AuthTime.Time
	}
	return c, nil
}
