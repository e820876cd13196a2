package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// signedIn reports whether b's session still counts, by asking for a code
// with prompt=none (consent was remembered at login).
func signedIn(t *testing.T, b *browser, rp *relyingParty) bool {
	t.Helper()
	u := authorizeRedirect(t, b, rp, oauth2.SetAuthURLParam("prompt", "none"))
	switch {
	case u.Query().Get("code") != "":
		return true
	case u.Query().Get("error") == ErrLoginRequired:
		return false
	}
	t.Fatalf("prompt=none went to %s", u)
	return false
}

func endSessionURL(ts *testServer, params url.Values) string {
	return ts.URL + endpoints.EndSessionPath + "?" + params.Encode()
}

// TestEndSessionWithIDTokenHint: RP-Initiated Logout 1.0 with the
// signed-in person's ID token ends the session at once and returns to the
// registered post-logout URI with state.
func TestEndSessionWithIDTokenHint(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid")
	var doc struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := rp.provider.Claims(&doc); err != nil || doc.EndSession != ts.URL+"/logout" {
		t.Fatalf("end_session_endpoint = %q, %v", doc.EndSession, err)
	}
	b := newBrowser(t, ts)
	tok := rp.login(t, b, "n", true)
	if !signedIn(t, b, rp) {
		t.Fatal("not signed in after login")
	}
	resp, _ := b.get(endSessionURL(ts, url.Values{"id_token_hint": {tok.Extra("id_token").(string)},
		"post_logout_redirect_uri": {oidcLoggedOut}, "state": {"bye-1"}}))
	u := location(t, resp)
	if !strings.HasPrefix(u.String(), oidcLoggedOut) || u.Query().Get("state") != "bye-1" {
		t.Fatalf("logout went to %s", u)
	}
	if signedIn(t, b, rp) {
		t.Error("the session survived logout")
	}
}

// TestEndSessionAsksWithoutProof: without an ID token of the signed-in
// person, the person confirms on a page (CSRF-protected) before the
// session ends; a forged confirmation changes nothing.
func TestEndSessionAsksWithoutProof(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid")
	b := newBrowser(t, ts)
	rp.login(t, b, "n", true)

	resp, page := b.get(endSessionURL(ts, url.Values{"client_id": {oidcClientID}, "post_logout_redirect_uri": {oidcLoggedOut}, "state": {"s2"}}))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Sign out?") || !strings.Contains(page, "Grafana") {
		t.Fatalf("logout without a hint: %d %s", resp.StatusCode, page)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "form-action 'self' http://127.0.0.1:9998") {
		t.Errorf("CSP %q does not let the confirmation redirect to the app", resp.Header.Get("Content-Security-Policy"))
	}
	if !signedIn(t, b, rp) {
		t.Fatal("showing the confirmation page ended the session")
	}
	f := hiddenFields(page)
	forged := url.Values{}
	for k, v := range f {
		forged[k] = v
	}
	forged.Set("csrf_token", "x")
	forged.Set("decision", "logout")
	if resp, _ := b.post(ts.URL+endpoints.EndSessionPath, forged); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a confirmation without the CSRF token: %d", resp.StatusCode)
	}
	if !signedIn(t, b, rp) {
		t.Fatal("a forged confirmation ended the session")
	}
	f.Set("decision", "logout")
	resp, _ = b.post(ts.URL+endpoints.EndSessionPath, f)
	u := location(t, resp)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(u.String(), oidcLoggedOut) || u.Query().Get("state") != "s2" {
		t.Fatalf("confirmed logout: %d to %s", resp.StatusCode, u)
	}
	if signedIn(t, b, rp) {
		t.Error("the session survived a confirmed logout")
	}

	// Signed out already, no redirect: a page says so.
	resp, page = b.get(endSessionURL(ts, url.Values{}))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "You are signed out") {
		t.Errorf("logout when signed out: %d %s", resp.StatusCode, page)
	}
}

// TestEndSessionRefusesBadInput: an unregistered post-logout URI, one
// without a client, a forged or mismatched hint: a page, no redirect, and
// the session is left as it was.
func TestEndSessionRefusesBadInput(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid")
	b := newBrowser(t, ts)
	tok := rp.login(t, b, "n", true)
	hint := tok.Extra("id_token").(string)
	snap := ts.snap()
	foreign := &config.Snapshot{Issuer: snap.Issuer, AccessTokenTTL: 10 * time.Minute,
		Keys: &keyset.Set{Keys: []keyset.Key{activeKey(t, keyset.RS256, ts.clock.Now().Add(-time.Hour))}}}
	forged, e := ts.srv.signIDToken(foreign, idTokenGrant{tokenGrant: tokenGrant{Client: snap.Clients.Get(oidcClientID), Subject: testSubject}}, "at", ts.clock.Now())
	if e != nil {
		t.Fatal(e)
	}
	for name, params := range map[string]url.Values{
		"unregistered URI":               {"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}},
		"redirect URI (not post-logout)": {"client_id": {oidcClientID}, "post_logout_redirect_uri": {oidcRedirect}},
		"URI without a client":           {"post_logout_redirect_uri": {oidcLoggedOut}},
		"forged hint":                    {"id_token_hint": {forged}, "post_logout_redirect_uri": {oidcLoggedOut}},
		"hint of another client":         {"id_token_hint": {hint}, "client_id": {webClientID}},
		"unknown client":                 {"client_id": {"nobody"}},
		"repeated parameter":             {"client_id": {oidcClientID, oidcClientID}},
	} {
		resp, _ := b.get(endSessionURL(ts, params))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d, Location %q; want 400 and no redirect", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if !signedIn(t, b, rp) {
		t.Error("refused logout requests ended the session")
	}
}
