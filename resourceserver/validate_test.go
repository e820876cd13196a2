package resourceserver

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestValidateAcceptsGatehouseTokens(t *testing.T) {
	for _, alg := range []string{es256, rs256, edDSA} {
		t.Run(alg, func(t *testing.T) {
			f := newIssuer(t, alg)
			v := f.validator(nil)
			c, err := v.Validate(context.Background(), f.token(nil))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			now := f.clock.Now()
			if c.Issuer != f.URL || c.Subject != "alice" || c.ClientID != "web" || c.ID != "jti-1" {
				t.Errorf("claims = %+v", c)
			}
			if !c.HasScope("orders:read") || !c.HasScope("profile") || c.HasScope("orders") || len(c.Scopes) != 2 {
				t.Errorf("scopes = %q", c.Scopes)
			}
			if len(c.Audience) != 2 || c.Audience[0] != testAudience {
				t.Errorf("audience = %q", c.Audience)
			}
			if !c.IssuedAt.Equal(now) || !c.ExpiresAt.Equal(now.Add(5*time.Minute)) || !c.AuthTime.Equal(now.Add(-time.Minute)) || !c.NotBefore.IsZero() {
				t.Errorf("times = iat %v exp %v auth_time %v nbf %v", c.IssuedAt, c.ExpiresAt, c.AuthTime, c.NotBefore)
			}
		})
	}
}

func TestValidateAcceptsVariants(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(nil)
	now := f.clock.Now()
	cases := map[string]func(h map[string]any, c jwt.MapClaims){
		"typ application/at+jwt": func(h map[string]any, c jwt.MapClaims) { h["typ"] = "application/at+jwt" },
		"typ in upper case":      func(h map[string]any, c jwt.MapClaims) { h["typ"] = "AT+JWT" },
		"aud as a string":        func(h map[string]any, c jwt.MapClaims) { c["aud"] = testAudience },
		"expired within leeway": func(h map[string]any, c jwt.MapClaims) {
			c["exp"] = now.Add(-29 * time.Second).Unix()
			c["iat"] = now.Add(-time.Hour).Unix()
		},
		"iat skewed within leeway": func(h map[string]any, c jwt.MapClaims) {
			c["iat"] = now.Add(29 * time.Second).Unix()
		},
		"nbf in the past": func(h map[string]any, c jwt.MapClaims) { c["nbf"] = now.Add(-time.Second).Unix() },
		"no scope":        func(h map[string]any, c jwt.MapClaims) { delete(c, "scope") },
		"fractional dates": func(h map[string]any, c jwt.MapClaims) {
			c["iat"], c["exp"] = float64(now.Unix())+0.25, float64(now.Unix())+300.5
		},
		"unknown header": func(h map[string]any, c jwt.MapClaims) { h["x-extra"] = true },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Validate(context.Background(), f.token(edit)); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	f := newIssuer(t, es256, rs256)
	ecKey, rsaKey := f.key(0), f.key(1)
	v := f.validator(nil)
	now := f.clock.Now()
	other, err := generateKey(es256)
	if err != nil {
		t.Fatal(err)
	}
	good := f.token(nil)
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrMalformed},
		{"two segments", parts[0] + "." + parts[1], ErrMalformed},
		{"four segments", good + ".x", ErrMalformed},
		{"header not base64url", "!!!." + parts[1] + "." + parts[2], ErrMalformed},
		{"header padded", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformed},
		{"header not JSON", enc([]byte("not json")) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"header a JSON array", enc([]byte("[]")) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"signature not base64url", parts[0] + "." + parts[1] + ".***", ErrMalformed},
		{"too long", parts[0] + "." + strings.Repeat("A", maxTokenSize) + "." + parts[2], ErrMalformed},
		{"no typ", f.token(func(h map[string]any, c jwt.MapClaims) { delete(h, "typ") }), ErrTokenType},
		{"typ JWT (an ID token)", f.token(func(h map[string]any, c jwt.MapClaims) { h["typ"] = "JWT" }), ErrTokenType},
		{"typ not a string", f.token(func(h map[string]any, c jwt.MapClaims) { h["typ"] = 1 }), ErrTokenType},
		{"alg none", unsigned(f, "none", ecKey.ID), ErrAlgorithm},
		{"alg None", unsigned(f, "None", ecKey.ID), ErrAlgorithm},
		{"alg HS256 keyed with the public key", hmacWithPublicKey(t, f, ecKey), ErrAlgorithm},
		{"no alg", unsigned(f, "", ecKey.ID), ErrAlgorithm},
		{"alg of another key", f.tokenWith(rsaKey, func(h map[string]any, c jwt.MapClaims) { h["kid"] = ecKey.ID }), ErrAlgorithm},
		{"alg PS256 with an RS256 key", f.tokenWith(rsaKey, func(h map[string]any, c jwt.MapClaims) { h["alg"] = "PS256" }), ErrAlgorithm},
		{"no kid", f.token(func(h map[string]any, c jwt.MapClaims) { delete(h, "kid") }), ErrMalformed},
		{"crit header", f.token(func(h map[string]any, c jwt.MapClaims) { h["crit"] = []string{"exp"} }), ErrMalformed},
		{"unknown kid", f.tokenWith(other, nil), ErrUnknownKey},
		{"signed by another key under a known kid", f.tokenWith(other, func(h map[string]any, c jwt.MapClaims) { h["kid"] = ecKey.ID }), ErrSignature},
		{"payload tampered", parts[0] + "." + enc([]byte(`{"iss":"`+f.URL+`","sub":"mallory"}`)) + "." + parts[2], ErrSignature},
		{"signature truncated", parts[0] + "." + parts[1] + "." + parts[2][:40], ErrSignature},
		{"other issuer", f.token(func(h map[string]any, c jwt.MapClaims) { c["iss"] = "http://127.0.0.1:1" }), ErrIssuer},
		{"issuer with trailing slash", f.token(func(h map[string]any, c jwt.MapClaims) { c["iss"] = f.URL + "/" }), ErrIssuer},
		{"no issuer", f.token(func(h map[string]any, c jwt.MapClaims) { delete(c, "iss") }), ErrIssuer},
		{"other audience", f.token(func(h map[string]any, c jwt.MapClaims) { c["aud"] = []string{"billing-api"} }), ErrAudience},
		{"audience prefix", f.token(func(h map[string]any, c jwt.MapClaims) { c["aud"] = "orders" }), ErrAudience},
		{"no audience", f.token(func(h map[string]any, c jwt.MapClaims) { delete(c, "aud") }), ErrAudience},
		{"expired beyond leeway", f.token(func(h map[string]any, c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-31*time.Second).Unix()
		}), ErrExpired},
		{"iat in the future", f.token(func(h map[string]any, c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(31*time.Second).Unix(), now.Add(time.Hour).Unix()
		}), ErrNotYetValid},
		{"nbf in the future", f.token(func(h map[string]any, c jwt.MapClaims) { c["nbf"] = now.Add(31 * time.Second).Unix() }), ErrNotYetValid},
		{"exp before iat", f.token(func(h map[string]any, c jwt.MapClaims) { c["exp"] = now.Unix(); c["iat"] = now.Unix() }), ErrMalformed},
		{"no exp", f.token(func(h map[string]any, c jwt.MapClaims) { delete(c, "exp") }), ErrMissingClaim},
		{"exp null", f.token(func(h map[string]any, c jwt.MapClaims) { c["exp"] = nil }), ErrMissingClaim},
		{"exp out of range", f.token(func(h map[string]any, c jwt.MapClaims) { c["exp"] = 1e300 }), ErrMalformed},
		{"aud a number", f.token(func(h map[string]any, c jwt.MapClaims) { c["aud"] = 7 }), ErrMalformed},
		{"no iat", f.token(func(h map[string]any, c jwt.MapClaims) { delete(c, "iat") }), ErrMissingClaim},
		{"no sub", f.token(func(h map[string]any, c jwt.MapClaims) { delete(c, "sub") }), ErrMissingClaim},
		{"no client_id", f.token(func(h map[string]any, c jwt.MapClaims) { delete(c, "client_id") }), ErrMissingClaim},
		{"no jti", f.token(func(h map[string]any, c jwt.MapClaims) { delete(c, "jti") }), ErrMissingClaim},
		{"exp not a number", f.token(func(h map[string]any, c jwt.MapClaims) { c["exp"] = "tomorrow" }), ErrMalformed},
		{"claims a JSON array", signedPayload(t, ecKey, `[1,2]`), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Validate(context.Background(), tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %+v, %v; want %v", c, err, tc.want)
			}
			if c != nil {
				t.Fatalf("claims returned with an error: %+v", c)
			}
		})
	}
	// The good token still passes: the failures above are the edits'.
	if _, err := v.Validate(context.Background(), good); err != nil {
		t.Fatalf("good token: %v", err)
	}
}

func TestValidateAlgorithmAllowList(t *testing.T) {
	f := newIssuer(t, es256, edDSA)
	v := f.validator(func(c *Config) { c.Algorithms = []string{"EdDSA"} })
	if _, err := v.Validate(context.Background(), f.tokenWith(f.key(0), nil)); !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("ES256 token with only EdDSA allowed: %v", err)
	}
	if _, err := v.Validate(context.Background(), f.tokenWith(f.key(1), nil)); err != nil {
		t.Fatalf("EdDSA token: %v", err)
	}
}

func TestValidateLeeway(t *testing.T) {
	f := newIssuer(t)
	expiredAgo := func(d time.Duration) string {
		return f.token(func(h map[string]any, c jwt.MapClaims) {
			now := f.clock.Now()
			c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-d).Unix()
		})
	}
	strict := f.validator(func(c *Config) { c.Leeway = -1 })
	if _, err := strict.Validate(context.Background(), expiredAgo(time.Second)); !errors.Is(err, ErrExpired) {
		t.Errorf("no leeway, expired 1s ago: %v", err)
	}
	wide := f.validator(func(c *Config) { c.Leeway = 2 * time.Minute })
	if _, err := wide.Validate(context.Background(), expiredAgo(90*time.Second)); err != nil {
		t.Errorf("2m leeway, expired 90s ago: %v", err)
	}
	if _, err := wide.Validate(context.Background(), expiredAgo(121*time.Second)); !errors.Is(err, ErrExpired) {
		t.Errorf("2m leeway, expired 121s ago: %v", err)
	}
	// The token's exp is exclusive (RFC 7519 §4.1.4): at exp it is expired.
	if _, err := strict.Validate(context.Background(), expiredAgo(0)); !errors.Is(err, ErrExpired) {
		t.Errorf("no leeway, at exp: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	f := newIssuer(t)
	cases := map[string]Config{
		"no issuer":            {Audience: testAudience},
		"no audience":          {Issuer: f.URL},
		"issuer not a URL":     {Issuer: "auth", Audience: testAudience},
		"issuer with a query":  {Issuer: f.URL + "?tenant=a", Audience: testAudience},
		"alg none":             {Issuer: f.URL, Audience: testAudience, Algorithms: []string{"none"}},
		"alg HS256":            {Issuer: f.URL, Audience: testAudience, Algorithms: []string{"ES256", "HS256"}},
		"metadata for another": {Issuer: f.URL + "/tenants/a", Audience: testAudience},
		"static JWKS unusable": {Issuer: f.URL, Audience: testAudience, Keys: StaticJWKS([]byte(`{"keys":[]}`))},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			cfg.HTTPClient = f.srv.Client()
			if _, err := New(context.Background(), cfg); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}
