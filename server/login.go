package server

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// handleLogin shows the login page (GET) and checks a password (POST)
// against the users Secret. bcrypt runs here and nowhere else.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	now := s.now()
	form, res, ok := s.readPageForm(w, r, snap, "login")
	if !ok {
		return res
	}
	ar, client, ok := s.loadFlow(w, r, snap, form.Get("auth_request"), now)
	if !ok {
		return result{outcome: ErrInvalidRequest}
	}
	data := pageData{
		Title: "Sign in", Issuer: snap.Issuer, Action: trimIssuer(snap) + endpoints.LoginPath,
		CSRF: csrfToken(w, r, snap), AuthRequest: ar.ID, ClientName: client.DisplayName,
	}
	if r.Method == http.MethodGet {
		data.Username = ar.LoginHint // Core §3.1.2.1 login_hint
		s.pages.render(w, http.StatusOK, "login", ar.RedirectURI, data)
		return result{outcome: outcomeSuccess}
	}

	username, password := form.Get("username"), form.Get("password")
	data.Username = username
	info := infoFrom(r.Context())
	addr := s.proxies.clientAddr(r)
	if snap.Users == nil {
		data.Error = "Sign-in is not available: this server has no users configured."
		s.pages.render(w, http.StatusServiceUnavailable, "login", ar.RedirectURI, data)
		return result{outcome: ErrTemporarilyUnavailable}
	}
	// A browser that logged in to this account before is throttled on its
	// own (device.go); any other by the account and the address.
	devices := s.derive(snap).deviceKeys
	device, knownDevice := devices.verify(readCookie(r, snap, deviceCookie), username)
	ok, why, wait := s.throttle.allowed(username, addr, now)
	if knownDevice {
		ok, why, wait = s.throttle.allowedDevice(device, now)
	}
	if !ok {
		s.metrics.logins.WithLabelValues("throttled").Inc()
		// A username that is no account may be a password typed into the
		// wrong field: only real accounts are named.
		who := slog.Bool("username_known", false)
		if u, known := snap.Users.Lookup(username); known {
			who = slog.String("username", u.Username)
		}
		info.securityEvent(r.Context(), EventLoginThrottled, slog.String("throttled_by", string(why)), who,
			slog.String("client_id", client.ID))
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		data.Error = "Too many failed attempts. Wait a minute and try again."
		s.pages.render(w, http.StatusTooManyRequests, "login", ar.RedirectURI, data)
		return result{outcome: "throttled"}
	}
	user, err := snap.Users.Authenticate(username, password)
	if err != nil {
		if knownDevice {
			s.throttle.failedDevice(device, now)
		} else {
			s.throttle.failed(username, addr, now)
		}
		s.metrics.logins.WithLabelValues("invalid_credentials").Inc()
		data.Error = "Incorrect username or password."
		s.pages.render(w, http.StatusUnauthorized, "login", ar.RedirectURI, data)
		return result{outcome: "invalid_credentials"}
	}
	s.metrics.logins.WithLabelValues(outcomeSuccess).Inc()

	// A fresh session value on every login: a value planted before login
	// (session fixation) never becomes authenticated.
	cookie := randomToken(32)
	ctx := r.Context()
	sess := storage.Session{Hash: storage.HashToken(cookie), Subject: user.Subject, AuthTime: now, ExpiresAt: now.Add(s.sessionTTL)}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		s.log.Error("storing session", "error", err)
		s.errorPage(w, snap, http.StatusInternalServerError, "Something went wrong", "Your sign-in could not be saved. Try again shortly.")
		return result{outcome: ErrServerError}
	}
	if old := readCookie(r, snap, sessionCookie); old != "" {
		_ = s.store.DeleteSession(ctx, storage.HashToken(old))
	}
	setCookie(w, snap, sessionCookie, cookie, int(s.sessionTTL/time.Second))
	if key, ok := snap.SigningKey(now); ok {
		// A new cookie on each login: the device's bucket starts afresh.
		if v := devices.issue(key.ID, username); v != "" {
			setCookie(w, snap, deviceCookie, v, deviceCookieMaxAge)
		}
	}
	ar.Subject, ar.AuthTime, ar.SessionID = user.Subject, now, sessionID(sess)
	if err := s.store.UpdateAuthRequest(ctx, ar); err != nil {
		s.log.Error("updating authorization request", "error", err)
		s.errorPage(w, snap, http.StatusInternalServerError, "Something went wrong", "Your sign-in could not be saved. Try again shortly.")
		return result{outcome: ErrServerError}
	}
	return s.afterLogin(w, r, snap, client, ar, now)
}

// loadFlow finds the authorization request a page belongs to, and its
// client; when either is gone it shows an error page.
func (s *Server) loadFlow(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, id string, now time.Time) (storage.AuthRequest, *config.Client, bool) {
	if id == "" {
		s.errorPage(w, snap, http.StatusBadRequest, "Start from the application", "Sign-in starts at the application you want to use; open it and sign in from there.")
		return storage.AuthRequest{}, nil, false
	}
	ar, err := s.store.GetAuthRequest(r.Context(), id, now)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.log.Error("reading authorization request", "error", err)
		}
		s.errorPage(w, snap, http.StatusBadRequest, "Sign-in expired", "This sign-in took too long or was already completed. Go back to the application and start again.")
		return storage.AuthRequest{}, nil, false
	}
	client, ok := snap.Clients[ar.ClientID]
	if !ok || !client.HasRedirectURI(ar.RedirectURI) {
		s.errorPage(w, snap, http.StatusBadRequest, "Unknown application", "The application is no longer registered with this server.")
		return storage.AuthRequest{}, nil, false
	}
	return ar, client, true
}

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
