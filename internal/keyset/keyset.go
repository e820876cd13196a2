// Package keyset is the contract between the operator, which generates and
// rotates an AuthorizationServer's signing keys, and the token server, which
// signs with them and publishes their public halves.
//
// The key set lives in a Secret (SecretName) under the data key SecretDataKey
// as JSON. Every key in the set is published in the JWKS: a key enters the
// set PrepublishPeriod before it signs and leaves it only after every token it
// signed has expired, so a validator that caches the JWKS never meets an
// unknown or vanished kid.
package keyset

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

const (
	// SecretDataKey is the key set's data key in its Secret.
	SecretDataKey = "keys.json"
	// JWKSDataKey is the public JWKS's data key in the JWKS ConfigMap.
	JWKSDataKey = "jwks.json"
)

// SecretName is the name of the Secret, in the server's namespace, that
// holds an AuthorizationServer's key set.
func SecretName(server string) string { return server + "-signing-keys" }

// JWKSConfigMapName is the name of the ConfigMap, in the server's namespace,
// that publishes the public keys for resource servers inside the cluster.
func JWKSConfigMapName(server string) string { return server + "-jwks" }

// Supported algorithms (RFC 7518 §3.1, RFC 8037).
const (
	ES256 = "ES256"
	RS256 = "RS256"
	EdDSA = "EdDSA"
)

// State is where a key is in its life.
type State string

const (
	// StateNext is published, not signing yet (until ActivatesAt).
	StateNext State = "next"
	// StateActive is signing new tokens.
	StateActive State = "active"
	// StateRetired is no longer signing; published until RemoveAfter so that
	// the tokens it signed still validate.
	StateRetired State = "retired"
)

// Key is one signing key with its life-cycle timestamps.
type Key struct {
	// ID is the JWK thumbprint of the public key (RFC 7638), used as kid.
	ID        string `json:"kid"`
	Algorithm string `json:"alg"`
	State     State  `json:"state"`
	// Created is when the key was generated and first published.
	Created time.Time `json:"created"`
	// ActivatesAt is when the key starts (or started) signing.
	ActivatesAt time.Time `json:"activatesAt"`
	// RetiredAt is when the key stopped signing.
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
	// RemoveAfter is when the key leaves the set and the JWKS.
	RemoveAfter *time.Time `json:"removeAfter,omitempty"`
	// PrivateKeyPEM is the PKCS#8 private key.
	PrivateKeyPEM string `json:"privateKey"`

	signer crypto.Signer
}

// Signer returns the key's private key, parsed once when the set was parsed
// or the key generated.
func (k *Key) Signer() crypto.Signer { return k.signer }

// Set is an AuthorizationServer's key set.
type Set struct {
	Keys []Key `json:"keys"`
	// AccessTokenAlgorithm is the algorithm whose keys sign access tokens:
	// that of the access-token lineage's active key (see Advance). Kept in
	// the set rather than read from the AuthorizationServer so that the
	// server and the keys it signs with never disagree during an algorithm
	// change. Empty in sets written before it existed, which hold keys of
	// one lineage only.
	AccessTokenAlgorithm string `json:"accessTokenAlgorithm,omitempty"`
}

// Parse decodes a key set from its Secret data and parses every private key,
// so that signing never parses PEM on a request path.
func Parse(data []byte) (*Set, error) {
	var set Set
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	for i := range set.Keys {
		k := &set.Keys[i]
		block, _ := pem.Decode([]byte(k.PrivateKeyPEM))
		if block == nil {
			return nil, fmt.Errorf("key set: key %q has no PEM private key", k.ID)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key set: key %q: %w", k.ID, err)
		}
		signer, ok := parsed.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key set: key %q is not a signing key", k.ID)
		}
		if err := checkAlgorithm(k.Algorithm, signer); err != nil {
			return nil, fmt.Errorf("key set: key %q: %w", k.ID, err)
		}
		k.signer = signer
	}
	return &set, nil
}

// Marshal encodes the set for its Secret.
func (s *Set) Marshal() ([]byte, error) { return json.MarshalIndent(s, "", "  ") }

// SigningKey returns the key that signs access tokens at time now: of the
// keys of AccessTokenAlgorithm that are not retired and whose ActivatesAt
// has come, the newest. Choosing by time rather than by State lets every
// server replica switch to a prepublished key at the same moment even if
// the operator's update arrives late; the key was published
// PrepublishPeriod earlier, so validators already know it. A key the
// operator has made active signs even if now is before its ActivatesAt:
// the operator retires the key it replaces at the same moment, and a
// replica whose clock is behind the operator's must not be left with no
// key (or one of another algorithm) until its clock catches up.
func (s *Set) SigningKey(now time.Time) (*Key, bool) {
	if s.AccessTokenAlgorithm != "" {
		if k, ok := s.KeyFor(s.AccessTokenAlgorithm, now); ok {
			return k, true
		}
	}
	return s.KeyFor("", now)
}

// KeyFor returns the key of algorithm alg (any algorithm when alg is "")
// that signs at now, chosen as SigningKey chooses.
func (s *Set) KeyFor(alg string, now time.Time) (*Key, bool) {
	var best *Key
	for i := range s.Keys {
		k := &s.Keys[i]
		if k.State == StateRetired || (k.State != StateActive && k.ActivatesAt.After(now)) || k.signer == nil || (alg != "" && k.Algorithm != alg) {
			continue
		}
		if best == nil || k.ActivatesAt.After(best.ActivatesAt) {
			best = k
		}
	}
	return best, best != nil
}

// IDTokenKey returns the key that signs an ID token for a client that
// wants alg: the key of alg that signs at now or, while alg's lineage is
// still being prepublished (an RS256 key added to an older set), the
// access-token key, whose algorithm the discovery document lists too.
func (s *Set) IDTokenKey(alg string, now time.Time) (*Key, bool) {
	if k, ok := s.KeyFor(alg, now); ok {
		return k, true
	}
	return s.SigningKey(now)
}

// Algorithms lists, sorted, the algorithms of the keys that sign now or
// will: what a relying party may meet in a new token.
func (s *Set) Algorithms() []string {
	var algs []string
	for _, k := range s.Keys {
		if k.State != StateRetired && !slices.Contains(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	slices.Sort(algs)
	return algs
}

// JWK is a public JSON Web Key (RFC 7517).
type JWK struct {
	KeyType   string `json:"kty"`
	KeyID     string `json:"kid"`
	Use       string `json:"use"`
	Algorithm string `json:"alg"`
	Curve     string `json:"crv,omitempty"`
	X         string `json:"x,omitempty"`
	Y         string `json:"y,omitempty"`
	N         string `json:"n,omitempty"`
	E         string `json:"e,omitempty"`
}

// JWKS is a JWK Set (RFC 7517 §5).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// PublicJWKS returns the public halves of every key in the set, ordered by
// activation time, newest first. It never contains private material.
func (s *Set) PublicJWKS() (JWKS, error) {
	keys := slices.Clone(s.Keys)
	slices.SortStableFunc(keys, func(a, b Key) int { return b.ActivatesAt.Compare(a.ActivatesAt) })
	jwks := JWKS{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		if k.signer == nil {
			return JWKS{}, fmt.Errorf("key %q was not parsed", k.ID)
		}
		jwk, err := publicJWK(k.signer.Public(), k.Algorithm)
		if err != nil {
			return JWKS{}, fmt.Errorf("key %q: %w", k.ID, err)
		}
		jwk.KeyID = k.ID
		jwks.Keys = append(jwks.Keys, jwk)
	}
	return jwks, nil
}

// Generate makes a new key for alg. The caller sets its State and times.
func Generate(alg string) (Key, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return Key{}, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return Key{}, fmt.Errorf("generating %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return Key{}, err
	}
	kid, err := Thumbprint(signer.Public())
	if err != nil {
		return Key{}, err
	}
	return Key{
		ID:            kid,
		Algorithm:     alg,
		PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		signer:        signer,
	}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of a
// public key.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk, err := publicJWK(pub, "")
	if err != nil {
		return "", err
	}
	// RFC 7638 §3.2: the required members only, in lexicographic order.
	var canonical string
	switch jwk.KeyType {
	case "EC":
		canonical = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, jwk.Curve, jwk.X, jwk.Y)
	case "RSA":
		canonical = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, jwk.E, jwk.N)
	case "OKP":
		canonical = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, jwk.Curve, jwk.X)
	}
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

func publicJWK(pub crypto.PublicKey, alg string) (JWK, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return JWK{}, errors.New("only P-256 EC keys are supported")
		}
		raw, err := pub.Bytes() // 0x04 || X || Y, each fixed at 32 bytes
		if err != nil {
			return JWK{}, err
		}
		return JWK{KeyType: "EC", Use: "sig", Algorithm: alg, Curve: "P-256", X: b64(raw[1:33]), Y: b64(raw[33:])}, nil
	case *rsa.PublicKey:
		return JWK{KeyType: "RSA", Use: "sig", Algorithm: alg, N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes())}, nil
	case ed25519.PublicKey:
		return JWK{KeyType: "OKP", Use: "sig", Algorithm: alg, Curve: "Ed25519", X: b64(pub)}, nil
	default:
		return JWK{}, fmt.Errorf("unsupported public key type %T", pub)
	}
}

func checkAlgorithm(alg string, signer crypto.Signer) error {
	ok := false
	switch signer.(type) {
	case *ecdsa.PrivateKey:
		ok = alg == ES256
	case *rsa.PrivateKey:
		ok = alg == RS256
	case ed25519.PrivateKey:
		ok = alg == EdDSA
	}
	if !ok {
		return fmt.Errorf("algorithm %q does not fit a %T", alg, signer)
	}
	return nil
}
