package jwtverify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms are the JWS algorithms a Gatehouse server accepts from
// others (RFC 7518 §3.1, RFC 8037 §3.1). none and the HMAC family are
// absent on purpose: the server shares no secret with the signer, and
// accepting them is the classic forgery. Each key verifies exactly one of
// them, the one its type allows, whatever a token's header says.
var Algorithms = []string{"ES256", "RS256", "EdDSA"}

// MinRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3).
const MinRSABits = 2048

// Key is one public verification key.
type Key struct {
	// ID is the key's kid; a key published without one gets its RFC 7638
	// thumbprint.
	ID string
	// Alg is the one algorithm the key verifies.
	Alg    string
	Public crypto.PublicKey
	// onVerify, when set, is called at each signature check: the cache's
	// tests count them.
	onVerify func()
}

// NewKey makes a Key of a public key: EC P-256 (ES256), RSA of at least
// MinRSABits (RS256) or Ed25519 (EdDSA). An empty id becomes the RFC 7638
// thumbprint.
func NewKey(id string, public crypto.PublicKey) (*Key, error) {
	alg, err := algFor(public)
	if err != nil {
		return nil, err
	}
	if id == "" {
		tp, err := (&jose.JSONWebKey{Key: public}).Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("thumbprint: %w", err)
		}
		id = base64.RawURLEncoding.EncodeToString(tp)
	}
	return &Key{ID: id, Alg: alg, Public: public}, nil
}

// verify reports whether sig is the key's signature of signingInput under
// its one algorithm (RFC 7518 §3.3, §3.4; RFC 8037 §3.1). It calls the
// standard library directly: a client assertion is verified once, on the
// request path, and golang-jwt's ES256 would turn r and s into big.Ints
// that ecdsa.Verify turns back into the ASN.1 it verifies.
func (k *Key) verify(signingInput string, sig []byte) bool {
	if k.onVerify != nil {
		k.onVerify()
	}
	switch pub := k.Public.(type) {
	case *ecdsa.PublicKey:
		// RFC 7518 §3.4: R and S, 32 bytes each, big-endian.
		if len(sig) != 64 {
			return false
		}
		h := sha256.Sum256([]byte(signingInput))
		var der [72]byte
		return ecdsa.VerifyASN1(pub, h[:], ecdsaDER(der[:0], sig[:32], sig[32:]))
	case *rsa.PublicKey:
		h := sha256.Sum256([]byte(signingInput))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
	case ed25519.PublicKey:
		return ed25519.Verify(pub, []byte(signingInput), sig)
	}
	return false
}

// ecdsaDER appends the DER of ECDSA-Sig-Value (RFC 3279 §2.2.3), the
// SEQUENCE of the INTEGERs r and s given as unsigned big-endian bytes of
// at most 32 bytes each, so that every length fits in one byte.
func ecdsaDER(dst, r, s []byte) []byte {
	r, s = bytes.TrimLeft(r, "\x00"), bytes.TrimLeft(s, "\x00")
	intLen := func(v []byte) int {
		if len(v) == 0 || v[0]&0x80 != 0 {
			return len(v) + 1 // a leading zero: positive, or zero itself
		}
		return len(v)
	}
	appendInt := func(dst, v []byte) []byte {
		dst = append(dst, 0x02, byte(intLen(v)))
		if len(v) == 0 || v[0]&0x80 != 0 {
			dst = append(dst, 0)
		}
		return append(dst, v...)
	}
	dst = append(dst, 0x30, byte(2+intLen(r)+2+intLen(s)))
	return appendInt(appendInt(dst, r), s)
}

// algFor is the algorithm a public key verifies, or why it is refused.
func algFor(public crypto.PublicKey) (string, error) {
	switch k := public.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("EC key on %s: only P-256 (ES256) is accepted", k.Curve.Params().Name)
		}
		return "ES256", nil
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("RSA key of %d bits is shorter than %d", k.N.BitLen(), MinRSABits)
		}
		return "RS256", nil
	case ed25519.PublicKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("key type %T is not accepted: use EC P-256, RSA or Ed25519", public)
}

// KeySet is where verification keys come from: Static keys given in
// configuration, or a Remote JWK Set fetched in the background.
type KeySet interface {
	// Lookup returns the key a token's header names: the key with ID kid,
	// or with no kid the set's only key. The key's algorithm must be alg.
	// An unknown key is ErrUnknownKey; a remote set without keys yet is
	// ErrKeysUnavailable. Lookup never waits on the network.
	Lookup(kid, alg string) (*Key, error)
}

// Static is a fixed KeySet. Its zero value has no keys.
type Static struct {
	keys []*Key
}

// NewStatic makes a set of keys; two keys with one ID are an error, since
// a token's kid could not say which one signed it.
func NewStatic(keys ...*Key) (*Static, error) {
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.ID] {
			return nil, fmt.Errorf("two keys have the kid %q", k.ID)
		}
		seen[k.ID] = true
	}
	return &Static{keys: slices.Clone(keys)}, nil
}

// Keys returns the set's keys.
func (s *Static) Keys() []*Key { return slices.Clone(s.keys) }

// Lookup implements KeySet.
func (s *Static) Lookup(kid, alg string) (*Key, error) { return lookup(s.keys, kid, alg) }

func lookup(keys []*Key, kid, alg string) (*Key, error) {
	var found *Key
	switch {
	case kid != "":
		for _, k := range keys {
			if k.ID == kid {
				found = k
				break
			}
		}
	case len(keys) == 1:
		found = keys[0]
	default:
		return nil, fmt.Errorf("%w: the token names no kid and the key set has %d keys", ErrUnknownKey, len(keys))
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no key with kid %q", ErrUnknownKey, kid)
	}
	if found.Alg != alg {
		// RFC 8725 §3.1: the key decides the algorithm, not the token.
		return nil, fmt.Errorf("%w: key %q verifies %s, the token says %s", ErrAlgorithm, found.ID, found.Alg, alg)
	}
	return found, nil
}

// ParseJWKS reads a JWK Set (RFC 7517 §5) of public signature keys.
// Members it does not use are ignored, and so are keys of a type or
// algorithm it does not accept (§5: a set may hold keys for others); a
// private key, a key for encryption, or a set with no usable key is an
// error, so that a broken document never replaces working keys.
func ParseJWKS(doc []byte) (*Static, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("JWK Set is not valid JSON: %w", err)
	}
	var keys []*Key
	var skipped []error
	for i, raw := range set.Keys {
		k, err := parseJWK(raw)
		if errors.Is(err, errPrivate) {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		if len(skipped) == 0 {
			return nil, errors.New("JWK Set has no keys")
		}
		return nil, fmt.Errorf("JWK Set has no usable key: %w", errors.Join(skipped...))
	}
	return NewStatic(keys...)
}

var errPrivate = errors.New("a private key: only public keys belong in a key set")

func parseJWK(raw []byte) (*Key, error) {
	var j jose.JSONWebKey
	if err := j.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	if _, symmetric := j.Key.([]byte); symmetric {
		return nil, errors.New("a symmetric (oct) key: HMAC is never accepted")
	}
	if !j.IsPublic() {
		return nil, errPrivate
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %q is not sig", j.Use)
	}
	k, err := NewKey(j.KeyID, j.Key)
	if err != nil {
		return nil, err
	}
	if j.Algorithm != "" && j.Algorithm != k.Alg {
		return nil, fmt.Errorf("alg %q: this key can only verify %s", j.Algorithm, k.Alg)
	}
	return k, nil
}

// ParsePEM reads public keys from PEM: PUBLIC KEY blocks and certificates
// (whose public key is taken; the certificate is not otherwise checked).
// A private key anywhere in it is an error, and so is PEM without a key.
func ParsePEM(data []byte) ([]*Key, error) {
	var keys []*Key
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub crypto.PublicKey
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			if slices.Contains([]string{"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"}, block.Type) {
				return nil, fmt.Errorf("PEM block %d: %w", n, errPrivate)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		k, err := NewKey("", pub)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key or certificate found")
	}
	return keys, nil
}

// ParseKeys reads public keys from a JWK Set or from PEM, whichever data
// holds.
func ParseKeys(data []byte) ([]*Key, error) {
	for _, c := range data {
		if c == ' ' || c == '\n' || c == '\r' || c == '\t' {
			continue
		}
		if c == '{' {
			s, err := ParseJWKS(data)
			if err != nil {
				return nil, err
			}
			return s.keys, nil
		}
		break
	}
	return ParsePEM(data)
}

// JWK is a key's public JSON Web Key members, as an OAuthClient's status
// publishes them.
type JWK struct {
	Kty, Kid, Alg, Crv, X, Y, N, E string
}

// JWK returns the key's public members.
func (k *Key) JWK() JWK {
	b64 := base64.RawURLEncoding.EncodeToString
	j := JWK{Kid: k.ID, Alg: k.Alg}
	switch p := k.Public.(type) {
	case *ecdsa.PublicKey:
		raw, _ := p.Bytes() // uncompressed point 0x04 || X || Y
		j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", b64(raw[1:33]), b64(raw[33:])
	case *rsa.PublicKey:
		j.Kty, j.N = "RSA", b64(p.N.Bytes())
		e := p.E
		var eb []byte
		for e > 0 {
			eb = append([]byte{byte(e)}, eb...)
			e >>= 8
		}
		j.E = b64(eb)
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(p)
	}
	return j
}
