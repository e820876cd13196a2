package resourceserver

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

func publicJWK(t *testing.T, alg string) map[string]any {
	t.Helper()
	return mustGenerateKey(t, alg).publicJWK()
}

func jwksDoc(keys ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

func allowedAll() map[string]bool {
	m := map[string]bool{}
	for a := range algorithms {
		m[a] = true
	}
	return m
}

func TestParseJWKSKeepsUsableKeys(t *testing.T) {
	es, rs, ed := publicJWK(t, es256), publicJWK(t, rs256), publicJWK(t, edDSA)
	noAlg := publicJWK(t, es256)
	delete(noAlg, "alg")
	enc := publicJWK(t, es256)
	enc["use"] = "enc"
	hmac := map[string]any{"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0"}
	keys, err := parseJWKS(jwksDoc(es, rs, ed, noAlg, enc, hmac), allowedAll())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []map[string]any{es, rs, ed, noAlg} {
		if keys[want["kid"].(string)] == nil {
			t.Errorf("key %v missing", want)
		}
	}
	if got := keys[noAlg["kid"].(string)]; got == nil || got.alg != "ES256" {
		t.Errorf("alg not inferred: %+v", got)
	}
	if keys[enc["kid"].(string)] != nil || keys["hmac"] != nil {
		t.Error("encryption or symmetric key kept")
	}
	if len(keys) != 4 {
		t.Errorf("%d keys, want 4", len(keys))
	}
}

func TestParseJWKSRejectsUnsafeKeys(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := publicJWK(t, es256)
	offCurve["y"] = b64(make([]byte, 32))
	shortX := publicJWK(t, edDSA)
	shortX["x"] = b64(make([]byte, 31))
	mismatched := publicJWK(t, es256)
	mismatched["alg"] = "RS256"
	wrongCurve := publicJWK(t, es256)
	wrongCurve["alg"] = "ES384"
	verifyOps := publicJWK(t, es256)
	verifyOps["key_ops"] = []string{"encrypt"}
	noKid := publicJWK(t, es256)
	delete(noKid, "kid")
	dup1, dup2 := publicJWK(t, es256), publicJWK(t, es256)
	dup2["kid"] = dup1["kid"]
	cases := map[string]map[string]any{
		"RSA 1024":                {"kty": "RSA", "kid": "small", "alg": "RS256", "n": b64(small.N.Bytes()), "e": b64(big.NewInt(int64(small.E)).Bytes())},
		"EC point off the curve":  offCurve,
		"Ed25519 key too short":   shortX,
		"alg not the key's type":  mismatched,
		"alg not the key's curve": wrongCurve,
		"key_ops without verify":  verifyOps,
		"no kid":                  noKid,
		"alg none":                {"kty": "EC", "kid": "n", "alg": "none"},
	}
	for name, jwk := range cases {
		t.Run(name, func(t *testing.T) {
			if keys, err := parseJWKS(jwksDoc(jwk), allowedAll()); err == nil {
				t.Fatalf("parsed: %v", keys)
			}
		})
	}
	t.Run("duplicate kid", func(t *testing.T) {
		keys, err := parseJWKS(jwksDoc(dup1, dup2, publicJWK(t, edDSA)), allowedAll())
		if err != nil || len(keys) != 1 || keys[dup1["kid"].(string)] != nil {
			t.Fatalf("keys = %v, err = %v", keys, err)
		}
	})
	t.Run("not allowed", func(t *testing.T) {
		if _, err := parseJWKS(jwksDoc(publicJWK(t, rs256)), map[string]bool{"ES256": true}); err == nil || !strings.Contains(err.Error(), "no usable") {
			t.Fatalf("err = %v", err)
		}
	})
}
