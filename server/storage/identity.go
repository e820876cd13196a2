package storage

import (
	"context"
	"time"
)

// Identity is what an upstream identity provider said of a person at their
// last login or re-check (username, email, groups, and what finds them
// again upstream, sealed), kept so that the token, refresh and userinfo
// paths can release those claims without calling the upstream. Data is
// the token server's encoding; the store does not read it. UpdatedAt is
// when the upstream last answered.
type Identity struct {
	Subject   string
	Data      []byte
	UpdatedAt time.Time
	ExpiresAt time.Time
}

// IdentityStore keeps upstream identities by subject. Every Store is one.
type IdentityStore interface {
	// SaveIdentity creates or replaces the identity of Subject, and
	// releases a claim on it (ClaimIdentityRecheck).
	SaveIdentity(ctx context.Context, id Identity) error
	// ClaimIdentityRecheck lets one caller, on any replica, ask the
	// upstream about the person again: if the identity of subject was
	// updated at or before due and nobody holds a live claim on it, it is
	// claimed until until and returned with true. Otherwise it is
	// returned with false (someone else is asking, or a recent answer
	// stands). Unknown or expired is ErrNotFound. An upstream whose
	// refresh tokens rotate would take two concurrent uses of one as
	// theft; the claim prevents that.
	ClaimIdentityRecheck(ctx context.Context, subject string, due, until, now time.Time) (Identity, bool, error)
	// GetIdentity returns the identity of subject; ErrNotFound if unknown
	// or expired.
	GetIdentity(ctx context.Context, subject string, now time.Time) (Identity, error)
}
