package server

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
)

// es256Key signs ES256 JWS (RFC 7518 §3.4): ECDSA over P-256 with SHA-256.
//
// It exists because the token endpoint's cost is mostly this signature, and
// crypto/ecdsa spends over half of its time on what a token server can do
// otherwise: it derives each nonce through an HMAC-SHA-512 DRBG (FIPS 186-5
// hedged signatures) and inverts it in constant time by exponentiation.
// Here:
//
//   - the nonce k is drawn uniformly from crypto/rand (384 random bits
//     reduced mod n: the bias is below 2^-128), as FIPS 186-5 §6.4.1 allows;
//   - kG is computed by crypto/ecdh's constant-time P-256 scalar base
//     multiplication, and r is its x coordinate mod n;
//   - k⁻¹ is computed with math/big on a blinded value, (k·b)⁻¹·b for a
//     fresh random b, so that the variable-time inversion never sees k;
//   - s = k⁻¹(e + r·d) mod n.
//
// Only signing is ours: tokens are verified with golang-jwt/v5 and
// crypto/ecdsa, and the tests check every signature this produces that way.
type es256Key struct {
	d *big.Int
}

var p256N = elliptic.P256().Params().N

func newES256Key(priv *ecdsa.PrivateKey) (*es256Key, error) {
	if priv.Curve != elliptic.P256() {
		return nil, errors.New("ES256 needs a P-256 key")
	}
	raw, err := priv.Bytes()
	if err != nil {
		return nil, err
	}
	return &es256Key{d: new(big.Int).SetBytes(raw)}, nil
}

// sign returns the JWS signature of input: r and s, 32 bytes each
// (RFC 7518 §3.4), not ASN.1.
func (k *es256Key) sign(input []byte) ([]byte, error) {
	digest := sha256.Sum256(input)
	e := new(big.Int).SetBytes(digest[:])
	var random [96]byte
	for range 8 {
		_, _ = rand.Read(random[:]) // never fails (Go 1.24+)
		nonce := new(big.Int).SetBytes(random[:48])
		nonce.Mod(nonce, p256N)
		r, ok := es256R(nonce)
		if !ok {
			continue
		}
		blind := new(big.Int).SetBytes(random[48:])
		blind.Mod(blind, p256N)
		if blind.Sign() == 0 {
			continue
		}
		inv := new(big.Int).Mul(nonce, blind)
		inv.Mod(inv, p256N)
		inv.ModInverse(inv, p256N)
		inv.Mul(inv, blind)
		inv.Mod(inv, p256N)
		s := new(big.Int).Mul(r, k.d)
		s.Add(s, e)
		s.Mod(s, p256N)
		s.Mul(s, inv)
		s.Mod(s, p256N)
		if s.Sign() == 0 {
			continue
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig, nil
	}
	// Each round fails with probability about 2^-256.
	return nil, errors.New("ES256: no usable nonce")
}

// es256R is the x coordinate of kG mod n, false when k or r is zero.
func es256R(k *big.Int) (*big.Int, bool) {
	if k.Sign() == 0 {
		return nil, false
	}
	var scalar [32]byte
	k.FillBytes(scalar[:])
	priv, err := ecdh.P256().NewPrivateKey(scalar[:])
	if err != nil {
		return nil, false
	}
	point := priv.PublicKey().Bytes() // 0x04 || X || Y
	r := new(big.Int).SetBytes(point[1:33])
	r.Mod(r, p256N)
	return r, r.Sign() != 0
}
