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
	// Without a users directory nobody is logged in, and a user removed
	// from the users Secret is logged out at once.
	if snap.Users == nil {
		return storage.Session{}, false
	}
	if _, ok := snap.Users.BySubject(sess.Subject); !ok {
		return storage.Session{}, false
	}
	return sess, true
}

// sessionID is the sid of a login session (Core §2; the sid of
// OpenID Connect Front-/Back-Channel Logout): stable for the session,
// different for each, and derived one-way from the stored hash, so that
// it reveals nothing that could be replayed as the session cookie.
func sessionID(sess storage.Session) string { return storage.HashToken("sid:" + sess.Hash) }
