package server

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Sessions end four ways: the person signs out (logout.go), an
// administrator revokes them (RevokePerson, from a SessionRevocation),
// the identity sources stop listing them (RunRemovals), or an upstream
// re-check finds them gone (recheck.go). Each ends them through
// endSessions, which tells the relying parties.

// RevokePerson ends every session of subject and revokes their grants:
// refresh-token families (and so their access tokens) and remembered
// consents. Every client that got tokens in those sessions, or holds a
// family, and has a back-channel logout URI is sent a logout token. reason
// is logged.
func (s *Server) RevokePerson(ctx context.Context, subject, reason string) (storage.Ended, error) {
	snap := s.src.Current()
	if snap == nil {
		return storage.Ended{}, fmt.Errorf("the server is starting")
	}
	if subject == "" {
		return storage.Ended{}, fmt.Errorf("no subject")
	}
	return s.endSessions(ctx, snap, storage.SessionSelector{Subject: subject}, storage.EndOptions{RevokeGrants: true},
		"revoked by an administrator: "+truncate(reason, 200))
}

// SubjectForUsername returns the subject of a users-Secret username.
func (s *Server) SubjectForUsername(username string) (string, bool) {
	snap := s.src.Current()
	if snap == nil || snap.Users == nil {
		return "", false
	}
	u, ok := snap.Users.Lookup(username)
	return u.Subject, ok
}

// RunRemovals watches the configuration for people the identity sources
// stop listing, every interval, and ends their sessions as soon as they
// are gone: a person removed from the users Secret, or every person of an
// identity provider removed from the spec. Their grants are refused (not
// revoked) while they are gone, so that undoing a mistaken removal brings
// their refresh tokens back; their sessions are ended, and their
// applications told. A users Secret that cannot be read removes nobody.
//
// Every replica runs it; ending a session is atomic, so only one of them
// ends each session and queues its logout tokens.
func (s *Server) RunRemovals(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	prev := s.src.Current()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := s.src.Current()
		if cur == nil {
			continue
		}
		if prev != nil && !prev.SameServer(cur) {
			s.endRemoved(ctx, prev, cur)
		}
		prev = cur
	}
}

// endRemoved ends the sessions of the people prev's identity sources list
// and cur's do not.
func (s *Server) endRemoved(ctx context.Context, prev, cur *config.Snapshot) {
	for _, sel := range removedPeople(prev, cur) {
		why := "removed from the users Secret"
		if sel.SubjectPrefix != "" {
			why = "identity provider removed"
		}
		if _, err := s.endSessions(ctx, cur, sel, storage.EndOptions{}, why); err != nil {
			// Their sessions are refused anyway (session.go, userExists);
			// only the relying parties are not told.
			s.log.Warn("ending the sessions of a removed person", "error", err)
		}
	}
}

// removedPeople are the people prev lists and cur does not, as
// selectors: one per users-Secret person, one per identity provider.
func removedPeople(prev, cur *config.Snapshot) []storage.SessionSelector {
	var out []storage.SessionSelector
	if prev.Users != nil {
		subjects := prev.Users.Subjects()
		slices.Sort(subjects)
		for _, sub := range subjects {
			if cur.Subject(sub) == config.SubjectRemoved {
				out = append(out, storage.SessionSelector{Subject: sub})
			}
		}
	}
	for _, name := range prev.IdentitySet().Names() {
		if name != "" && !cur.IdentitySet().Has(name) {
			out = append(out, storage.SessionSelector{SubjectPrefix: users.UpstreamSubjectPrefix + name + ":"})
		}
	}
	return out
}

// endRecheckedPerson ends the sessions of an upstream person a re-check
// found gone or disabled, and revokes their grants: unlike a removal from
// the spec, nothing here can bring them back but a new login.
func (s *Server) endRecheckedPerson(ctx context.Context, snap *config.Snapshot, subject string) {
	provider, _ := identity.ProviderOf(subject)
	if _, err := s.endSessions(ctx, snap, storage.SessionSelector{Subject: subject}, storage.EndOptions{RevokeGrants: true},
		"no longer allowed by identity provider "+provider); err != nil {
		s.log.Warn("ending the sessions of a person an upstream re-check refused", "error", err)
	}
}
