package jwtverify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// methods sign the tests' tokens: golang-jwt, not the code under test.
var methods = map[string]jwt.SigningMethod{
	"ES256": jwt.SigningMethodES256,
	"RS256": jwt.SigningMethodRS256,
	"EdDSA": jwt.SigningMethodEdDSA,
}

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
	ed := newSigner(t, "EdDSA", "ed")
	other := newSigner(t, "ES256", "es") // same kid, another key
	keys, err := NewStatic(es.key(t), rs.key(t), ed.key(t))
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
		// signature, under each algorithm
		{"tampered payload", tamper(es.sign(t, claims(), nil)), nil, ReasonSignature},
		{"tampered payload RS256", tamper(rs.sign(t, claims(), nil)), nil, ReasonSignature},
		{"tampered payload EdDSA", tamper(ed.sign(t, claims(), nil)), nil, ReasonSignature},
		{"ES256 signature in ASN.1 DER, not R || S", asDER(t, es.sign(t, claims(), nil)), nil, ReasonSignature},
		{"ES256 signature cut short", cut(es.sign(t, claims(), nil)), nil, ReasonSignature},
		{"RS256 signature cut short", cut(rs.sign(t, claims(), nil)), nil, ReasonSignature},
		{"EdDSA signature cut short", cut(ed.sign(t, claims(), nil)), nil, ReasonSignature},
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

// asDER re-encodes an ES256 token's R || S signature as the ASN.1 DER
// that crypto/ecdsa produces: the same signature in the wrong form.
func asDER(t testing.TB, token string) string {
	t.Helper()
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("not an ES256 signature: %v", err)
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
	if err != nil {
		t.Fatal(err)
	}
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(der)
}

// cut drops the signature's last byte.
func cut(token string) string {
	i := strings.LastIndexByte(token, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(token[i+1:])
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(sig[:len(sig)-1])
}

// ecdsaDER is what encoding/asn1 makes of r and s, whatever their leading
// bytes: zero, small, with the high bit set, with leading zero bytes.
func TestECDSADER(t *testing.T) {
	values := [][]byte{
		make([]byte, 32),
		append(make([]byte, 31), 1),
		append(make([]byte, 31), 0x80),
		append([]byte{0x80}, make([]byte, 31)...),
		append([]byte{0, 0, 0x7f}, make([]byte, 29)...),
		append([]byte{0xff}, make([]byte, 31)...),
	}
	for range 20 {
		v := make([]byte, 32)
		_, _ = rand.Read(v)
		values = append(values, v)
	}
	for _, r := range values {
		for _, s := range values {
			want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
			if err != nil {
				t.Fatal(err)
			}
			if got := ecdsaDER(nil, r, s); !bytes.Equal(got, want) {
				t.Fatalf("r %x s %x: %x, want %x", r, s, got, want)
			}
		}
	}
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

// BenchmarkVerify: a whole Verify per algorithm, next to the signature
// check alone through the standard library (signature_only), the floor
// no verifier of that algorithm goes below; the difference is parsing,
// claims and key lookup.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range Algorithms {
		s := newSigner(b, alg, "k")
		keys := s.set(b)
		tok := s.sign(b, claims(), nil)
		b.Run(alg, func(b *testing.B) {
			p := policy()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Verify(tok, keys, p, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/signature_only", func(b *testing.B) {
			check := stdlibCheck(b, s, tok)
			b.ReportAllocs()
			for b.Loop() {
				if !check() {
					b.Fatal("the signature does not verify")
				}
			}
		})
	}
}

// stdlibCheck is the token's signature check as one call of crypto/...,
// the input hashed and the signature decoded beforehand.
func stdlibCheck(b *testing.B, s *signer, token string) func() bool {
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(token[:i])
	h := sha256.Sum256(input)
	switch pub := s.priv.Public().(type) {
	case *ecdsa.PublicKey:
		der := ecdsaDER(nil, sig[:32], sig[32:])
		return func() bool { return ecdsa.VerifyASN1(pub, h[:], der) }
	case *rsa.PublicKey:
		return func() bool { return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil }
	case ed25519.PublicKey:
		return func() bool { return ed25519.Verify(pub, input, sig) }
	}
	b.Fatalf("key type %T", s.priv.Public())
	return nil
}
