package storage

import (
	"context"
	"time"
)

// Identity is what an upstream identity provider said of a person at their
// last login (username, email, groups), kept so that the token, refresh
// and userinfo paths can release those claims without calling the upstream.
// Data is the token server's encoding; the store does not read it.
type Identity struct {
	Subject   string
	Data      []byte
	UpdatedAt time.Time
	ExpiresAt time.Time
}

// IdentityStore keeps upstream identities by subject. Every Store is one.
type IdentityStore interface {
	// SaveIdentity creates or replaces the identity of Subject.
	SaveIdentity(ctx context.Context, id Identity) error
	// GetIdentity returns the identity of subject; ErrNotFound if unknown
	// or expired.
	GetIdentity(ctx context.Context, subject string, now time.Time) (Identity, error)
}
