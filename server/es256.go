package server

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	"sync"
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

// es256Scratch holds the big integers of one signature, reused through
// es256Scratches: math/big reuses a value's memory when it is large
// enough, and a signature's arithmetic otherwise allocates about twenty
// times.
type es256Scratch struct {
	e, nonce, r, blind, inv, s, q big.Int
	random                        [96]byte
	scalar                        [32]byte
}

var es256Scratches = sync.Pool{New: func() any { return new(es256Scratch) }}

// sign returns the JWS signature of input: r and s, 32 bytes each
// (RFC 7518 §3.4), not ASN.1.
func (k *es256Key) sign(input []byte) ([]byte, error) {
	x := es256Scratches.Get().(*es256Scratch)
	defer es256Scratches.Put(x)
	digest := sha256.Sum256(input)
	x.e.SetBytes(digest[:])
	for range 8 {
		_, _ = rand.Read(x.random[:]) // never fails (Go 1.24+)
		x.nonce.SetBytes(x.random[:48])
		x.q.QuoRem(&x.nonce, p256N, &x.nonce)
		if !x.setR() {
			continue
		}
		x.blind.SetBytes(x.random[48:])
		x.q.QuoRem(&x.blind, p256N, &x.blind)
		if x.blind.Sign() == 0 {
			continue
		}
		x.inv.Mul(&x.nonce, &x.blind)
		x.q.QuoRem(&x.inv, p256N, &x.inv)
		x.inv.ModInverse(&x.inv, p256N)
		x.inv.Mul(&x.inv, &x.blind)
		x.q.QuoRem(&x.inv, p256N, &x.inv)
		x.s.Mul(&x.r, k.d)
		x.s.Add(&x.s, &x.e)
		x.q.QuoRem(&x.s, p256N, &x.s)
		x.s.Mul(&x.s, &x.inv)
		x.q.QuoRem(&x.s, p256N, &x.s)
		if x.s.Sign() == 0 {
			continue
		}
		sig := make([]byte, 64)
		x.r.FillBytes(sig[:32])
		x.s.FillBytes(sig[32:])
		return sig, nil
	}
	// Each round fails with probability about 2^-256.
	return nil, errors.New("ES256: no usable nonce")
}

// setR sets r to the x coordinate of nonce·G mod n; false when the nonce
// or r is zero. The values are non-negative and below 2^384, so QuoRem
// is the modulus.
func (x *es256Scratch) setR() bool {
	if x.nonce.Sign() == 0 {
		return false
	}
	x.nonce.FillBytes(x.scalar[:])
	priv, err := ecdh.P256().NewPrivateKey(x.scalar[:])
	if err != nil {
		return false
	}
	point := priv.PublicKey().Bytes() // 0x04 || X || Y
	x.r.SetBytes(point[1:33])
	x.q.QuoRem(&x.r, p256N, &x.r)
	return x.r.Sign() != 0
}
