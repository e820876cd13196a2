package resourceserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"
)

// The algorithms a Gatehouse server signs with.
const (
	es256 = "ES256"
	rs256 = "RS256"
	edDSA = "EdDSA"
)

// testKey is a signing key like the ones a Gatehouse server holds, made
// with the standard library alone: this module's tests must not need the
// token server's packages (they live in another module). The JWKs built
// from it are written out member by member here, independently of the
// parser under test.
type testKey struct {
	ID        string
	Algorithm string
	signer    crypto.Signer
}

// Signer is the private key, in the type golang-jwt signs with.
func (k testKey) Signer() crypto.Signer { return k.signer }

// generateKey makes a key for alg (ES256, RS256 or EdDSA) with a random kid.
func generateKey(alg string) (testKey, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case es256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case rs256:
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case edDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return testKey{}, fmt.Errorf("no test keys for %q", alg)
	}
	if err != nil {
		return testKey{}, err
	}
	kid := make([]byte, 12)
	if _, err := rand.Read(kid); err != nil {
		return testKey{}, err
	}
	return testKey{ID: base64.RawURLEncoding.EncodeToString(kid), Algorithm: alg, signer: signer}, nil
}

func mustGenerateKey(t testing.TB, alg string) testKey {
	t.Helper()
	k, err := generateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publicJWK is the key's public half as a JWK (RFC 7517 §4, RFC 7518 §6,
// RFC 8037 §2), as the Gatehouse JWKS endpoint publishes it.
func (k testKey) publicJWK() map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := map[string]any{"kid": k.ID, "use": "sig", "alg": k.Algorithm}
	switch pub := k.signer.Public().(type) {
	case *ecdsa.PublicKey:
		point, _ := pub.Bytes() // 0x04 || X || Y, each of the curve's size
		size := (len(point) - 1) / 2
		jwk["kty"], jwk["crv"] = "EC", pub.Curve.Params().Name
		jwk["x"], jwk["y"] = b64(point[1:1+size]), b64(point[1+size:])
	case *rsa.PublicKey:
		jwk["kty"], jwk["n"], jwk["e"] = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	case ed25519.PublicKey:
		jwk["kty"], jwk["crv"], jwk["x"] = "OKP", "Ed25519", b64(pub)
	}
	return jwk
}

// jwksJSON is the JWK Set document (RFC 7517 §5) of the keys' public halves.
func jwksJSON(keys ...testKey) []byte {
	set := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		set = append(set, k.publicJWK())
	}
	doc, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return doc
}
