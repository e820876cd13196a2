// Package jose signs the compact JWS the token server issues (RFC 7515,
// RFC 7518): one Signer per key, its protected headers encoded once.
package jose

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// es256Key signs ES256 JWS (RFC 7518 §3.4): ECDSA over P-256 with
// SHA-256, the signature written as r and s of 32 bytes each, not ASN.1.
//
// The arithmetic is crypto/ecdsa's, constant-time and with hedged nonces
// (FIPS 186-5). A hand-written signer measured about 26 µs faster per
// token here, but it computed s with math/big, which is not constant-time
// in the private key; a token server's signing key is the one secret that
// must never leak, so the faster signer is not worth it. What the token
// path saves instead is around the signature: the header encoded once per
// key (jws.go) and the claims written without reflection (package
// jsonappend).
type es256Key struct {
	priv *ecdsa.PrivateKey
}

func newES256Key(priv *ecdsa.PrivateKey) (*es256Key, error) {
	if priv.Curve != elliptic.P256() {
		return nil, errors.New("ES256 needs a P-256 key")
	}
	return &es256Key{priv: priv}, nil
}

// sign returns the JWS signature of input. ecdsa.SignASN1 rather than
// ecdsa.Sign: the latter parses the same DER into two big.Ints, four
// allocations per token only to be written back as bytes.
func (k *es256Key) sign(input []byte) ([]byte, error) {
	digest := sha256.Sum256(input)
	der, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		return nil, err
	}
	return derToRS(der)
}

// derToRS turns an ASN.1 ECDSA-Sig-Value (SEQUENCE of two INTEGERs) into r
// and s as two 32-byte big-endian halves (RFC 7518 §3.4).
func derToRS(der []byte) ([]byte, error) {
	var seq cryptobyte.String
	var r, s []byte
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() || len(r) > 32 || len(s) > 32 {
		return nil, errors.New("ecdsa returned a malformed signature")
	}
	sig := make([]byte, 64)
	copy(sig[32-len(r):32], r)
	copy(sig[64-len(s):], s)
	return sig, nil
}
