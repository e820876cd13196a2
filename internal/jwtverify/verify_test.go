package jwtverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// signer is a test key pair with the kid the verifier knows it by.
type signer struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func newSigner(t testing.TB, alg, kid string) *signer {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, alg: alg, method: methods[alg], priv: priv}
}

func (s *signer) key(t testing.TB) *Key {
	t.Helper()
	k, err := NewKey(s.kid, s.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (s *signer) set(t testing.TB) *Static {
	t.Helper()
	st, err := NewStatic(s.key(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// claims are a valid assertion's claims at t0.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "shop.worker", "sub": "shop.worker", "aud": "https://auth.example.com",
		"exp": t0.Add(2 * time.Minute).Unix(), "iat": t0.Unix(), "jti": "7f1c",
	}
}

func policy() *Policy {
	return &Policy{Issuer: "shop.worker", Subject: "shop.worker", Audiences: []string{"https://auth.example.com", "https://auth.example.com/token"},
		MaxExpiresIn: 5 * time.Minute, MaxLifetime: 10 * time.Minute, RequireJTI: true}
}

func (s *signer) sign(t testing.TB, c jwt.MapClaims, edit func(h map[string]any)) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.method, c)
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	if edit != nil {
		edit(tok.Header)
	}
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyAccepts(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			s := newSigner(t, alg, "k-"+alg)
			c, err := Verify(s.sign(t, claims(), nil), s.set(t), policy(), t0)
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != "shop.worker" || c.ID != "7f1c" || !c.ExpiresAt.Equal(t0.Add(2*time.Minute)) || !c.IssuedAt.Equal(t0) {
				t.Errorf("claims %+v", c)
			}
		})
	}
	// A set with one key needs no kid.
	s := newSigner(t, "ES256", "")
	if _, err := Verify(s.sign(t, claims(), nil), s.set(t), policy(), t0); err != nil {
		t.Errorf("no kid, one key: %v", err)
	}
}

// TestVerifyRules: each rule refuses the token that breaks it, and only it.
// Removing a rule from Verify makes its case fail.
func TestVerifyRules(t *testing.T) {
	es := newSigner(t, "ES256", "es")
	rs := newSigner(t, "RS256", "rs")
	other := newSigner(t, "ES256", "es") // same kid, another key
	keys, err := NewStatic(es.key(t), rs.key(t))
	if err != nil {
		t.Fatal(err)
	}
	with := func(edit func(c jwt.MapClaims)) jwt.MapClaims {
		c := claims()
		edit(c)
		return c
	}
	cases := []struct {
		name  string
		token string
		pol   func(p *Policy)
		want  Reason
	}{
		// alg: from the allow-list, and the key's own.
		{"alg none", unsigned(t, map[string]any{"alg": "none", "kid": "es"}, claims()), nil, ReasonAlgorithm},
		{"alg HS256 keyed with the public key", hmacWith(t, es, claims()), nil, ReasonAlgorithm},
		{"alg ES384", unsigned(t, map[string]any{"alg": "ES384", "kid": "es"}, claims()), nil, ReasonAlgorithm},
		{"alg of another key", es.sign(t, claims(), func(h map[string]any) { h["kid"] = "rs" }), nil, ReasonAlgorithm},
		// key source: only the set's keys; never one the token brings.
		{"unknown kid", es.sign(t, claims(), func(h map[string]any) { h["kid"] = "nope" }), nil, ReasonUnknownKey},
		{"no kid with two keys", es.sign(t, claims(), func(h map[string]any) { delete(h, "kid") }), nil, ReasonUnknownKey},
		{"key of the same kid from elsewhere", other.sign(t, claims(), nil), nil, ReasonSignature},
		{"embedded jwk header", other.sign(t, claims(), func(h map[string]any) {
			h["kid"] = "attacker"
			h["jwk"] = other.key(t).JWK()
		}), nil, ReasonUnknownKey},
		{"jku header", other.sign(t, claims(), func(h map[string]any) { h["jku"] = "https://evil.example/jwks" }), nil, ReasonSignature},
		{"tampered payload", tamper(es.sign(t, claims(), nil)), nil, ReasonSignature},
		{"crit extension", es.sign(t, claims(), func(h map[string]any) { h["crit"] = []string{"b64"}; h["b64"] = false }), nil, ReasonMalformed},
		// iss
		{"wrong iss", es.sign(t, with(func(c jwt.MapClaims) { c["iss"] = "shop.other" }), nil), nil, ReasonIssuer},
		{"no iss", es.sign(t, with(func(c jwt.MapClaims) { delete(c, "iss") }), nil), nil, ReasonIssuer},
		{"policy without issuer", es.sign(t, with(func(c jwt.MapClaims) { delete(c, "iss") }), nil), func(p *Policy) { p.Issuer = "" }, ReasonIssuer},
		// aud
		{"wrong aud", es.sign(t, with(func(c jwt.MapClaims) { c["aud"] = "https://other.example.com" }), nil), nil, ReasonAudience},
		{"aud prefix", es.sign(t, with(func(c jwt.MapClaims) { c["aud"] = "https://auth.example.com/" }), nil), nil, ReasonAudience},
		{"no aud", es.sign(t, with(func(c jwt.MapClaims) { delete(c, "aud") }), nil), nil, ReasonAudience},
		{"aud array without us", es.sign(t, with(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }), nil), nil, ReasonAudience},
		// sub
		{"wrong sub", es.sign(t, with(func(c jwt.MapClaims) { c["sub"] = "shop.other" }), nil), nil, ReasonSubject},
		// exp, nbf, iat
		{"no exp", es.sign(t, with(func(c jwt.MapClaims) { delete(c, "exp") }), nil), nil, ReasonNoExpiry},
		{"expired", es.sign(t, with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-31 * time.Second).Unix() }), nil), nil, ReasonExpired},
		{"not yet valid", es.sign(t, with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Minute).Unix() }), nil), nil, ReasonNotYetValid},
		{"issued in the future", es.sign(t, with(func(c jwt.MapClaims) { c["iat"] = t0.Add(time.Minute).Unix() }), nil), nil, ReasonNotYetValid},
		{"exp too far away", es.sign(t, with(func(c jwt.MapClaims) { c["exp"] = t0.Add(time.Hour).Unix() }), nil), func(p *Policy) { p.MaxLifetime = 0 }, ReasonExpiresTooLate},
		{"lifetime too long", es.sign(t, with(func(c jwt.MapClaims) {
			c["iat"] = t0.Add(-time.Hour).Unix()
		}), nil), nil, ReasonLifetime},
		{"no iat with a lifetime cap", es.sign(t, with(func(c jwt.MapClaims) { delete(c, "iat") }), nil), nil, ReasonLifetime},
		// jti
		{"no jti", es.sign(t, with(func(c jwt.MapClaims) { delete(c, "jti") }), nil), nil, ReasonNoJTI},
		// shape
		{"two parts", "a.b", nil, ReasonMalformed},
		{"bad date", es.sign(t, with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), nil), nil, ReasonMalformed},
		{"too long", strings.Repeat("a", MaxTokenSize+1), nil, ReasonMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := policy()
			if tc.pol != nil {
				tc.pol(p)
			}
			_, err := Verify(tc.token, keys, p, t0)
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	// Each rule is a rule of the policy: without it the token passes.
	relaxed := []struct {
		name  string
		token string
		pol   func(p *Policy)
	}{
		{"no jti without RequireJTI", es.sign(t, with(func(c jwt.MapClaims) { delete(c, "jti") }), nil), func(p *Policy) { p.RequireJTI = false }},
		{"any sub without Subject", es.sign(t, with(func(c jwt.MapClaims) { c["sub"] = "x" }), nil), func(p *Policy) { p.Subject = "" }},
		{"exp far away without MaxExpiresIn", es.sign(t, with(func(c jwt.MapClaims) { c["exp"] = t0.Add(time.Hour).Unix() }), nil), func(p *Policy) { p.MaxExpiresIn, p.MaxLifetime = 0, 0 }},
		{"expired within leeway", es.sign(t, with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-20 * time.Second).Unix() }), nil), nil},
	}
	for _, tc := range relaxed {
		t.Run(tc.name, func(t *testing.T) {
			p := policy()
			if tc.pol != nil {
				tc.pol(p)
			}
			if _, err := Verify(tc.token, keys, p, t0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestClaimsOfServiceAccountTokens(t *testing.T) {
	s := newSigner(t, "RS256", "sa")
	c := claims()
	c["sub"] = "system:serviceaccount:shop:worker"
	c["kubernetes.io"] = map[string]any{
		"namespace":      "shop",
		"serviceaccount": map[string]any{"name": "worker", "uid": "9f0c"},
		"pod":            map[string]any{"name": "worker-0", "uid": "1a2b"},
	}
	c["repository"] = "org/app"
	c["run_attempt"] = 2
	p := policy()
	p.Subject = "system:serviceaccount:shop:worker"
	got, err := Verify(s.sign(t, c, nil), s.set(t), p, t0)
	if err != nil {
		t.Fatal(err)
	}
	if k := got.Kubernetes; k == nil || k.Namespace != "shop" || k.ServiceAccount.UID != "9f0c" || k.Pod == nil || k.Pod.Name != "worker-0" {
		t.Errorf("kubernetes.io claims: %+v", got.Kubernetes)
	}
	if v, ok := got.StringClaim("repository"); !ok || v != "org/app" {
		t.Errorf("repository = %q, %v", v, ok)
	}
	if _, ok := got.StringClaim("run_attempt"); ok {
		t.Error("a number is not a string claim")
	}
	if _, ok := got.StringClaim("missing"); ok {
		t.Error("a missing claim was found")
	}
}

func TestPeek(t *testing.T) {
	s := newSigner(t, "ES256", "k1")
	u, err := Peek(s.sign(t, claims(), nil))
	if err != nil || u.Alg != "ES256" || u.Kid != "k1" || u.Issuer != "shop.worker" || u.Subject != "shop.worker" {
		t.Fatalf("Peek = %+v, %v", u, err)
	}
	if _, err := Peek("x.y"); ReasonOf(err) != ReasonMalformed {
		t.Errorf("Peek of garbage: %v", err)
	}
}

func TestReasonOf(t *testing.T) {
	if ReasonOf(nil) != "" || ReasonOf(errors.New("x")) != ReasonMalformed {
		t.Error("ReasonOf")
	}
}

func b64json(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func unsigned(t testing.TB, header map[string]any, c jwt.MapClaims) string {
	return b64json(t, header) + "." + b64json(t, c) + "."
}

// hmacWith signs with HS256 keyed by the public key's JWK bytes: the
// algorithm-confusion forgery.
func hmacWith(t testing.TB, s *signer, c jwt.MapClaims) string {
	t.Helper()
	pub, _ := json.Marshal(s.key(t).JWK())
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = s.kid
	out, err := tok.SignedString(pub)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tamper(token string) string {
	parts := strings.Split(token, ".")
	var c map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(b, &c)
	c["sub"] = "shop.admin"
	b, _ = json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// spyKeys hands out a key for whatever algorithm it is asked, as a careless
// key source would, and records what it was asked.
type spyKeys struct {
	key   *Key
	asked []string
}

func (s *spyKeys) Lookup(_, alg string) (*Key, error) {
	s.asked = append(s.asked, alg)
	k := *s.key
	k.Alg = alg
	return &k, nil
}

// The allow-list holds even against a key source that would serve any
// algorithm: none and HMAC never reach it.
func TestAlgorithmAllowListBeforeKeys(t *testing.T) {
	es := newSigner(t, "ES256", "es")
	spy := &spyKeys{key: es.key(t)}
	for _, tok := range []string{
		unsigned(t, map[string]any{"alg": "none", "kid": "es"}, claims()),
		hmacWith(t, es, claims()),
		unsigned(t, map[string]any{"alg": "PS256", "kid": "es"}, claims()),
	} {
		if _, err := Verify(tok, spy, policy(), t0); ReasonOf(err) != ReasonAlgorithm {
			t.Errorf("got %v, want an algorithm refusal", err)
		}
	}
	if len(spy.asked) != 0 {
		t.Errorf("the key source was asked for %v", spy.asked)
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			s := newSigner(b, alg, "k")
			keys := s.set(b)
			tok := s.sign(b, claims(), nil)
			p := policy()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Verify(tok, keys, p, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
