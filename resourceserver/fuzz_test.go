package resourceserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

var reasons = []error{ErrMalformed, ErrTokenType, ErrAlgorithm, ErrUnknownKey, ErrSignature,
	ErrIssuer, ErrAudience, ErrExpired, ErrNotYetValid, ErrMissingClaim}

// FuzzValidate feeds arbitrary tokens to a validator holding one key. The
// only token it may accept is the one that key signed; every refusal must
// carry one of the documented reasons; nothing may panic.
func FuzzValidate(f *testing.F) {
	iss := newIssuer(f)
	key := iss.key(0)
	v := iss.validator(func(c *Config) { c.Keys = StaticJWKS(jwksJSON(key)) })
	valid := iss.token(nil)
	f.Add(valid)
	f.Add(iss.token(func(h map[string]any, c jwt.MapClaims) { h["typ"] = "JWT" }))
	f.Add(unsigned(iss, "none", key.ID))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Validate(ctx, token)
		if err == nil {
			if token != valid {
				t.Fatalf("accepted a token the key did not sign: %q -> %+v", token, c)
			}
			return
		}
		if c != nil {
			t.Fatal("claims returned with an error")
		}
		for _, r := range reasons {
			if errors.Is(err, r) {
				return
			}
		}
		t.Fatalf("error without a documented reason: %v", err)
	})
}

// FuzzBearerToken feeds arbitrary Authorization headers and query strings
// to the header parser: it must return either a token that is valid
// RFC 6750 b64token syntax or a 400/401 refusal whose challenge stays
// inside its quotes.
func FuzzBearerToken(f *testing.F) {
	for _, seed := range [][2]string{
		{"Bearer abc.def.ghi", ""},
		{"bearer  abc==", ""},
		{"Bearer", ""},
		{"Basic d2ViOnNlY3JldA==", ""},
		{"Bearer a\"b", ""},
		{"", "access_token=abc"},
		{"Bearer abc", "access_token=abc&x=1"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, header, query string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.RawQuery = query
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		token, e := bearerToken(r)
		if e == nil {
			if !validB64Token(token) {
				t.Fatalf("accepted token %q", token)
			}
			return
		}
		if token != "" || (e.Status != http.StatusBadRequest && e.Status != http.StatusUnauthorized) {
			t.Fatalf("refusal %+v with token %q", e, token)
		}
		ch := e.challenge("realm")
		for i := 0; i < len(ch); i++ {
			if ch[i] < 0x20 || ch[i] > 0x7e {
				t.Fatalf("challenge has byte %#x: %q", ch[i], ch)
			}
		}
	})
}
