package resourceserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultAlgorithms are the algorithms a Gatehouse server signs with
// (RFC 7518 §3.1, RFC 8037 §3.1).
var DefaultAlgorithms = []string{"ES256", "RS256", "EdDSA"}

// algorithms are the asymmetric JWS algorithms this package can verify.
// none and the HMAC family are absent on purpose: a resource server holds
// no shared secret, and accepting them is the classic JWT forgery.
var algorithms = map[string]jwt.SigningMethod{
	"ES256": jwt.SigningMethodES256,
	"ES384": jwt.SigningMethodES384,
	"ES512": jwt.SigningMethodES512,
	"RS256": jwt.SigningMethodRS256,
	"RS384": jwt.SigningMethodRS384,
	"RS512": jwt.SigningMethodRS512,
	"PS256": jwt.SigningMethodPS256,
	"PS384": jwt.SigningMethodPS384,
	"PS512": jwt.SigningMethodPS512,
	"EdDSA": jwt.SigningMethodEdDSA,
}

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3).
const minRSABits = 2048

// publicKey is one verification key from a JWKS.
type publicKey struct {
	id     string
	alg    string
	method jwt.SigningMethod
	key    crypto.PublicKey
}

// jsonWebKey holds the members of RFC 7517 §4 and RFC 7518 §6 we read.
type jsonWebKey struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	N      string   `json:"n"`
	E      string   `json:"e"`
}

// parseJWKS reads a JWK Set (RFC 7517 §5) and keeps the keys that can
// verify a token under allowed: signature keys with a kid whose algorithm
// is allowed. Keys it cannot use (encryption keys, other key types, a
// future algorithm) are skipped rather than failing the set, as §5
// requires; two keys sharing a kid are both dropped, since a token's kid
// could not say which one signed it. A set with no usable key is an error,
// so that a broken refresh never replaces working keys.
func parseJWKS(doc []byte, allowed map[string]bool) (map[string]*publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("JWKS is not valid JSON: %w", err)
	}
	keys := make(map[string]*publicKey, len(set.Keys))
	dup := map[string]bool{}
	var skipped []error
	for _, raw := range set.Keys {
		var j jsonWebKey
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, err)
			continue
		}
		k, err := j.publicKey()
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %q: %w", j.Kid, err))
			continue
		}
		if !allowed[k.alg] {
			continue
		}
		if _, seen := keys[k.id]; seen || dup[k.id] {
			delete(keys, k.id)
			dup[k.id] = true
			continue
		}
		keys[k.id] = k
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS has no usable signature key: %w", errors.Join(skipped...))
	}
	return keys, nil
}

func (j *jsonWebKey) publicKey() (*publicKey, error) {
	if j.Kid == "" {
		return nil, errors.New("no kid")
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %q is not sig", j.Use)
	}
	if len(j.KeyOps) > 0 && !slices.Contains(j.KeyOps, "verify") {
		return nil, errors.New("key_ops does not include verify")
	}
	alg := j.Alg
	if alg == "" {
		// RFC 7517 §4.4 makes alg optional; infer the only algorithm we
		// would use with the key's type.
		alg = defaultAlg(j.Kty, j.Crv)
	}
	method, ok := algorithms[alg]
	if !ok {
		return nil, fmt.Errorf("algorithm %q is not supported", alg)
	}
	key, err := j.decode(alg)
	if err != nil {
		return nil, err
	}
	return &publicKey{id: j.Kid, alg: alg, method: method, key: key}, nil
}

func defaultAlg(kty, crv string) string {
	switch {
	case kty == "EC" && crv == "P-256":
		return "ES256"
	case kty == "EC" && crv == "P-384":
		return "ES384"
	case kty == "EC" && crv == "P-521":
		return "ES512"
	case kty == "RSA":
		return "RS256"
	case kty == "OKP" && crv == "Ed25519":
		return "EdDSA"
	}
	return ""
}

// decode builds the public key and checks that it fits alg, so that a
// token's alg header can never make us use a key with the wrong primitive.
func (j *jsonWebKey) decode(alg string) (crypto.PublicKey, error) {
	b64 := base64.RawURLEncoding.Strict()
	switch alg {
	case "ES256", "ES384", "ES512":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if j.Kty != "EC" || j.Crv != curve.Params().Name {
			return nil, fmt.Errorf("%s needs an EC %s key", alg, curve.Params().Name)
		}
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		size := (curve.Params().BitSize + 7) / 8
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad EC coordinates")
		}
		point := append(append([]byte{4}, x...), y...)
		// ParseUncompressedPublicKey rejects points off the curve.
		return ecdsa.ParseUncompressedPublicKey(curve, point)
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		if j.Kty != "RSA" {
			return nil, fmt.Errorf("%s needs an RSA key", alg)
		}
		n, errN := b64.DecodeString(j.N)
		e, errE := b64.DecodeString(j.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA modulus or exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is shorter than %d", pub.N.BitLen(), minRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return nil, errors.New("bad RSA exponent")
		}
		return pub, nil
	case "EdDSA":
		if j.Kty != "OKP" || j.Crv != "Ed25519" {
			return nil, errors.New("EdDSA needs an OKP Ed25519 key")
		}
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("algorithm %q is not supported", alg)
}
