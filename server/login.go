package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
	"github.com/gatehouse-dev/gatehouse/server/internal/devicecookie"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// handleLogin shows the login page (GET) and checks a password (POST)
// against the password sources: the users Secret and LDAP directories.
// bcrypt and directory binds run here and nowhere else. Upstream OpenID
// Providers get a button each (login_upstream.go).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	now := s.now()
	form, res, ok := s.readPageForm(w, r, snap)
	if !ok {
		return res
	}
	ar, client, ok := s.loadFlow(w, r, snap, form.Get("auth_request"), now)
	if !ok {
		return result{outcome: ErrInvalidRequest}
	}
	set := snap.IdentitySet()
	data := s.page(r, snap, ar.UILocales, pages.Data{
		Title: "Sign in", Action: trimIssuer(snap) + endpoints.LoginPath,
		CSRF: csrfToken(w, r, snap), AuthRequest: ar.ID, ClientName: client.DisplayName,
		PasswordForm: set.HasPasswordForm(), Upstreams: upstreamButtons(snap, set, ar.ID),
	})
	if r.Method == http.MethodGet {
		// One upstream and nothing to type: straight to the upstream.
		if !data.PasswordForm && len(data.Upstreams) == 1 {
			http.Redirect(w, r, data.Upstreams[0].URL, http.StatusFound)
			return result{outcome: outcomeSuccess}
		}
		data.Username = ar.LoginHint // Core §3.1.2.1 login_hint
		s.pages.Render(w, http.StatusOK, "login", ar.RedirectURI, data)
		return result{outcome: outcomeSuccess}
	}
	if !data.PasswordForm {
		data.Error = "Sign-in is not available: this server has no users configured."
		if len(data.Upstreams) > 0 {
			data.Error = "Sign in with one of the buttons below."
		}
		s.pages.Render(w, http.StatusServiceUnavailable, "login", ar.RedirectURI, data)
		return result{outcome: ErrTemporarilyUnavailable}
	}
	return s.passwordLogin(w, r, snap, set, client, ar, form, data, now)
}

// passwordLogin checks the posted username and password, throttled.
func (s *Server) passwordLogin(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, set *identity.Set, client *config.Client, ar storage.AuthRequest, form url.Values, data pages.Data, now time.Time) result {
	username, password := form.Get("username"), form.Get("password")
	data.Username = username
	ri := infoFrom(r.Context())
	ri.auditPage(audit.EventLogin, client, "")
	// A username that is no account may be a password typed into the
	// wrong field: only real accounts are named, in the logs and the
	// audit log alike.
	var known string
	if snap.Users != nil {
		if u, ok := snap.Users.Lookup(username); ok {
			known = u.Username
		}
	}
	if ri != nil {
		ri.audit.loginName = known
	}
	addr := s.proxies.ClientAddr(r)
	// A browser that logged in to this account before is throttled on its
	// own (package devicecookie); any other by the account and the address.
	devices := s.derive(snap).deviceKeys
	device, knownDevice := devices.Verify(readCookie(r, snap, devicecookie.Name), username)
	ok, why, wait := s.throttle.Allowed(username, addr, now)
	if knownDevice {
		ok, why, wait = s.throttle.AllowedDevice(device, now)
	}
	if !ok {
		s.metrics.logins.WithLabelValues("throttled").Inc()
		who := slog.Bool("username_known", false)
		if known != "" {
			who = slog.String("username", known)
		}
		infoFrom(r.Context()).securityEvent(r.Context(), EventLoginThrottled, slog.String("throttled_by", string(why)), who,
			slog.String("client_id", client.ID))
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		data.Error = "Too many failed attempts. Wait a minute and try again."
		s.pages.Render(w, http.StatusTooManyRequests, "login", ar.RedirectURI, data)
		return result{outcome: "throttled"}
	}
	person, err := set.Authenticate(r.Context(), username, password)
	if errors.Is(err, identity.ErrUnavailable) {
		// The directory is down or misconfigured: not the person's fault,
		// and not counted against them. The error names no password.
		s.log.Warn("identity provider unavailable", "error", err)
		s.metrics.logins.WithLabelValues("unavailable").Inc()
		data.Error = "Sign-in is temporarily unavailable: the directory could not be reached. Try again shortly."
		s.pages.Render(w, http.StatusServiceUnavailable, "login", ar.RedirectURI, data)
		return result{outcome: ErrTemporarilyUnavailable}
	}
	if err != nil {
		if knownDevice {
			s.throttle.FailedDevice(device, now)
		} else {
			s.throttle.Failed(username, addr, now)
		}
		s.metrics.logins.WithLabelValues("invalid_credentials").Inc()
		data.Error = "Incorrect username or password."
		s.pages.Render(w, http.StatusUnauthorized, "login", ar.RedirectURI, data)
		return result{outcome: "invalid_credentials"}
	}
	if key, ok := snap.SigningKey(now); ok {
		// A new cookie on each login: the device's bucket starts afresh.
		if v := devices.Issue(key.ID, username); v != "" {
			setCookie(w, snap, devicecookie.Name, v, devicecookie.MaxAge)
		}
	}
	return s.completeLogin(w, r, snap, client, ar, person, now)
}

// completeLogin starts the browser's session for person, whichever source
// logged them in, and continues the flow.
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, client *config.Client, ar storage.AuthRequest, person identity.Person, now time.Time) result {
	ctx := r.Context()
	infoFrom(ctx).auditPerson(person)
	if d := loginDenial(snap, client, &person); d != nil {
		// Refused before anything is kept: no session, no identity.
		return s.refuseLogin(w, r, snap, client, ar, person.Subject, d, true)
	}
	s.metrics.logins.WithLabelValues(outcomeSuccess).Inc()
	if err := s.saveIdentity(r, snap, person, now); err != nil {
		return s.loginNotSaved(w, r, snap, "storing the upstream identity", err)
	}
	// A fresh session value on every login: a value planted before login
	// (session fixation) never becomes authenticated.
	cookie := randomToken(32)
	hash := storage.HashToken(cookie)
	sess := storage.Session{Hash: hash, ID: sessionID(hash), Subject: person.Subject, AuthTime: now, ExpiresAt: now.Add(s.sessionTTL)}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return s.loginNotSaved(w, r, snap, "storing a session", err)
	}
	if old := readCookie(r, snap, sessionCookie); old != "" {
		s.replaceSession(ctx, snap, storage.HashToken(old), person.Subject, now)
	}
	setCookie(w, snap, sessionCookie, cookie, int(s.sessionTTL/time.Second))
	ar.Subject, ar.AuthTime, ar.SessionID = person.Subject, now, sess.ID
	if err := s.store.UpdateAuthRequest(ctx, ar); err != nil {
		return s.loginNotSaved(w, r, snap, "updating an authorization request", err)
	}
	return s.afterLogin(w, r, snap, client, ar, now)
}

// replaceSession retires the browser's previous session (hash) when a
// new login replaces it. The same person signing in again (prompt=login,
// max_age) keeps their applications signed in: the old session is only
// deleted. Someone else signing in ends it: its applications are told.
func (s *Server) replaceSession(ctx context.Context, snap *config.Snapshot, hash, subject string, now time.Time) {
	old, err := s.store.GetSession(ctx, hash, now)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return
	case err == nil && old.Subject != subject:
		_, err = s.endSessions(ctx, snap, storage.SessionSelector{Hash: hash}, storage.EndOptions{}, "another person signed in in this browser")
	default:
		err = s.store.DeleteSession(ctx, hash)
	}
	if err != nil {
		// The old session expires by itself; the new login stands.
		s.log.Warn("retiring the previous session of this browser", "error", err)
	}
}

// loginNotSaved answers a login whose session could not be stored.
func (s *Server) loginNotSaved(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, op string, err error) result {
	s.logStorageFailure(r.Context(), op, err)
	status, outcome := storagePageStatus(w, err)
	s.errorPage(w, r, snap, status, "Something went wrong", "Your sign-in could not be saved. Try again shortly.")
	return result{outcome: outcome}
}

// saveIdentity keeps what an upstream said of the person, for the claims
// of the tokens and userinfo responses issued until their next login or
// re-check (claims.go, recheck.go), with what finds them again upstream,
// sealed. The users Secret's people need nothing kept: the Secret is in
// memory.
func (s *Server) saveIdentity(r *http.Request, snap *config.Snapshot, p identity.Person, now time.Time) error {
	if _, upstream := identity.ProviderOf(p.Subject); !upstream {
		return nil
	}
	return s.storeIdentity(r.Context(), snap, p, now)
}

// personLookupTimeout bounds the storage read of an upstream's person on
// the token and userinfo paths, whose callers carry no context.
const personLookupTimeout = 2 * time.Second

// personFor returns the person behind sub: from the users Secret in
// memory, or for an upstream's people what their last login said
// (storage; never the upstream). A person whose provider was removed, or
// whose record expired, is no one.
func (s *Server) personFor(snap *config.Snapshot, sub string) (identity.Person, bool) {
	if _, upstream := identity.ProviderOf(sub); !upstream {
		if snap.Users == nil {
			return identity.Person{}, false
		}
		u, ok := snap.Users.BySubject(sub)
		return identity.PersonFromUser(u), ok
	}
	if snap.Subject(sub) != config.SubjectActive {
		return identity.Person{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), personLookupTimeout)
	defer cancel()
	rec, err := s.store.GetIdentity(ctx, sub, s.now())
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.log.Error("reading an upstream identity", "error", err)
		}
		return identity.Person{}, false
	}
	stored, err := decodeIdentity(rec)
	if err != nil {
		s.log.Error("reading an upstream identity", "error", err)
		return identity.Person{}, false
	}
	if stored.Gone {
		return identity.Person{}, false
	}
	return stored.Person, true
}
