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
	if err != nil {
		return storage.Session{}, false
	}
	// A person removed from the users Secret, or whose identity provider
	// was removed, is logged out at once; while the users Secret cannot
	// be read, nobody from it is logged in.
	if snap.Subject(sess.Subject) != config.SubjectActive {
		return storage.Session{}, false
	}
	return sess, true
}

// sessionID is the sid of a login session (Core §2; the sid of
// OpenID Connect Front-/Back-Channel Logout): stable for the session,
// different for each, and derived one-way from the stored hash, so that
// it reveals nothing that could be replayed as the session cookie.
func sessionID(sess storage.Session) string { return storage.HashToken("sid:" + sess.Hash) }
