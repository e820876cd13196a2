// Package clientsecret generates, hashes and checks OAuth client secrets.
// The operator writes the plaintext only into the app's Secret and publishes
// Hash in OAuthClient status; the token server checks presented secrets with
// Matches and never sees the plaintext at rest.
package clientsecret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Bytes of randomness in a generated secret: 256 bits.
const Bytes = 32

const hashPrefix = "sha256:"

// MinAdoptedBits is the least estimated entropy an adopted secret (one the
// operator did not generate) must have, the same as a generated one.
const MinAdoptedBits = 8 * Bytes

// Generate returns a new secret: 256 random bits, base64url without padding
// (43 characters, safe in URLs, forms and HTTP Basic auth).
func Generate() (string, error) {
	b := make([]byte, Bytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating client secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash returns the form published in OAuthClient status: "sha256:" and the
// base64 SHA-256 of the secret.
//
// A fast hash is right here, where a slow one (bcrypt, argon2) is right for
// passwords: a slow hash defends low-entropy secrets against offline
// guessing, but a 256-bit random secret cannot be guessed at any speed, and
// the token endpoint checks the hash on every request, where a slow hash
// would cap throughput and hand attackers a cheap denial of service.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hashPrefix + base64.StdEncoding.EncodeToString(sum[:])
}

// Matches reports, in constant time, whether secret hashes to hash.
func Matches(secret, hash string) bool {
	want, ok := strings.CutPrefix(hash, hashPrefix)
	if !ok {
		return false
	}
	wantSum, err := base64.StdEncoding.DecodeString(want)
	if err != nil || len(wantSum) != sha256.Size {
		return false
	}
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], wantSum) == 1
}

// ErrWeak is returned by CheckAdoptable for a secret too weak to adopt.
var ErrWeak = errors.New("client secret is too weak")

// CheckAdoptable decides whether a secret the operator did not generate
// (External Secrets, Sealed Secrets) is strong enough to use. It cannot
// measure randomness, so it estimates an upper bound: length times log2 of
// the alphabet the characters come from (lower, upper, digits, others;
// mixed case within base64url's alphabet counts as base64url), and
// requires MinAdoptedBits, with at least 10 distinct characters. A 43-char
// base64url or 64-char hex secret passes; "password123" or a 32-char
// lowercase word does not. The error never contains the secret.
func CheckAdoptable(secret string) error {
	if strings.TrimSpace(secret) != secret {
		return fmt.Errorf("%w: it has leading or trailing white space", ErrWeak)
	}
	var lower, upper, digit, other, notBase64URL bool
	distinct := map[rune]bool{}
	for _, r := range secret {
		distinct[r] = true
		if r != '-' && r != '_' && !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			notBase64URL = true
		}
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		case r > ' ' && r < 0x7f:
			other = true
		default:
			return fmt.Errorf("%w: it must be printable ASCII", ErrWeak)
		}
	}
	alphabet := 0
	for _, c := range []struct {
		present bool
		size    int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 32}} {
		if c.present {
			alphabet += c.size
		}
	}
	// Mixed case in base64url's alphabet is read as base64url: 32 random
	// bytes encoded lack digits and '-' '_' about once in 8,000, and must
	// not be refused for it (the operator's own secrets are such strings).
	if lower && upper && !notBase64URL {
		alphabet = max(alphabet, 64)
	}
	bits := 0.0
	if alphabet > 0 {
		bits = float64(len(secret)) * math.Log2(float64(alphabet))
	}
	if bits < MinAdoptedBits || len(distinct) < 10 {
		return fmt.Errorf("%w: %d characters carry at most %.0f bits; at least %d are needed (use 32 random bytes, base64 or hex encoded)",
			ErrWeak, len(secret), bits, MinAdoptedBits)
	}
	return nil
}
