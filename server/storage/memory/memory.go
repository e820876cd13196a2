// Package memory is the in-process storage driver: one mutex over a few
// maps. It is for a single replica and for development; state is lost on
// restart, which logs every user out and invalidates every refresh token.
// The operator refuses memory storage with more than one replica.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Store is a storage.Store in memory. The zero value is not usable; call New.
type Store struct {
	mu           sync.RWMutex
	authRequests map[string]storage.AuthRequest
	codes        map[string]storage.AuthCode
	refresh      map[string]storage.RefreshToken
	families     map[string]*family
	revokedJTIs  map[string]time.Time
	consents     map[consentKey]storage.Consent
	sessions     sessions
	identities   map[string]storage.Identity
	// rechecks are the live claims on identities (ClaimIdentityRecheck),
	// by subject: until when.
	rechecks   map[string]time.Time
	assertions map[string]time.Time // used client assertions' expiry, by AssertionID
	devices    deviceAuthorizations
	pushed     map[string]storage.PushedRequest
}

// family is what the store knows of a refresh-token family as a whole. A
// family with no tokens is a tombstone left by RevokeFamily.
type family struct {
	expiresAt time.Time // the latest ExpiresAt of its tokens
	revoked   bool
}

type consentKey struct{ subject, clientID string }

var _ storage.Store = (*Store)(nil)

// DBSystem names the driver in storage spans (storage.Traced).
func (*Store) DBSystem() string { return "memory" }

// New returns an empty store.
func New() *Store {
	return &Store{
		authRequests: map[string]storage.AuthRequest{},
		codes:        map[string]storage.AuthCode{},
		refresh:      map[string]storage.RefreshToken{},
		families:     map[string]*family{},
		revokedJTIs:  map[string]time.Time{},
		consents:     map[consentKey]storage.Consent{},
		sessions:     newSessions(),
		identities:   map[string]storage.Identity{},
		rechecks:     map[string]time.Time{},
		assertions:   map[string]time.Time{},
		devices:      newDeviceAuthorizations(),
		pushed:       map[string]storage.PushedRequest{},
	}
}

// live reports whether an object expiring at expiresAt is still valid at now.
func live(expiresAt, now time.Time) bool { return now.Before(expiresAt) }

func invalid(what string) error { return fmt.Errorf("%s: %w", what, storage.ErrInvalid) }

// The copy functions keep callers from sharing slices and pointers with the
// stored objects.

func copyAuthRequest(r storage.AuthRequest) storage.AuthRequest {
	r.Scopes = slices.Clone(r.Scopes)
	r.Resources = slices.Clone(r.Resources)
	return r
}

func copyCode(c storage.AuthCode) storage.AuthCode {
	c.Scopes = slices.Clone(c.Scopes)
	c.Resources = slices.Clone(c.Resources)
	if c.RedeemedAt != nil {
		at := *c.RedeemedAt
		c.RedeemedAt = &at
	}
	return c
}

func copyRefreshToken(t storage.RefreshToken) storage.RefreshToken {
	t.Scopes = slices.Clone(t.Scopes)
	t.Resources = slices.Clone(t.Resources)
	if t.RotatedAt != nil {
		at := *t.RotatedAt
		t.RotatedAt = &at
	}
	return t
}

func copyConsent(c storage.Consent) storage.Consent {
	c.Scopes = slices.Clone(c.Scopes)
	return c
}

// CreateAuthRequest implements storage.Store.
func (s *Store) CreateAuthRequest(_ context.Context, r storage.AuthRequest) error {
	if r.ID == "" || r.ExpiresAt.IsZero() {
		return invalid("auth request needs an ID and an expiry")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.authRequests[r.ID]; ok {
		return storage.ErrAlreadyExists
	}
	s.authRequests[r.ID] = copyAuthRequest(r)
	return nil
}

// GetAuthRequest implements storage.Store.
func (s *Store) GetAuthRequest(_ context.Context, id string, now time.Time) (storage.AuthRequest, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.authRequests[id]
	if !ok || !live(r.ExpiresAt, now) {
		return storage.AuthRequest{}, storage.ErrNotFound
	}
	return copyAuthRequest(r), nil
}

// UpdateAuthRequest implements storage.Store.
func (s *Store) UpdateAuthRequest(_ context.Context, r storage.AuthRequest) error {
	if r.ID == "" || r.ExpiresAt.IsZero() {
		return invalid("auth request needs an ID and an expiry")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.authRequests[r.ID]; !ok {
		return storage.ErrNotFound
	}
	s.authRequests[r.ID] = copyAuthRequest(r)
	return nil
}

// DeleteAuthRequest implements storage.Store.
func (s *Store) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	return nil
}

// CreateCode implements storage.Store.
func (s *Store) CreateCode(_ context.Context, c storage.AuthCode) error {
	if c.Hash == "" || c.ExpiresAt.IsZero() {
		return invalid("authorization code needs a hash and an expiry")
	}
	if c.RedeemedAt != nil {
		return invalid("a new authorization code cannot be redeemed already")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.codes[c.Hash]; ok {
		return storage.ErrAlreadyExists
	}
	c.Issued = storage.Issued{}
	s.codes[c.Hash] = copyCode(c)
	return nil
}

// RedeemCode implements storage.Store: the redemption and the first
// refresh token are one step under the write lock.
func (s *Store) RedeemCode(_ context.Context, hash string, issued storage.Issued, first *storage.FirstRefresh, now time.Time) (storage.AuthCode, bool, error) {
	if err := validFirstRefresh(issued, first); err != nil {
		return storage.AuthCode{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[hash]
	if !ok || !live(c.ExpiresAt, now) {
		return storage.AuthCode{}, false, storage.ErrNotFound
	}
	if c.RedeemedAt != nil {
		return copyCode(c), false, storage.ErrCodeReplayed
	}
	var t storage.RefreshToken
	stored := false
	if first != nil {
		t, stored = first.Token(c, issued.RefreshFamilyID, now)
		if f, ok := s.families[t.FamilyID]; stored && ok && f.revoked {
			stored = false
		}
		if _, ok := s.refresh[t.Hash]; stored && ok {
			return storage.AuthCode{}, false, storage.ErrAlreadyExists
		}
	}
	c.RedeemedAt = &now
	c.Issued = issued
	s.codes[hash] = c
	if stored {
		s.putRefreshToken(t)
	}
	if c.SessionID != "" {
		s.addSessionClient(c.SessionID, c.ClientID, now)
	}
	return copyCode(c), stored, nil
}

// validFirstRefresh is RedeemCode's ErrInvalid: a first refresh token
// needs a hash, a lifetime and a family.
func validFirstRefresh(issued storage.Issued, first *storage.FirstRefresh) error {
	if first != nil && (first.Hash == "" || first.TTL <= 0 || issued.RefreshFamilyID == "") {
		return invalid("a first refresh token needs a hash, a lifetime and a family")
	}
	return nil
}

// CreateRefreshToken implements storage.Store.
func (s *Store) CreateRefreshToken(_ context.Context, t storage.RefreshToken) error {
	if t.Hash == "" || t.FamilyID == "" || t.ExpiresAt.IsZero() {
		return invalid("refresh token needs a hash, a family and an expiry")
	}
	if t.RotatedAt != nil {
		return invalid("a new refresh token cannot be rotated already")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refresh[t.Hash]; ok {
		return storage.ErrAlreadyExists
	}
	if f, ok := s.families[t.FamilyID]; ok && f.revoked {
		return storage.ErrRevoked
	}
	s.putRefreshToken(t)
	return nil
}

// putRefreshToken stores t and extends its family's lifetime to cover it.
// The caller holds the write lock.
func (s *Store) putRefreshToken(t storage.RefreshToken) {
	s.refresh[t.Hash] = copyRefreshToken(t)
	f, ok := s.families[t.FamilyID]
	if !ok {
		f = &family{}
		s.families[t.FamilyID] = f
	}
	if t.ExpiresAt.After(f.expiresAt) {
		f.expiresAt = t.ExpiresAt
	}
}

// lookupRefreshToken applies GetRefreshToken's rules. The caller holds the
// lock.
func (s *Store) lookupRefreshToken(hash string, now time.Time) (storage.RefreshToken, error) {
	t, ok := s.refresh[hash]
	if !ok || !live(t.ExpiresAt, now) {
		return storage.RefreshToken{}, storage.ErrNotFound
	}
	if f := s.families[t.FamilyID]; f != nil && f.revoked {
		return storage.RefreshToken{}, storage.ErrRevoked
	}
	return t, nil
}

// GetRefreshToken implements storage.Store.
func (s *Store) GetRefreshToken(_ context.Context, hash string, now time.Time) (storage.RefreshToken, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.lookupRefreshToken(hash, now)
	if err != nil {
		return storage.RefreshToken{}, err
	}
	return copyRefreshToken(t), nil
}

// RotateRefreshToken implements storage.Store.
func (s *Store) RotateRefreshToken(_ context.Context, oldHash string, next storage.RefreshToken, now time.Time) (storage.RefreshToken, error) {
	if next.Hash == "" || next.ExpiresAt.IsZero() {
		return storage.RefreshToken{}, invalid("refresh token needs a hash and an expiry")
	}
	if next.RotatedAt != nil {
		return storage.RefreshToken{}, invalid("a new refresh token cannot be rotated already")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.lookupRefreshToken(oldHash, now)
	if err != nil {
		return storage.RefreshToken{}, err
	}
	if old.RotatedAt != nil {
		if succ, ok := s.refresh[next.Hash]; ok && succ.FamilyID == old.FamilyID && succ.RotatedAt == nil &&
			(next.FamilyID == "" || next.FamilyID == old.FamilyID) && !now.After(old.RotatedAt.Add(storage.RotationRetryWindow)) {
			return copyRefreshToken(old), nil // a retry of the rotation that stored next
		}
		s.revokeFamily(old.FamilyID, now)
		return copyRefreshToken(old), storage.ErrRefreshTokenReused
	}
	switch next.FamilyID {
	case "":
		next.FamilyID = old.FamilyID
	case old.FamilyID:
	default:
		return storage.RefreshToken{}, invalid("the successor of a refresh token must be in its family")
	}
	if _, ok := s.refresh[next.Hash]; ok {
		return storage.RefreshToken{}, storage.ErrAlreadyExists
	}
	old.RotatedAt = &now
	s.refresh[oldHash] = old
	s.putRefreshToken(next)
	return copyRefreshToken(old), nil
}

// RevokeFamily implements storage.Store.
func (s *Store) RevokeFamily(_ context.Context, familyID string, now time.Time) error {
	if familyID == "" {
		return invalid("family ID is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeFamily(familyID, now)
	return nil
}

// revokeFamily marks a family revoked, leaving a tombstone when the store
// holds no token of it. The caller holds the write lock.
func (s *Store) revokeFamily(familyID string, now time.Time) {
	f, ok := s.families[familyID]
	if !ok {
		f = &family{}
		s.families[familyID] = f
	}
	f.revoked = true
	if tomb := now.Add(storage.RevokedFamilyRetention); tomb.After(f.expiresAt) {
		f.expiresAt = tomb
	}
}

// RevokeAccessToken implements storage.Store.
func (s *Store) RevokeAccessToken(_ context.Context, jti string, expiresAt time.Time) error {
	if jti == "" || expiresAt.IsZero() {
		return invalid("access-token revocation needs a jti and an expiry")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.revokedJTIs[jti]; !ok || expiresAt.After(prev) {
		s.revokedJTIs[jti] = expiresAt
	}
	return nil
}

// IsAccessTokenRevoked implements storage.Store.
func (s *Store) IsAccessTokenRevoked(_ context.Context, jti, familyID string, now time.Time) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if exp, ok := s.revokedJTIs[jti]; ok && live(exp, now) {
		return true, nil
	}
	// A family record outlives its revocation by RevokedFamilyRetention,
	// which covers any access token issued under it.
	f := s.families[familyID]
	return familyID != "" && f != nil && f.revoked && live(f.expiresAt, now), nil
}

// SaveConsent implements storage.Store.
func (s *Store) SaveConsent(_ context.Context, c storage.Consent) error {
	if c.Subject == "" || c.ClientID == "" || c.ExpiresAt.IsZero() {
		return invalid("consent needs a subject, a client and an expiry")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consents[consentKey{c.Subject, c.ClientID}] = copyConsent(c)
	return nil
}

// GetConsent implements storage.Store.
func (s *Store) GetConsent(_ context.Context, subject, clientID string, now time.Time) (storage.Consent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.consents[consentKey{subject, clientID}]
	if !ok || !live(c.ExpiresAt, now) {
		return storage.Consent{}, storage.ErrNotFound
	}
	return copyConsent(c), nil
}

// DeleteExpired implements storage.Store. Family records are internal and
// not counted.
func (s *Store) DeleteExpired(_ context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := deleteExpired(s.authRequests, now, func(r storage.AuthRequest) time.Time { return r.ExpiresAt })
	n += deleteExpired(s.codes, now, func(c storage.AuthCode) time.Time { return c.ExpiresAt })
	n += deleteExpired(s.refresh, now, func(t storage.RefreshToken) time.Time { return t.ExpiresAt })
	n += deleteExpired(s.revokedJTIs, now, func(exp time.Time) time.Time { return exp })
	n += deleteExpired(s.consents, now, func(c storage.Consent) time.Time { return c.ExpiresAt })
	n += s.deleteExpiredSessions(now)
	n += deleteExpired(s.identities, now, func(id storage.Identity) time.Time { return id.ExpiresAt })
	deleteExpired(s.rechecks, now, func(until time.Time) time.Time { return until }) // claims are not objects
	n += deleteExpired(s.assertions, now, func(exp time.Time) time.Time { return exp })
	n += s.deleteExpiredDevices(now)
	n += deleteExpired(s.pushed, now, func(r storage.PushedRequest) time.Time { return r.ExpiresAt })
	// A family outlives its tokens (its expiry is their latest), so no
	// live token loses its family here.
	deleteExpired(s.families, now, func(f *family) time.Time { return f.expiresAt })
	return n, nil
}

func deleteExpired[K comparable, V any](m map[K]V, now time.Time, expiresAt func(V) time.Time) int {
	n := 0
	for k, v := range m {
		if !live(expiresAt(v), now) {
			delete(m, k)
			n++
		}
	}
	return n
}

// Ping implements storage.Store; memory is always ready.
func (s *Store) Ping(context.Context) error { return nil }

// Close implements storage.Store.
func (s *Store) Close() error { return nil }
