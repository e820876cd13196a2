package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// push sends a pushed authorization request and decodes a 201 answer.
func (ts *testServer) push(t *testing.T, form url.Values, user, pass string) (requestURI string, expiresIn float64) {
	t.Helper()
	resp := ts.postForm(t, endpoints.PushedAuthorizationRequestPath, form, user, pass)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || len(out) != 2 {
		t.Errorf("push answer: Cache-Control %q, members %v", resp.Header.Get("Cache-Control"), out)
	}
	requestURI, _ = out["request_uri"].(string)
	expiresIn, _ = out["expires_in"].(float64)
	return requestURI, expiresIn
}

func authorizeByReference(ts *testServer, clientID, requestURI string, extra url.Values) string {
	q := url.Values{"client_id": {clientID}, "request_uri": {requestURI}}
	for k, v := range extra {
		q[k] = v
	}
	return ts.URL + endpoints.AuthorizePath + "?" + q.Encode()
}

// RFC 9126: the client pushes the request's parameters with its
// authentication and gets a request_uri; /authorize with client_id and
// that request_uri runs the pushed request alone, once, within its
// lifetime, and x/oauth2 redeems the code as for any other.
func TestPushedAuthorizationRequest(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.webConfig("orders:read")
	verifier := oauth2.GenerateVerifier()
	params := authorizeQuery(t, cfg.AuthCodeURL("pushed-state", oauth2.S256ChallengeOption(verifier)))

	requestURI, expiresIn := ts.push(t, params, webClientID, webSecret)
	if !strings.HasPrefix(requestURI, requestURIPrefix) || len(requestURI) < len(requestURIPrefix)+43 || expiresIn != 60 {
		t.Fatalf("request_uri %q, expires_in %v; want a urn:ietf:params:oauth:request_uri: with 256 random bits, 60 s", requestURI, expiresIn)
	}
	// Parameters outside the pushed request are ignored, not mixed in.
	b := newBrowser(t, ts)
	authURL := authorizeByReference(ts, webClientID, requestURI, url.Values{"state": {"outer"}, "scope": {"orders:write"}})
	back := b.authorize(authURL, "approve", false)
	if back.Query().Get("state") != "pushed-state" {
		t.Fatalf("came back to %s, want the pushed state", back)
	}
	tok, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code of a pushed request: %v", err)
	}
	if tok.Extra("scope") != "orders:read" {
		t.Errorf("scope %v, want the pushed one", tok.Extra("scope"))
	}

	expired := func(t *testing.T, u string) {
		t.Helper()
		resp, page := newBrowser(t, ts).get(u)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(page, "Sign-in expired") {
			t.Errorf("%s: %d to %q, want the expired page", u, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	t.Run("used once", func(t *testing.T) { expired(t, authURL) })
	t.Run("short-lived", func(t *testing.T) {
		uri, _ := ts.push(t, params, webClientID, webSecret)
		ts.clock.Advance(60*time.Second + ClockSkewLeeway)
		expired(t, authorizeByReference(ts, webClientID, uri, nil))
	})
	t.Run("pushed by another client", func(t *testing.T) {
		uri, _ := ts.push(t, params, webClientID, webSecret)
		expired(t, authorizeByReference(ts, noPKCEClientID, uri, nil))
		expired(t, authorizeByReference(ts, webClientID, uri, nil)) // and spent
	})
	t.Run("public client", func(t *testing.T) {
		spa := ts.spaConfig("orders:read")
		v := oauth2.GenerateVerifier()
		p := authorizeQuery(t, spa.AuthCodeURL("spa", oauth2.S256ChallengeOption(v)))
		uri, _ := ts.push(t, p, "", "")
		back := newBrowser(t, ts).authorize(authorizeByReference(ts, spaClientID, uri, nil), "approve", false)
		if _, err := spa.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(v)); err != nil {
			t.Fatalf("public client's pushed request: %v", err)
		}
	})
}

// A push is checked as /authorize would check the request, and refused in
// JSON (RFC 9126 §2.3); nothing is stored for it.
func TestPushedAuthorizationRequestRefusals(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.webConfig("orders:read")
	good := authorizeQuery(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range good {
			f[key] = vs
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		code       string
	}{
		{"client_id alone for a confidential client", good, "", "", http.StatusBadRequest, ErrInvalidClient},
		{"no client at all", with("client_id", ""), "", "", http.StatusUnauthorized, ErrInvalidClient},
		{"wrong secret", good, webClientID, "wrong", http.StatusUnauthorized, ErrInvalidClient},
		{"unregistered redirect_uri", with("redirect_uri", "https://evil.example/cb"), webClientID, webSecret, http.StatusBadRequest, ErrInvalidRequest},
		{"no redirect_uri", with("redirect_uri", ""), webClientID, webSecret, http.StatusBadRequest, ErrInvalidRequest},
		{"request_uri", with("request_uri", requestURIPrefix+"abc"), webClientID, webSecret, http.StatusBadRequest, ErrInvalidRequest},
		{"scope not allowed", with("scope", "admin"), webClientID, webSecret, http.StatusBadRequest, ErrInvalidScope},
		{"no PKCE", with("code_challenge", ""), webClientID, webSecret, http.StatusBadRequest, ErrInvalidRequest},
		{"response type", with("response_type", "token"), webClientID, webSecret, http.StatusBadRequest, ErrUnsupportedResponseType},
		{"response mode", with("response_mode", "fragment"), webClientID, webSecret, http.StatusBadRequest, ErrInvalidRequest},
		{"request object without keys", with("request", "e30.e30.sig"), webClientID, webSecret, http.StatusBadRequest, ErrRequestNotSupported},
		{"client without the code grant", url.Values{"response_type": {"code"}, "redirect_uri": {webRedirect}}, ccClientID, ccSecret, http.StatusBadRequest, ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertOAuthError(t, ts.postForm(t, endpoints.PushedAuthorizationRequestPath, tc.form, tc.user, tc.pass), tc.status, tc.code)
		})
	}
	resp, err := http.Get(ts.URL + endpoints.PushedAuthorizationRequestPath)
	if err != nil {
		t.Fatal(err)
	}
	assertOAuthError(t, resp, http.StatusMethodNotAllowed, ErrInvalidRequest)
	if n, _ := ts.store.DeleteExpired(ctx(t), ts.clock.Now().Add(time.Hour)); n != 0 {
		t.Errorf("refused pushes stored %d objects", n)
	}
}

// A client that must use PAR (per client, or all of a server's) gets no
// code for a request that did not come through a push: by GET, by POST
// (held, but not pushed), or as a request object. The metadata says so.
func TestPushedAuthorizationRequired(t *testing.T) {
	ts := newTestServer(t)
	ts.update(func(s *config.Snapshot) {
		web := *s.Clients.Get(webClientID)
		web.RequirePAR = true
		s.Clients = s.Clients.With(&web)
	})
	cfg := ts.webConfig("orders:read")
	verifier := oauth2.GenerateVerifier()
	direct := cfg.AuthCodeURL("direct", oauth2.S256ChallengeOption(verifier))
	resp, _ := newBrowser(t, ts).get(direct)
	assertAuthorizationError(t, ts, resp, http.StatusFound, ErrInvalidRequest, "direct")
	resp, _ = newBrowser(t, ts).post(ts.URL+endpoints.AuthorizePath, authorizeQuery(t, direct))
	assertAuthorizationError(t, ts, resp, http.StatusSeeOther, ErrInvalidRequest, "direct")

	uri, _ := ts.push(t, authorizeQuery(t, cfg.AuthCodeURL("pushed", oauth2.S256ChallengeOption(verifier))), webClientID, webSecret)
	if back := newBrowser(t, ts).authorize(authorizeByReference(ts, webClientID, uri, nil), "approve", false); back.Query().Get("code") == "" {
		t.Fatalf("a pushed request of a client that must push: %s", back)
	}
	// The other clients may still choose.
	if back := newBrowser(t, ts).authorize(ts.spaConfig("orders:read").AuthCodeURL("spa", oauth2.S256ChallengeOption(verifier)), "approve", false); back.Query().Get("code") == "" {
		t.Fatalf("a client that need not push: %s", back)
	}
	if getJSON(t, ts.URL+endpoints.MetadataWellKnown)["require_pushed_authorization_requests"] != false {
		t.Error("metadata requires PAR of every client, but only one must")
	}

	ts.update(func(s *config.Snapshot) { s.RequirePAR = true })
	resp, _ = newBrowser(t, ts).get(ts.spaConfig("orders:read").AuthCodeURL("spa", oauth2.S256ChallengeOption(verifier)))
	if u := location(t, resp); u.Query().Get("error") != ErrInvalidRequest {
		t.Errorf("server-wide PAR, direct request: %s", u)
	}
	meta := getJSON(t, ts.URL+endpoints.MetadataWellKnown)
	if meta["require_pushed_authorization_requests"] != true || meta["pushed_authorization_request_endpoint"] != ts.URL+"/par" {
		t.Errorf("metadata: %v %v", meta["require_pushed_authorization_requests"], meta["pushed_authorization_request_endpoint"])
	}
}

// A push may carry a signed request object (RFC 9126 §3), from a client
// that authenticates with a private_key_jwt assertion.
func TestPushedRequestObject(t *testing.T) {
	ts, key := jarServer(t)
	cfg := ts.webConfig("orders:read")
	cfg.ClientID = jarClientID
	verifier := oauth2.GenerateVerifier()
	object := key.sign(t, requestObject(ts, authorizeQuery(t, cfg.AuthCodeURL("jar-par", oauth2.S256ChallengeOption(verifier)))), nil)
	assertion := func() string {
		return key.sign(t, jwt.MapClaims{"iss": jarClientID, "sub": jarClientID, "aud": ts.URL, "exp": ts.clock.Now().Add(time.Minute).Unix(), "jti": randomToken(8)}, nil)
	}
	uri, _ := ts.push(t, url.Values{"client_id": {jarClientID}, "client_assertion_type": {jwtBearerValue}, "client_assertion": {assertion()},
		"request": {object}}, "", "")
	back := newBrowser(t, ts).authorize(authorizeByReference(ts, jarClientID, uri, nil), "approve", false)
	if back.Query().Get("state") != "jar-par" || back.Query().Get("code") == "" {
		t.Fatalf("came back to %s", back)
	}
}
