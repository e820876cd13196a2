// Package seal encrypts small values the token server hands to others to
// keep, so that they can neither read nor change them: the upstream
// login's flow cookie (state, nonce, PKCE verifier), which the browser
// keeps, and an upstream identity provider's refresh token, which the
// store keeps. AES-256-GCM (an AEAD) with keys every replica derives
// alike from the signing keys, one key per signing key and purpose; a
// sealed value names the key it was sealed with and opens while that key
// is in the key set.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
)

var (
	// ErrUnknownKey means the value was sealed with a key no longer in the key
	// set (or never in it).
	ErrUnknownKey = errors.New("sealed with a key that is not in the key set")
	// ErrInvalid means the value is not a sealed value, or it was changed, or
	// sealed for another purpose or context.
	ErrInvalid = errors.New("not a valid sealed value")
)

// Keys are the sealing keys of one purpose, by signing-key ID, derived
// once per configuration snapshot.
type Keys struct {
	aeads map[string]cipher.AEAD
}

// Derive derives the keys of purpose (a fixed string naming what they
// seal) from every key in set that has a private part; set may be nil.
func Derive(set *keyset.Set, purpose string) Keys {
	k := Keys{aeads: map[string]cipher.AEAD{}}
	if set == nil {
		return k
	}
	for i := range set.Keys {
		sk := &set.Keys[i]
		if sk.Signer() == nil {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(sk.Signer())
		if err != nil {
			continue
		}
		// HMAC as a key-derivation function (HKDF-Extract), keyed by the
		// purpose: the signing key's secret never serves two purposes
		// directly, and one purpose's keys open nothing of another's.
		m := hmac.New(sha256.New, []byte("gatehouse seal v1: "+purpose))
		m.Write(der)
		block, err := aes.NewCipher(m.Sum(nil))
		if err != nil {
			continue
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			continue
		}
		k.aeads[sk.ID] = aead
	}
	return k
}

// Seal encrypts plaintext with the key derived from signing key kid,
// bound to context (authenticated, not stored: Open needs the same
// context). The result is kid "." base64url(nonce || ciphertext).
func (k Keys) Seal(kid string, plaintext, context []byte) (string, error) {
	aead, ok := k.aeads[kid]
	if !ok {
		return "", ErrUnknownKey
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	_, _ = rand.Read(nonce)
	out := aead.Seal(nonce, nonce, plaintext, context)
	return kid + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value Seal made with the same context.
func (k Keys) Open(sealed string, context []byte) ([]byte, error) {
	kid, rest, ok := strings.Cut(sealed, ".")
	if !ok {
		return nil, ErrInvalid
	}
	aead, known := k.aeads[kid]
	if !known {
		return nil, ErrUnknownKey
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrInvalid
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], context)
	if err != nil {
		return nil, ErrInvalid
	}
	return plain, nil
}
