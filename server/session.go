package server

import (
	"context"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// session returns the browser's login session, if it has a live one.
func (s *Server) session(ctx context.Context, r *http.Request, snap *config.Snapshot, now time.Time) (storage.Session, bool) {
	v := readCookie(r, snap, sessionCookie)
	if v == "" {
		return storage.Session{}, false
	}
	sess, err := s.store.GetSession(ctx, storage.HashToken(v), now)
	if err != nil || !userExists(snap, sess.Subject) {
		return storage.Session{}, false
	}
	return sess, true
}

// sessionConsent is session with the person's remembered consent for
// clientID (nil if none), read together: one storage round trip on the
// single-sign-on path.
func (s *Server) sessionConsent(ctx context.Context, r *http.Request, snap *config.Snapshot, clientID string, now time.Time) (storage.Session, *storage.Consent, bool) {
	v := readCookie(r, snap, sessionCookie)
	if v == "" {
		return storage.Session{}, nil, false
	}
	sess, consent, err := s.store.GetSessionConsent(ctx, storage.HashToken(v), clientID, now)
	if err != nil || !userExists(snap, sess.Subject) {
		return storage.Session{}, nil, false
	}
	return sess, consent, true
}

// userExists: a person removed from the users Secret, or whose identity
// provider was removed, is logged out at once; while the users Secret
// cannot be read, nobody from it is logged in.
func userExists(snap *config.Snapshot, subject string) bool {
	return snap.Subject(subject) == config.SubjectActive
}

// sessionID is the sid of a login session (Core §2; the sid of
// OpenID Connect Front-/Back-Channel Logout): stable for the session,
// different for each, and derived one-way from the stored hash, so that
// it reveals nothing that could be replayed as the session cookie.
func sessionID(sess storage.Session) string { return storage.HashToken("sid:" + sess.Hash) }
