package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
	"github.com/gatehouse-dev/gatehouse/server/internal/seal"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Upstream re-checks. A person from an identity provider is asked about
// again when they use a refresh token and the provider's last answer about
// them is older than its recheck interval: the one upstream call outside a
// login (the person's own request triggers it, and waits for it). LDAP
// searches their entry again with the user filter; OpenID Connect uses the
// provider's refresh token from their login, kept sealed in storage. A
// yes updates what is kept of them (groups, email); a no (ErrGone) ends
// their sessions and revokes their grants, and tells their apps; an
// upstream that cannot be asked leaves the last answer standing until it
// is the grace period old, then refreshes are refused
// (temporarily_unavailable) until it answers again.
//
// One replica asks at a time (storage.ClaimIdentityRecheck), so an
// upstream that rotates refresh tokens never sees one used twice; the
// others go on with the last answer meanwhile.

// identityRecord is storage.Identity.Data: what an upstream said of the
// person, and, sealed, what finds them again there.
type identityRecord struct {
	identity.Person
	// Upstream is the person's identity.Handle, sealed (seal package,
	// purpose upstreamHandlePurpose, bound to the subject): the store
	// never holds an upstream refresh token in the clear.
	Upstream string `json:"upstream,omitempty"`
	// Gone: a re-check found the person gone; only a new login brings
	// them back.
	Gone bool `json:"gone,omitempty"`
}

const (
	upstreamHandlePurpose = "upstream identity handle"
	// recheckClaim is how long one replica has a re-check to itself: an
	// upstream call takes at most upstreamTimeout (10 s).
	recheckClaim = 30 * time.Second
)

// encodeIdentity is what saveIdentity stores for p: its handle sealed with
// the key that signs now.
func (s *Server) encodeIdentity(snap *config.Snapshot, p identity.Person, now time.Time) ([]byte, error) {
	rec := identityRecord{Person: p}
	if !p.Handle.IsZero() {
		key, ok := snap.SigningKey(now)
		if !ok {
			return nil, errors.New("no signing key to seal the upstream handle with")
		}
		plain, err := json.Marshal(p.Handle)
		if err != nil {
			return nil, err
		}
		if rec.Upstream, err = s.derive(snap).handleKeys.Seal(key.ID, plain, []byte("identity:"+p.Subject)); err != nil {
			return nil, err
		}
	}
	return json.Marshal(rec)
}

// decodeIdentity reads a stored record; the handle stays sealed.
func decodeIdentity(rec storage.Identity) (identityRecord, error) {
	var out identityRecord
	if err := json.Unmarshal(rec.Data, &out); err != nil || out.Subject != rec.Subject {
		return identityRecord{}, errors.New("the stored record does not decode to its subject")
	}
	return out, nil
}

// openHandle unseals a record's handle. errNoHandle: there is none (a
// provider that gave no refresh token, a login from before re-checks).
func (s *Server) openHandle(snap *config.Snapshot, rec identityRecord) (identity.Handle, error) {
	if rec.Upstream == "" {
		return identity.Handle{}, errNoHandle
	}
	plain, err := s.derive(snap).handleKeys.Open(rec.Upstream, []byte("identity:"+rec.Subject))
	if err != nil {
		return identity.Handle{}, err
	}
	var h identity.Handle
	if err := json.Unmarshal(plain, &h); err != nil {
		return identity.Handle{}, err
	}
	return h, nil
}

var errNoHandle = errors.New("no upstream handle")

// Re-check outcomes, the result label of
// gatehouse_server_upstream_rechecks_total.
const (
	recheckAllowed     = "allowed"     // the upstream said yes
	recheckRefused     = "refused"     // the upstream said no: the person is gone
	recheckGrace       = "grace"       // it could not be asked; the last answer stands
	recheckUnavailable = "unavailable" // it could not be asked, past the grace period
	recheckSkipped     = "skipped"     // nothing to ask with (no refresh token, a login from before)
)

// recheckUpstream decides whether subject, of the refresh being made, may
// have tokens, asking their identity provider again when its last answer
// is due; it returns the person as known now (nil when not an upstream
// person, or not re-checked) or the refusal.
func (s *Server) recheckUpstream(ctx context.Context, snap *config.Snapshot, subject string, now time.Time) (*identity.Person, *Error) {
	provider, upstream := identity.ProviderOf(subject)
	if !upstream {
		return nil, nil
	}
	policy, on := snap.RecheckOf(provider)
	if !on {
		return nil, nil
	}
	stored, claimed, err := s.store.ClaimIdentityRecheck(ctx, subject, now.Add(-policy.Interval), now.Add(recheckClaim), now)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Nothing is kept of them (expired, or lost): nothing to ask with
		// and no answer to stand on.
		s.countRecheck(provider, recheckRefused)
		return nil, invalidGrant("the user must sign in again: nothing is known of them from identity provider " + provider)
	case err != nil:
		return nil, s.storageFailed(ctx, "claiming an upstream re-check", err)
	}
	rec, err := decodeIdentity(stored)
	if err != nil {
		s.log.Error("reading an upstream identity", "error", err)
		return nil, serverError("the stored identity of the user cannot be read")
	}
	if rec.Gone {
		return nil, invalidGrant("identity provider " + provider + " no longer allows the user to sign in")
	}
	handle, herr := s.openHandle(snap, rec)
	switch {
	case errors.Is(herr, errNoHandle):
		s.countRecheck(provider, recheckSkipped)
		return &rec.Person, nil
	case !claimed:
		// A recent answer, or another replica is asking now.
		return s.lastAnswer(provider, rec, stored.UpdatedAt, policy, now)
	case herr != nil:
		// Sealed with a key that has left the key set (the person has
		// not refreshed for longer than a key lives): it cannot be used.
		s.countRecheck(provider, recheckRefused)
		return nil, invalidGrant("the user must sign in again: their identity provider " + provider + " cannot be asked about them any more")
	}
	src, ok := snap.IdentitySet().Rechecker(provider)
	var person identity.Person
	err = fmt.Errorf("%w: identity provider %s cannot be used", identity.ErrUnavailable, provider)
	if ok {
		person, err = src.Recheck(ctx, subject, handle)
	}
	switch {
	case err == nil:
		s.countRecheck(provider, recheckAllowed)
		if err := s.storeIdentity(ctx, snap, person, now); err != nil {
			// The answer stands for this refresh; the next one asks again.
			s.log.Warn("storing an upstream re-check's answer", "provider", provider, "error", err)
		}
		return &person, nil
	case errors.Is(err, identity.ErrGone):
		s.countRecheck(provider, recheckRefused)
		s.log.Info("upstream re-check: the user is no longer allowed", "provider", provider, "sub", subject, "reason", err.Error())
		rec.Gone, rec.Upstream = true, ""
		if data, merr := json.Marshal(rec); merr == nil {
			if serr := s.store.SaveIdentity(ctx, storage.Identity{Subject: subject, Data: data, UpdatedAt: now, ExpiresAt: stored.ExpiresAt}); serr != nil {
				s.log.Warn("recording that an upstream user is gone", "provider", provider, "error", serr)
			}
		}
		s.endRecheckedPerson(ctx, snap, subject)
		return nil, invalidGrant("identity provider " + provider + " no longer allows the user to sign in")
	default:
		s.log.Warn("upstream re-check failed; the last answer stands while the grace period lasts", "provider", provider,
			slog.Duration("answer_age", now.Sub(stored.UpdatedAt).Round(time.Second)), "error", err)
		return s.lastAnswer(provider, rec, stored.UpdatedAt, policy, now)
	}
}

// lastAnswer lets the provider's last answer stand while it is younger
// than the grace period.
func (s *Server) lastAnswer(provider string, rec identityRecord, answeredAt time.Time, policy config.Recheck, now time.Time) (*identity.Person, *Error) {
	if now.Sub(answeredAt) <= policy.Grace {
		if now.Sub(answeredAt) > policy.Interval {
			s.countRecheck(provider, recheckGrace)
		}
		return &rec.Person, nil
	}
	s.countRecheck(provider, recheckUnavailable)
	return nil, newError(ErrTemporarilyUnavailable, "identity provider "+provider+" cannot be reached to confirm the user, and its last answer is older than its grace period; try again later")
}

func (s *Server) countRecheck(provider, result string) {
	s.metrics.rechecks.WithLabelValues(provider, result).Inc()
}

// storeIdentity saves what a login or a re-check learned of an upstream
// person, for as long as the longest grant a login can start.
func (s *Server) storeIdentity(ctx context.Context, snap *config.Snapshot, p identity.Person, now time.Time) error {
	data, err := s.encodeIdentity(snap, p, now)
	if err != nil {
		return err
	}
	ttl := max(snap.RefreshTokenTTL, snap.Clients.LongestRefreshTTL(), s.sessionTTL)
	return s.store.SaveIdentity(ctx, storage.Identity{Subject: p.Subject, Data: data, UpdatedAt: now, ExpiresAt: now.Add(ttl)})
}

// handleKeysFor derives the sealing keys of upstream handles.
func handleKeysFor(snap *config.Snapshot) seal.Keys {
	return seal.Derive(snap.Keys, upstreamHandlePurpose)
}
