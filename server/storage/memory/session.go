package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// sessions are the sessions by Hash, the Hash of each by ID, the clients
// of each by ID, and the logout deliveries owed.
type sessions struct {
	byHash     map[string]storage.Session
	byID       map[string]string
	clients    map[string][]string
	deliveries map[string]*delivery
}

// delivery is a LogoutDelivery and until when it is claimed.
type delivery struct {
	storage.LogoutDelivery
	claimedUntil time.Time
}

func newSessions() sessions {
	return sessions{byHash: map[string]storage.Session{}, byID: map[string]string{}, clients: map[string][]string{},
		deliveries: map[string]*delivery{}}
}

// CreateSession implements storage.SessionStore.
func (s *Store) CreateSession(_ context.Context, sess storage.Session) error {
	if sess.Hash == "" || sess.ID == "" || sess.ExpiresAt.IsZero() {
		return invalid("session needs a hash, an ID and an expiry")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions.byHash[sess.Hash]; ok {
		return storage.ErrAlreadyExists
	}
	if _, ok := s.sessions.byID[sess.ID]; ok {
		return storage.ErrAlreadyExists
	}
	s.sessions.byHash[sess.Hash] = sess
	s.sessions.byID[sess.ID] = sess.Hash
	return nil
}

// GetSession implements storage.SessionStore.
func (s *Store) GetSession(_ context.Context, hash string, now time.Time) (storage.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess, ok := s.sessions.byHash[hash]
	if !ok || !live(sess.ExpiresAt, now) {
		return storage.Session{}, storage.ErrNotFound
	}
	return sess, nil
}

// GetSessionByID implements storage.SessionStore.
func (s *Store) GetSessionByID(_ context.Context, id string, now time.Time) (storage.EndedSession, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess, ok := s.sessions.byHash[s.sessions.byID[id]]
	if !ok || sess.ID != id || !live(sess.ExpiresAt, now) {
		return storage.EndedSession{}, storage.ErrNotFound
	}
	return storage.EndedSession{Session: sess, Clients: slices.Clone(s.sessions.clients[id])}, nil
}

// GetSessionConsent implements storage.SessionStore.
func (s *Store) GetSessionConsent(ctx context.Context, hash, clientID string, now time.Time) (storage.Session, *storage.Consent, error) {
	sess, err := s.GetSession(ctx, hash, now)
	if err != nil {
		return storage.Session{}, nil, err
	}
	c, err := s.GetConsent(ctx, sess.Subject, clientID, now)
	if err != nil {
		return sess, nil, nil
	}
	return sess, &c, nil
}

// DeleteSession implements storage.SessionStore.
func (s *Store) DeleteSession(_ context.Context, hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.sessions.byHash[hash]; ok {
		s.removeSession(sess)
	}
	return nil
}

// removeSession forgets a session and its clients. The caller holds the
// write lock.
func (s *Store) removeSession(sess storage.Session) {
	delete(s.sessions.byHash, sess.Hash)
	delete(s.sessions.byID, sess.ID)
	delete(s.sessions.clients, sess.ID)
}

// AddSessionClient implements storage.SessionStore.
func (s *Store) AddSessionClient(_ context.Context, id, clientID string, now time.Time) error {
	if id == "" || clientID == "" {
		return invalid("a session client needs a session ID and a client")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.addSessionClient(id, clientID, now) {
		return storage.ErrNotFound
	}
	return nil
}

// addSessionClient records clientID in the live session id, reporting
// whether there is one. The caller holds the write lock.
func (s *Store) addSessionClient(id, clientID string, now time.Time) bool {
	sess, ok := s.sessions.byHash[s.sessions.byID[id]]
	if !ok || !live(sess.ExpiresAt, now) {
		return false
	}
	if cs := s.sessions.clients[id]; !slices.Contains(cs, clientID) {
		s.sessions.clients[id] = append(cs, clientID)
	}
	return true
}

// selected reports whether sel picks sess.
func selected(sel storage.SessionSelector, sess storage.Session) bool {
	switch {
	case sel.Hash != "":
		return sess.Hash == sel.Hash
	case sel.ID != "":
		return sess.ID == sel.ID
	default:
		return ofPerson(sel, sess.Subject)
	}
}

// ofPerson reports whether subject is the person (or one of the people)
// sel names.
func ofPerson(sel storage.SessionSelector, subject string) bool {
	switch {
	case sel.Subject != "":
		return subject == sel.Subject
	case sel.SubjectPrefix != "":
		return strings.HasPrefix(subject, sel.SubjectPrefix)
	}
	return false
}

// EndSessions implements storage.SessionStore: one step under the write
// lock.
func (s *Store) EndSessions(_ context.Context, sel storage.SessionSelector, opts storage.EndOptions, now time.Time) (storage.Ended, error) {
	if !opts.Validate(sel) {
		return storage.Ended{}, invalid("ending sessions needs one selector (a person's, to revoke grants) and, to notify, a deadline")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out storage.Ended
	for _, sess := range s.sessions.byHash {
		if !selected(sel, sess) {
			continue
		}
		clients := s.sessions.clients[sess.ID]
		s.removeSession(sess)
		if live(sess.ExpiresAt, now) {
			out.Sessions = append(out.Sessions, storage.EndedSession{Session: sess, Clients: clients})
		}
	}
	slices.SortFunc(out.Sessions, func(a, b storage.EndedSession) int {
		return cmp.Or(a.AuthTime.Compare(b.AuthTime), strings.Compare(a.ID, b.ID))
	})
	ended := map[string]bool{}
	for _, e := range out.Sessions {
		ended[e.ID] = true
	}
	families := map[string]bool{}
	var holders []storage.Holder
	for _, t := range s.refresh {
		if !live(t.ExpiresAt, now) || families[t.FamilyID] {
			continue
		}
		if f := s.families[t.FamilyID]; f != nil && f.revoked {
			continue
		}
		switch {
		case opts.RevokeGrants && ofPerson(sel, t.Subject):
			holders = append(holders, storage.Holder{Subject: t.Subject, ClientID: t.ClientID})
		case ended[t.SessionID] && (opts.OfflineScope == "" || !slices.Contains(t.Scopes, opts.OfflineScope)):
		default:
			continue
		}
		families[t.FamilyID] = true
	}
	for id := range families {
		s.revokeFamily(id, now)
	}
	out.FamiliesRevoked = len(families)
	if opts.RevokeGrants {
		for k, c := range s.consents {
			if ofPerson(sel, k.subject) {
				delete(s.consents, k)
				if live(c.ExpiresAt, now) {
					out.ConsentsDeleted++
				}
			}
		}
	}
	slices.SortFunc(holders, func(a, b storage.Holder) int {
		return cmp.Or(strings.Compare(a.Subject, b.Subject), strings.Compare(a.ClientID, b.ClientID))
	})
	holders = slices.Compact(holders)
	out.Deliveries = opts.Deliveries(out.Sessions, holders, now)
	for _, d := range out.Deliveries {
		s.sessions.deliveries[d.ID] = &delivery{LogoutDelivery: d}
	}
	return out, nil
}

// ClaimLogoutDeliveries implements storage.SessionStore.
func (s *Store) ClaimLogoutDeliveries(_ context.Context, limit, perClient int, busy []string, lease time.Duration, now time.Time) ([]storage.LogoutDelivery, error) {
	if limit <= 0 || perClient <= 0 || lease <= 0 {
		return nil, invalid("a claim needs limits and a lease")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*delivery
	for _, d := range s.sessions.deliveries {
		if !d.NextAttemptAt.After(now) && live(d.ExpiresAt, now) && !d.claimedUntil.After(now) && !slices.Contains(busy, d.ClientID) {
			due = append(due, d)
		}
	}
	slices.SortFunc(due, func(a, b *delivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), strings.Compare(a.ID, b.ID))
	})
	var out []storage.LogoutDelivery
	perClientClaimed := map[string]int{}
	for _, d := range due {
		if len(out) == limit {
			break
		}
		if perClientClaimed[d.ClientID] == perClient {
			continue
		}
		perClientClaimed[d.ClientID]++
		d.claimedUntil = now.Add(lease)
		out = append(out, d.LogoutDelivery)
	}
	return out, nil
}

// RetryLogoutDelivery implements storage.SessionStore.
func (s *Store) RetryLogoutDelivery(_ context.Context, d storage.LogoutDelivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, ok := s.sessions.deliveries[d.ID]
	if !ok {
		return storage.ErrNotFound
	}
	stored.Attempts, stored.LastError, stored.NextAttemptAt = d.Attempts, d.LastError, d.NextAttemptAt
	stored.claimedUntil = time.Time{}
	return nil
}

// FinishLogoutDelivery implements storage.SessionStore.
func (s *Store) FinishLogoutDelivery(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions.deliveries, id)
	return nil
}

// deleteExpiredSessions removes expired sessions (with their clients) and
// logout deliveries. The caller holds the write lock.
func (s *Store) deleteExpiredSessions(now time.Time) int {
	n := 0
	for _, sess := range s.sessions.byHash {
		if !live(sess.ExpiresAt, now) {
			s.removeSession(sess)
			n++
		}
	}
	return n + deleteExpired(s.sessions.deliveries, now, func(d *delivery) time.Time { return d.ExpiresAt })
}
