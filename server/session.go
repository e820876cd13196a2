package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
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

// sessionID is the sid of the login session stored under hash (Core §2;
// the sid of OpenID Connect Front-/Back-Channel Logout): stable for the
// session, different for each, and derived one-way from the stored hash,
// so that it reveals nothing that could be replayed as the session cookie.
// It is stored with the session (storage.Session.ID), which is findable
// by it.
func sessionID(hash string) string { return storage.HashToken("sid:" + hash) }

// loadFlow finds the authorization request a page belongs to, and its
// client; when either is gone it shows an error page.
func (s *Server) loadFlow(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, id string, now time.Time) (storage.AuthRequest, *config.Client, bool) {
	if id == "" {
		s.errorPage(w, r, snap, http.StatusBadRequest, "Start from the application", "Sign-in starts at the application you want to use; open it and sign in from there.")
		return storage.AuthRequest{}, nil, false
	}
	ar, err := s.store.GetAuthRequest(r.Context(), id, now)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.log.Error("reading authorization request", "error", err)
		}
		s.errorPage(w, r, snap, http.StatusBadRequest, "Sign-in expired", "This sign-in took too long or was already completed. Go back to the application and start again.")
		return storage.AuthRequest{}, nil, false
	}
	client := snap.Clients.Get(ar.ClientID)
	if client == nil || !flowAllowed(client, ar) {
		s.errorPage(w, r, snap, http.StatusBadRequest, "Unknown application", "The application is no longer registered with this server.")
		return storage.AuthRequest{}, nil, false
	}
	return ar, client, true
}

// trimIssuer is the issuer's path without trailing slashes, the prefix of
// the pages' form actions.
func trimIssuer(snap *config.Snapshot) string {
	u, err := url.Parse(snap.Issuer)
	if err != nil {
		return ""
	}
	p := u.EscapedPath()
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// flowAllowed: the client still may finish the flow ar began: its redirect
// URI is still registered or, for a device approval (RFC 8628), it still
// may use the device grant.
func flowAllowed(client *config.Client, ar storage.AuthRequest) bool {
	if ar.Device != "" {
		return client.GrantTypes[oauthv1.GrantDeviceCode]
	}
	return client.HasRedirectURI(ar.RedirectURI)
}
