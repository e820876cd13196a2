package server

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
	"github.com/gatehouse-dev/gatehouse/server/internal/throttle"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// handleDevice is the device grant's verification page, /device (RFC 8628
// §3.3): the person types the user code their device shows. A GET shows
// the form, filled in from verification_uri_complete's user_code; even
// then the person confirms with a POST, so that a code in a link someone
// sent is never taken unseen (§5.4). The POST looks the code up, throttled
// like a password, and starts the person's approval as an authorization
// request with no redirect URI: the login page (any identity source)
// unless this browser's session knows them, then the consent page, which
// warns that a device will get the tokens (deviceConsent).
func (s *Server) handleDevice(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	form, res, ok := s.readPageForm(w, r, snap)
	if !ok {
		return res
	}
	// ui_locales on the verification URI (a command line may add the
	// person's language) holds for the form's answer too.
	action := trimIssuer(snap) + endpoints.DevicePath
	locales := uiLocales(r.URL.Query())
	if locales != "" {
		action += "?" + url.Values{"ui_locales": {locales}}.Encode()
	}
	data := s.page(r, snap, locales, pages.Data{
		Title: "Connect a device", Action: action, CSRF: csrfToken(w, r, snap),
	})
	typed := form.Get("user_code")
	if code, ok := normalizeUserCode(typed); ok {
		data.UserCode = displayUserCode(code)
	} else if len(typed) <= maxUserCodeInput {
		data.UserCode = typed
	}
	if r.Method == http.MethodGet {
		s.pages.Render(w, http.StatusOK, "device", "", data)
		return result{outcome: outcomeSuccess}
	}
	return s.startDeviceApproval(w, r, snap, typed, data, s.now())
}

// startDeviceApproval looks up the posted user code and sends the browser
// on to log in or consent.
func (s *Server) startDeviceApproval(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, typed string, data pages.Data, now time.Time) result {
	ctx := r.Context()
	addr := s.proxies.ClientAddr(r)
	again := func(status int, outcome, msg string) result {
		data.Error = msg
		s.pages.Render(w, status, "device", "", data)
		return result{outcome: outcome}
	}
	if ok, wait := s.throttle.AllowedAddress(addr, now); !ok {
		infoFrom(ctx).securityEvent(ctx, EventLoginThrottled, slog.String("throttled_by", string(throttle.Address)), slog.String("form", "user_code"))
		w.Header().Set("Retry-After", retryAfterSeconds(wait))
		return again(http.StatusTooManyRequests, "throttled", "Too many wrong codes. Wait a minute and try again.")
	}
	code, ok := normalizeUserCode(typed)
	if !ok {
		return again(http.StatusBadRequest, ErrInvalidRequest, "A code is 8 letters, such as BCDF-GHJK. Check the code your device shows.")
	}
	d, err := s.store.GetDeviceAuthorizationByUserCode(ctx, storage.HashToken(code), now)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.throttle.FailedAddress(addr, now)
		return again(http.StatusBadRequest, "invalid_user_code", "That code is not valid, or it has expired. Check the code your device shows, or start again there.")
	case err != nil:
		s.logStorageFailure(ctx, "looking up a user code", err)
		status, outcome := storagePageStatus(w, err)
		return again(status, outcome, "The code could not be checked. Try again shortly.")
	case d.Status != storage.DevicePending:
		return again(http.StatusBadRequest, "user_code_used", "This code has been used already. Start again on your device to get a new one.")
	}
	client := snap.Clients.Get(d.ClientID)
	if client == nil || !client.GrantTypes[oauthv1.GrantDeviceCode] {
		s.errorPageIn(w, r, snap, uiLocales(r.URL.Query()), http.StatusBadRequest, "Unknown application", "The application on your device is no longer registered with this server.")
		return result{outcome: ErrUnauthorizedClient}
	}
	ar := storage.AuthRequest{
		ID: randomToken(32), ClientID: client.ID, Scopes: d.Scopes,
		ExpiresAt: now.Add(authRequestTTL), Device: d.Hash, UILocales: uiLocales(r.URL.Query()),
	}
	if d.ExpiresAt.Before(ar.ExpiresAt) {
		ar.ExpiresAt = d.ExpiresAt
	}
	page := endpoints.LoginPath
	if sess, ok := s.session(ctx, r, snap, now); ok {
		ar.Subject, ar.AuthTime, ar.SessionID = sess.Subject, sess.AuthTime, sess.ID
		page = endpoints.ConsentPath
	}
	if err := s.store.CreateAuthRequest(ctx, ar); err != nil {
		s.logStorageFailure(ctx, "storing a device approval request", err)
		status, outcome := storagePageStatus(w, err)
		return again(status, outcome, "The code could not be checked. Try again shortly.")
	}
	http.Redirect(w, r, pageURL(snap, page, ar.ID), http.StatusSeeOther)
	return result{outcome: outcomeSuccess}
}

// deviceConsent is the consent page of a device approval: it names the
// client, lists the scopes that need consent, and warns that a device,
// not this browser, will get the tokens (RFC 8628 §5.4, remote phishing).
// It is always shown, whatever the client's skipConsent or a remembered
// consent say, and offers no "remember": the person must confirm that
// the code came from their own device, every time. The decision goes to
// the device authorization, where the device's next poll finds it: access
// tokens, or access_denied.
func (s *Server) deviceConsent(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, form url.Values, ar storage.AuthRequest, client *config.Client, now time.Time) result {
	if r.Method == http.MethodGet {
		var need []*config.Scope
		for _, name := range ar.Scopes {
			if sc, ok := snap.Scopes[name]; ok && sc.RequiresConsent {
				need = append(need, sc)
			}
		}
		s.pages.Render(w, http.StatusOK, "consent", "", s.page(r, snap, ar.UILocales, pages.Data{
			Title: "Allow access", Action: trimIssuer(snap) + endpoints.ConsentPath,
			CSRF: csrfToken(w, r, snap), AuthRequest: ar.ID, ClientName: client.DisplayName,
			ClientLogo: client.LogoURI, PolicyURI: client.PolicyURI, TOSURI: client.TOSURI,
			Subject: ar.Subject, Username: s.usernameOf(snap, ar.Subject), Scopes: need, Device: true,
		}))
		return result{outcome: outcomeSuccess}
	}
	decision := form.Get("decision")
	if decision != "approve" && decision != "deny" {
		s.errorPageIn(w, r, snap, ar.UILocales, http.StatusBadRequest, "Invalid request", "Choose Allow or Deny.")
		return result{outcome: ErrInvalidRequest}
	}
	ctx := r.Context()
	if ri := infoFrom(ctx); ri != nil {
		ri.auditPage(audit.EventConsent, client, ar.Subject)
		ri.audit.scopes, ri.audit.grant = ar.Scopes, string(oauthv1.GrantDeviceCode)
	}
	err := s.store.DecideDeviceAuthorization(ctx, ar.Device, storage.DeviceDecision{
		Approved: decision == "approve", Subject: ar.Subject, AuthTime: ar.AuthTime, SessionID: ar.SessionID,
	}, now)
	done := func(status int, outcome, title, msg string, args ...any) result {
		s.pages.Render(w, status, "device_done", "", s.page(r, snap, ar.UILocales, pages.Data{Title: title, Error: msg, ErrorArgs: args}))
		return result{outcome: outcome}
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return done(http.StatusBadRequest, ErrExpiredToken, "Code expired", "The code expired before you decided. Start again on your device to get a new one.")
	case errors.Is(err, storage.ErrDeviceDecided):
		return done(http.StatusBadRequest, "user_code_used", "Code already used", "This code has been used already. Start again on your device to get a new one.")
	case err != nil:
		s.logStorageFailure(ctx, "recording a device decision", err)
		status, outcome := storagePageStatus(w, err)
		return done(status, outcome, "Something went wrong", "Your decision could not be saved. Try again shortly.")
	}
	if err := s.store.DeleteAuthRequest(ctx, ar.ID); err != nil {
		s.log.Warn("deleting finished device approval request", "error", err)
	}
	if decision == "deny" {
		return done(http.StatusOK, ErrAccessDenied, "Access denied", "%s on your device was not given access.", client.DisplayName)
	}
	return done(http.StatusOK, outcomeSuccess, "Device connected", "%[1]s on your device is now signed in as %[2]s. Return to your device.", client.DisplayName, s.usernameOf(snap, ar.Subject))
}
