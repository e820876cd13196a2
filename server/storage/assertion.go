package storage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
)

// ErrAssertionReplayed means the client assertion was used before and has not
// expired (RFC 7523 §3, item 7). Nothing was recorded.
var ErrAssertionReplayed = errors.New("client assertion already used")

// AssertionStore remembers the JWT client assertions that authenticated a
// request, so that each is accepted once, on every replica. Every Store is
// one.
type AssertionStore interface {
	// UseAssertion records the assertion id (AssertionID) until expiresAt.
	// If id is recorded and live at now, it is ErrAssertionReplayed and
	// nothing changes. Of concurrent calls with one id, also on replicas
	// sharing one database, exactly one succeeds. A zero expiresAt or an
	// empty id is ErrInvalid.
	UseAssertion(ctx context.Context, id string, expiresAt, now time.Time) error
}

// AssertionID is the key an assertion is recorded under: base64url
// SHA-256 of its issuer and jti. A jti is unique only per issuer (RFC 7519
// §4.1.7); hashing bounds the key's size, whatever the client put in it.
func AssertionID(issuer, jti string) string {
	h := sha256.New()
	h.Write([]byte(issuer))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
