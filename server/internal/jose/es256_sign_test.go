package jose

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"strconv"
	"testing"
)

// Every ES256 signature verifies with crypto/ecdsa in the JWS form, and
// two signatures of one input differ (the nonce is random).
func TestES256SignaturesVerify(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := newES256Key(priv)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range 300 {
		input := []byte("header.payload-" + strconv.Itoa(i%10))
		sig, err := k.sign(input)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != 64 {
			t.Fatalf("signature of %d bytes, want 64 (RFC 7518 §3.4)", len(sig))
		}
		if seen[string(sig)] {
			t.Fatal("a signature repeated: the nonce is not random")
		}
		seen[string(sig)] = true
		digest := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(&priv.PublicKey, digest[:], r, s) {
			t.Fatalf("signature %d does not verify", i)
		}
		digest[0] ^= 1
		if ecdsa.Verify(&priv.PublicKey, digest[:], r, s) {
			t.Fatal("a signature verifies for another input")
		}
	}
	if _, err := newES256Key(mustKey(t, elliptic.P384())); err == nil {
		t.Error("a P-384 key was accepted for ES256")
	}
}

func mustKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	priv, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}
