package jwtverify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func jwksOf(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jwkMap(t testing.TB, k *Key) map[string]any {
	t.Helper()
	j := k.JWK()
	m := map[string]any{"kty": j.Kty, "kid": j.Kid}
	for name, v := range map[string]string{"crv": j.Crv, "x": j.X, "y": j.Y, "n": j.N, "e": j.E} {
		if v != "" {
			m[name] = v
		}
	}
	return m
}

func TestParseJWKS(t *testing.T) {
	es := newSigner(t, "ES256", "es").key(t)
	rs := newSigner(t, "RS256", "rs").key(t)
	ed := newSigner(t, "EdDSA", "ed").key(t)

	set, err := ParseJWKS(jwksOf(t, jwkMap(t, es), jwkMap(t, rs), jwkMap(t, ed),
		map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}, // skipped: not ours to use
		map[string]any{"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys()) != 3 {
		t.Fatalf("kept %d keys, want 3", len(set.Keys()))
	}
	for _, k := range []*Key{es, rs, ed} {
		got, err := set.Lookup(k.ID, k.Alg)
		if err != nil || got.Alg != k.Alg {
			t.Errorf("Lookup(%s): %v, %v", k.ID, got, err)
		}
	}

	withAlg := jwkMap(t, es)
	withAlg["alg"] = "RS256"
	encryption := jwkMap(t, rs)
	encryption["use"] = "enc"
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallKey := jwkMap(t, &Key{ID: "small", Public: &small.PublicKey})
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPoint, _ := ecPriv.PublicKey.Bytes() // 0x04 || X || Y
	ecD, _ := ecPriv.Bytes()
	privDoc, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "p",
		"x": b64(ecPoint[1:33]), "y": b64(ecPoint[33:]), "d": b64(ecD)}}})
	dup := jwkMap(t, rs)
	dup["kid"] = "es"
	for _, tc := range []struct {
		name string
		doc  []byte
		want string
	}{
		{"not JSON", []byte("<html>"), "not valid JSON"},
		{"empty", []byte(`{"keys":[]}`), "no keys"},
		{"only an HMAC key", jwksOf(t, map[string]any{"kty": "oct", "k": "c2VjcmV0"}), "no usable key"},
		{"alg that does not fit", jwksOf(t, withAlg), "can only verify ES256"},
		{"encryption key", jwksOf(t, encryption), `use "enc" is not sig`},
		{"RSA 1024", jwksOf(t, smallKey), "shorter than 2048"},
		{"a private key", privDoc, "private key"},
		{"two keys, one kid", jwksOf(t, jwkMap(t, es), dup), `two keys have the kid "es"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJWKS(tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestParsePEM(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"}, NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	privDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})

	keys, err := ParseKeys(append(append([]byte{}, pubPEM...), certPEM...))
	if err != nil || len(keys) != 2 || keys[0].Alg != "ES256" || keys[0].ID != keys[1].ID {
		t.Fatalf("ParseKeys = %v, %v (one key twice: same thumbprint kid)", keys, err)
	}
	if _, err := ParseKeys(append(append([]byte{}, certPEM...), privPEM...)); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("a private key was accepted: %v", err)
	}
	if _, err := ParseKeys([]byte("hello")); err == nil {
		t.Error("no PEM was accepted")
	}
	es := newSigner(t, "ES256", "es").key(t)
	if keys, err := ParseKeys(append([]byte("\n "), jwksOf(t, jwkMap(t, es))...)); err != nil || len(keys) != 1 || keys[0].ID != "es" {
		t.Errorf("ParseKeys of a JWK Set = %v, %v", keys, err)
	}
}
