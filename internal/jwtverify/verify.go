package jwtverify

import (
	"bytes"
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

// Errors of Lookup; Verify wraps them in an *Error.
var (
	// ErrUnknownKey: no key of the set has the token's kid. A Remote set
	// asks for a refresh in the background.
	ErrUnknownKey = errors.New("unknown key")
	// ErrKeysUnavailable: a Remote set has no keys yet.
	ErrKeysUnavailable = errors.New("keys not available yet")
	// ErrAlgorithm: the token's alg is not the key's.
	ErrAlgorithm = errors.New("algorithm does not fit the key")
)

// Reason says which rule a token broke, for security logs and metrics:
// a short, fixed word.
type Reason string

// The reasons, one per rule of Verify and Policy.
const (
	ReasonMalformed       Reason = "malformed"
	ReasonAlgorithm       Reason = "algorithm"
	ReasonUnknownKey      Reason = "unknown_key"
	ReasonKeysUnavailable Reason = "keys_unavailable"
	ReasonSignature       Reason = "signature"
	ReasonIssuer          Reason = "issuer"
	ReasonAudience        Reason = "audience"
	ReasonSubject         Reason = "subject"
	ReasonExpired         Reason = "expired"
	ReasonNoExpiry        Reason = "no_expiry"
	ReasonNotYetValid     Reason = "not_yet_valid"
	ReasonLifetime        Reason = "lifetime"
	ReasonExpiresTooLate  Reason = "expires_too_late"
	ReasonNoJTI           Reason = "no_jti"
)

// Error is a refused token: the rule it broke and a detail for logs. The
// detail may quote the token's claims, never the token.
type Error struct {
	Reason Reason
	Detail string
	Err    error
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Detail }
func (e *Error) Unwrap() error { return e.Err }

func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf is the Reason of a Verify error; "" for nil.
func ReasonOf(err error) Reason {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Reason
	}
	return ReasonMalformed
}

// DefaultLeeway is the clock skew allowed around exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// MaxTokenSize bounds a token Verify will parse.
const MaxTokenSize = 16 << 10

// Policy is what a token must satisfy besides its signature.
type Policy struct {
	// Issuer is the exact iss required.
	Issuer string
	// Audiences: aud must contain at least one of them.
	Audiences []string
	// Subject, when set, is the exact sub required.
	Subject string
	// Leeway is the clock skew allowed; DefaultLeeway when zero.
	Leeway time.Duration
	// MaxLifetime, when set, requires iat and refuses a token whose
	// exp - iat is longer: legacy and long-lived tokens.
	MaxLifetime time.Duration
	// MaxExpiresIn, when set, refuses a token whose exp is further than
	// this from now: a client assertion must be short-lived.
	MaxExpiresIn time.Duration
	// RequireJTI refuses a token without a jti.
	RequireJTI bool
}

// Claims are a verified token's claims.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ID        string // jti
	ExpiresAt time.Time
	IssuedAt  time.Time // zero without iat
	NotBefore time.Time // zero without nbf
	// Kubernetes is the kubernetes.io claim of a service-account token;
	// nil in other tokens.
	Kubernetes *KubernetesClaims

	payload []byte
	extra   map[string]json.RawMessage
}

// KubernetesClaims are what a Kubernetes service-account token says of the
// workload it was issued to.
type KubernetesClaims struct {
	Namespace      string        `json:"namespace"`
	ServiceAccount ObjectClaims  `json:"serviceaccount"`
	Pod            *ObjectClaims `json:"pod,omitempty"`
	Node           *ObjectClaims `json:"node,omitempty"`
}

// ObjectClaims name a Kubernetes object.
type ObjectClaims struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// Payload is the verified token's JSON payload, for the claims the
// fields above do not hold (a request object's parameters). It is not a
// copy: the caller must not change it.
func (c *Claims) Payload() []byte { return c.payload }

// StringClaim returns a top-level claim that is a JSON string.
func (c *Claims) StringClaim(name string) (string, bool) {
	if c.extra == nil {
		if err := json.Unmarshal(c.payload, &c.extra); err != nil {
			return "", false
		}
	}
	raw, ok := c.extra[name]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// Unverified is what a token's header and payload say, before anything is
// checked: for choosing the key set and policy that will verify it.
type Unverified struct {
	Alg, Kid        string
	Issuer, Subject string
}

// Peek reads a token's header and payload without verifying anything.
func Peek(token string) (*Unverified, error) {
	p, err := split(token)
	if err != nil {
		return nil, err
	}
	return &Unverified{Alg: p.header.Alg, Kid: p.header.Kid, Issuer: p.claims.Iss, Subject: p.claims.Sub}, nil
}

type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// wireClaims are the claims as they are encoded.
type wireClaims struct {
	Iss        string            `json:"iss"`
	Sub        string            `json:"sub"`
	Aud        audience          `json:"aud"`
	Jti        string            `json:"jti"`
	Exp        *numericDate      `json:"exp"`
	Iat        *numericDate      `json:"iat"`
	Nbf        *numericDate      `json:"nbf"`
	Kubernetes *KubernetesClaims `json:"kubernetes.io"`
}

type parsed struct {
	header        header
	claims        wireClaims
	payload       []byte
	signingString string
	signature     []byte
}

func split(token string) (*parsed, error) {
	if len(token) > MaxTokenSize {
		return nil, refuse(ReasonMalformed, "the token is longer than %d bytes", MaxTokenSize)
	}
	h, rest, ok1 := strings.Cut(token, ".")
	body, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return nil, refuse(ReasonMalformed, "not a compact JWS (three parts)")
	}
	b64 := base64.RawURLEncoding.Strict()
	p := &parsed{signingString: token[:len(h)+1+len(body)]}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, refuse(ReasonMalformed, "the header is not base64url")
	}
	if err := json.Unmarshal(hb, &p.header); err != nil {
		return nil, refuse(ReasonMalformed, "the header is not a JSON object")
	}
	if p.payload, err = b64.DecodeString(body); err != nil {
		return nil, refuse(ReasonMalformed, "the payload is not base64url")
	}
	if err := json.Unmarshal(p.payload, &p.claims); err != nil {
		return nil, refuse(ReasonMalformed, "the payload is not a JSON object of valid claims")
	}
	if p.signature, err = b64.DecodeString(sig); err != nil {
		return nil, refuse(ReasonMalformed, "the signature is not base64url")
	}
	return p, nil
}

// Verify checks token's signature with a key of keys and its claims
// against p at now, and returns the claims. The algorithm must be one of
// Algorithms and the key's own; the key is never taken from the token
// (jwk, jku, x5u and x5c headers are ignored). Refusals are *Error.
func Verify(token string, keys KeySet, p *Policy, now time.Time) (*Claims, error) {
	t, _, err := verifySignature(token, keys)
	if err != nil {
		return nil, err
	}
	return checkClaims(t, p, now)
}

// verifySignature parses a token and checks its algorithm and signature,
// returning it and the key that verified it.
func verifySignature(token string, keys KeySet) (*parsed, *Key, error) {
	t, err := split(token)
	if err != nil {
		return nil, nil, err
	}
	alg := t.header.Alg
	if !slices.Contains(Algorithms, alg) {
		return nil, nil, refuse(ReasonAlgorithm, "alg %q is not one of %s", alg, strings.Join(Algorithms, ", "))
	}
	if len(t.header.Crit) > 0 && !bytes.Equal(t.header.Crit, []byte("null")) {
		// RFC 7515 §4.1.11: extensions we do not understand must fail.
		return nil, nil, refuse(ReasonMalformed, "the header has crit extensions")
	}
	key, err := keys.Lookup(t.header.Kid, alg)
	switch {
	case errors.Is(err, ErrAlgorithm):
		return nil, nil, &Error{Reason: ReasonAlgorithm, Detail: err.Error(), Err: err}
	case errors.Is(err, ErrKeysUnavailable):
		return nil, nil, &Error{Reason: ReasonKeysUnavailable, Detail: err.Error(), Err: err}
	case err != nil:
		return nil, nil, &Error{Reason: ReasonUnknownKey, Detail: err.Error(), Err: err}
	}
	if !key.verify(t.signingString, t.signature) {
		return nil, nil, refuse(ReasonSignature, "the signature does not verify with key %q", key.ID)
	}
	return t, key, nil
}

func checkClaims(t *parsed, p *Policy, now time.Time) (*Claims, error) {
	w := &t.claims
	leeway := p.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	if p.Issuer == "" || w.Iss != p.Issuer {
		return nil, refuse(ReasonIssuer, "iss %q is not %q", clip(w.Iss), p.Issuer)
	}
	if !slices.ContainsFunc(p.Audiences, func(a string) bool { return slices.Contains(w.Aud, a) }) {
		return nil, refuse(ReasonAudience, "aud %q names none of %q", clipAll(w.Aud), p.Audiences)
	}
	if p.Subject != "" && w.Sub != p.Subject {
		return nil, refuse(ReasonSubject, "sub %q is not %q", clip(w.Sub), p.Subject)
	}
	if w.Exp == nil {
		return nil, refuse(ReasonNoExpiry, "the token has no exp")
	}
	exp := w.Exp.Time
	if !now.Before(exp.Add(leeway)) {
		return nil, refuse(ReasonExpired, "expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if w.Nbf != nil && now.Add(leeway).Before(w.Nbf.Time) {
		return nil, refuse(ReasonNotYetValid, "not valid before %s", w.Nbf.Time.UTC().Format(time.RFC3339))
	}
	if w.Iat != nil && now.Add(leeway).Before(w.Iat.Time) {
		return nil, refuse(ReasonNotYetValid, "issued in the future, at %s", w.Iat.Time.UTC().Format(time.RFC3339))
	}
	if p.MaxLifetime > 0 {
		if w.Iat == nil {
			return nil, refuse(ReasonLifetime, "the token has no iat, so its lifetime is unknown")
		}
		if life := exp.Sub(w.Iat.Time); life > p.MaxLifetime {
			return nil, refuse(ReasonLifetime, "lifetime %s (exp - iat) is longer than %s", life, p.MaxLifetime)
		}
	}
	if p.MaxExpiresIn > 0 && exp.Sub(now) > p.MaxExpiresIn+leeway {
		return nil, refuse(ReasonExpiresTooLate, "exp is %s away, more than %s", exp.Sub(now).Round(time.Second), p.MaxExpiresIn)
	}
	if p.RequireJTI && w.Jti == "" {
		return nil, refuse(ReasonNoJTI, "the token has no jti")
	}
	c := &Claims{Issuer: w.Iss, Subject: w.Sub, Audience: w.Aud, ID: w.Jti, ExpiresAt: exp, Kubernetes: w.Kubernetes, payload: t.payload}
	if w.Iat != nil {
		c.IssuedAt = w.Iat.Time
	}
	if w.Nbf != nil {
		c.NotBefore = w.Nbf.Time
	}
	return c, nil
}

// clip bounds a token-chosen value quoted in an error.
func clip(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func clipAll(ss []string) []string {
	if len(ss) > 4 {
		ss = ss[:4]
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clip(s)
	}
	return out
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
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*a = ss
	return nil
}

// numericDate is a JSON number of seconds since the epoch (RFC 7519 §2).
type numericDate struct{ time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	// b is a JSON value the decoder has checked: one that starts as a
	// number is one, and ParseFloat reads every JSON number (without
	// another round through the decoder). A string or a boolean is refused.
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return errors.New("a date is a number of seconds")
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return errors.New("date out of range")
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9))
	return nil
}
