package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
)

// Signer signs compact JWS (RFC 7515 §7.1) with one key. Its protected
// headers are encoded once per configuration snapshot, not per token.
type Signer struct {
	// atHeader, idHeader and logoutHeader are BASE64URL(header) + ".":
	// typ at+jwt for access tokens (RFC 9068 §2.1, so that one is never
	// mistaken for an ID token or any other JWT), typ JWT for ID tokens,
	// typ logout+jwt for logout tokens (OpenID Connect Back-Channel
	// Logout 1.0 §2.4, so that one is never taken for an ID token).
	atHeader, idHeader, logoutHeader string
	sign                             func(input []byte) ([]byte, error)
	// sigLen is the longest encoded signature, so that a token's buffer
	// is allocated once at the right size.
	sigLen int
}

// NewSigner builds the signer of a key that has a private part.
func NewSigner(k *keyset.Key) (*Signer, error) {
	signer := k.Signer()
	if signer == nil {
		return nil, errors.New("the key has no private part")
	}
	// 64 bytes for ES256 and Ed25519 (RFC 7518 §3.4, RFC 8032 §5.1.6);
	// 683 characters hold a 4096-bit RSA signature.
	js := &Signer{atHeader: encodeJWSHeader(k, "at+jwt"), idHeader: encodeJWSHeader(k, "JWT"), logoutHeader: encodeJWSHeader(k, "logout+jwt"),
		sigLen: base64.RawURLEncoding.EncodedLen(64)}
	if k.Algorithm == keyset.RS256 {
		js.sigLen = 683
	}
	switch k.Algorithm {
	case keyset.ES256:
		priv, ok := signer.(*ecdsa.PrivateKey)
		if !ok {
			return nil, errors.New("an ES256 key must be an ECDSA private key")
		}
		es, err := newES256Key(priv)
		if err != nil {
			return nil, err
		}
		js.sign = es.sign
	case keyset.RS256:
		// RFC 7518 §3.3: RSASSA-PKCS1-v1_5 with SHA-256.
		js.sign = func(input []byte) ([]byte, error) {
			digest := sha256.Sum256(input)
			return signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		}
	case keyset.EdDSA:
		// RFC 8037 §3.1: Ed25519 signs the message itself.
		js.sign = func(input []byte) ([]byte, error) { return signer.Sign(nil, input, crypto.Hash(0)) }
	default:
		return nil, errors.New("algorithm " + k.Algorithm + " is not supported")
	}
	return js, nil
}

func encodeJWSHeader(k *keyset.Key, typ string) string {
	h, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{k.Algorithm, k.ID, typ})
	return base64.RawURLEncoding.EncodeToString(h) + "."
}

// SignAccessToken signs payload as an access token (typ at+jwt).
func (js *Signer) SignAccessToken(payload []byte) (string, error) {
	return js.compact(js.atHeader, payload)
}

// SignIDToken signs payload as an ID token (typ JWT).
func (js *Signer) SignIDToken(payload []byte) (string, error) {
	return js.compact(js.idHeader, payload)
}

// SignLogoutToken signs payload as a logout token (typ logout+jwt).
func (js *Signer) SignLogoutToken(payload []byte) (string, error) {
	return js.compact(js.logoutHeader, payload)
}

// compact is header (an encoded header and its dot), the encoded payload,
// a dot and the encoded signature.
func (js *Signer) compact(header string, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(header)+enc.EncodedLen(len(payload))+1+js.sigLen)
	buf = append(buf, header...)
	buf = enc.AppendEncode(buf, payload)
	sig, err := js.sign(buf)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	return string(enc.AppendEncode(buf, sig)), nil
}

// Signers are a key set's signers by key; a key that cannot sign has
// none, and signing with it reports why.
type Signers map[*keyset.Key]signerOrError

type signerOrError struct {
	signer *Signer
	err    error
}

// NewSigners builds the signers of every key in set that has a private
// part; set may be nil.
func NewSigners(set *keyset.Set) Signers {
	out := Signers{}
	if set == nil {
		return out
	}
	for i := range set.Keys {
		k := &set.Keys[i]
		if k.Signer() == nil {
			continue
		}
		js, err := NewSigner(k)
		out[k] = signerOrError{js, err}
	}
	return out
}

// Get returns k's signer, or why k cannot sign.
func (m Signers) Get(k *keyset.Key) (*Signer, error) {
	se, ok := m[k]
	if !ok {
		return nil, errors.New("the key " + k.ID + " has no signer")
	}
	return se.signer, se.err
}
