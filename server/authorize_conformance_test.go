package server

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// authorizeQuery is the query of an authorization URL x/oauth2 builds.
func authorizeQuery(t *testing.T, authURL string) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// assertAuthorizationError checks an error redirect back to the client.
func assertAuthorizationError(t *testing.T, ts *testServer, resp *http.Response, status int, code, state string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d", resp.StatusCode, status)
	}
	u := location(t, resp)
	q := u.Query()
	if !strings.HasPrefix(u.String(), webRedirect) || q.Get("error") != code || q.Get("state") != state || q.Get("iss") != ts.URL || q.Get("error_description") == "" {
		t.Fatalf("redirected to %s, want %s with error %s and state %q", u, webRedirect, code, state)
	}
}

// OpenID Connect Core §3.1.2.1: the authorization endpoint supports POST
// with the parameters form-encoded in the body, with the same checks as a
// GET. The POST is held and continued by a GET (303) that carries the
// browser's cookies; the rest of the flow, and x/oauth2's code exchange,
// are those of a GET.
func TestAuthorizeByPost(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid", "profile")
	cfg := rp.cfg
	verifier := oauth2.GenerateVerifier()
	form := authorizeQuery(t, cfg.AuthCodeURL("posted-state", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-post")))

	b := newBrowser(t, ts)
	resp, _ := b.post(ts.URL+endpoints.AuthorizePath, form)
	next := location(t, resp)
	if resp.StatusCode != http.StatusSeeOther || next.Path != endpoints.AuthorizePath ||
		next.Query().Get("client_id") != oidcClientID || !strings.HasPrefix(next.Query().Get("request_uri"), requestURIPrefix) || len(next.Query()) != 2 {
		t.Fatalf("POST answered %d to %s, want 303 to /authorize with client_id and a request_uri alone", resp.StatusCode, next)
	}
	back := b.authorize(next.String(), "approve", true)
	if back.Query().Get("state") != "posted-state" {
		t.Fatalf("came back to %s", back)
	}
	tok, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code of a POSTed request: %v", err)
	}
	if idt, _ := rp.verify(t, tok); idt.Nonce != "n-post" {
		t.Errorf("ID token nonce %q", idt.Nonce)
	}
	// The held request was used once.
	resp, page := b.get(next.String())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "expired or was already used") {
		t.Errorf("the held request again: %d %.200s", resp.StatusCode, page)
	}

	// With the person signed in, a POST is answered by single sign-on,
	// prompt=none included, as a GET would be.
	form = authorizeQuery(t, cfg.AuthCodeURL("sso", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
	resp, _ = b.post(ts.URL+endpoints.AuthorizePath, form)
	resp, _ = b.get(location(t, resp).String())
	if u := location(t, resp); u.Query().Get("code") == "" || u.Query().Get("state") != "sso" {
		t.Errorf("prompt=none by POST with a session: %s", u)
	}

	// The same checks as a GET: an error for the client goes back to it
	// (303, as for every answer to a POST), before anything is held.
	bad := authorizeQuery(t, cfg.AuthCodeURL("bad", oauth2.S256ChallengeOption(verifier)))
	bad.Set("response_type", "token")
	resp, _ = newBrowser(t, ts).post(ts.URL+endpoints.AuthorizePath, bad)
	if u := location(t, resp); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(u.String(), oidcRedirect) ||
		u.Query().Get("error") != ErrUnsupportedResponseType || u.Query().Get("state") != "bad" {
		t.Errorf("bad POST: %d to %s", resp.StatusCode, u)
	}

	for name, send := range map[string]func() *http.Response{
		"repeated parameter": func() *http.Response {
			body := form.Encode() + "&scope=orders:write"
			req, _ := http.NewRequest(http.MethodPost, ts.URL+endpoints.AuthorizePath, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r, _ := newBrowser(t, ts).do(req)
			return r
		},
		"parameters in the URL too": func() *http.Response {
			r, _ := newBrowser(t, ts).post(ts.URL+endpoints.AuthorizePath+"?client_id="+oidcClientID, form)
			return r
		},
		"not a form": func() *http.Response {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+endpoints.AuthorizePath, strings.NewReader(`{"client_id":"apps.grafana"}`))
			req.Header.Set("Content-Type", "application/json")
			r, _ := newBrowser(t, ts).do(req)
			return r
		},
	} {
		if resp := send(); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d to %q, want an error page", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	req, _ := http.NewRequest(http.MethodPut, ts.URL+endpoints.AuthorizePath, nil)
	if resp, _ := newBrowser(t, ts).do(req); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("PUT: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// jarClientID is a confidential web client whose keys are registered
// (private_key_jwt), so it may sign request objects.
const jarClientID = "apps.signed-web"

func jarServer(t *testing.T) (*testServer, *jwtKey) {
	t.Helper()
	ts := newTestServer(t)
	key := newJWTKey(t, "ES256", "web-signer")
	ts.update(func(s *config.Snapshot) {
		web := *s.Clients.Get(webClientID)
		web.ID, web.AuthMethod, web.AuthMethods, web.SecretHashes = jarClientID, oauthv1.AuthPrivateKeyJWT, nil, nil
		web.Assertion = &config.ClientAssertion{Keys: key.static(t)}
		s.Clients = s.Clients.With(&web)
	})
	return ts, key
}

// requestObject is a request object of jarClientID with the parameters of
// an authorization request.
func requestObject(ts *testServer, params url.Values) jwt.MapClaims {
	now := ts.clock.Now()
	c := jwt.MapClaims{"iss": jarClientID, "aud": ts.URL, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": randomToken(8)}
	for k, v := range params {
		c[k] = v[0]
	}
	return c
}

// Signed request objects (OpenID Connect Core §6.1, RFC 9101): the
// parameters come from the JWT alone, which the client signed with its
// registered key; the code it yields is exchanged with a private_key_jwt
// assertion through x/oauth2. Everything else is refused with the error
// that names it, never ignored.
func TestRequestObject(t *testing.T) {
	ts, key := jarServer(t)
	cfg := ts.webConfig("orders:read")
	cfg.ClientID, cfg.ClientSecret, cfg.Endpoint.AuthStyle = jarClientID, "", oauth2.AuthStyleInParams
	verifier := oauth2.GenerateVerifier()
	inner := authorizeQuery(t, cfg.AuthCodeURL("signed-state", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-1")))
	authorizeWith := func(outer url.Values) string { return ts.URL + endpoints.AuthorizePath + "?" + outer.Encode() }

	// The outer state and scope are not the request's: RFC 9101 §5.
	object := key.sign(t, requestObject(ts, inner), nil)
	back := newBrowser(t, ts).authorize(authorizeWith(url.Values{"client_id": {jarClientID}, "request": {object},
		"state": {"outer-state"}, "scope": {"orders:write"}, "response_type": {"code"}}), "approve", false)
	if back.Query().Get("state") != "signed-state" || back.Query().Get("code") == "" {
		t.Fatalf("came back to %s, want the request object's state", back)
	}
	assertion := key.sign(t, jwt.MapClaims{"iss": jarClientID, "sub": jarClientID, "aud": ts.URL, "exp": ts.clock.Now().Add(time.Minute).Unix(), "jti": randomToken(8)}, nil)
	tok, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("client_assertion_type", jwtBearerValue), oauth2.SetAuthURLParam("client_assertion", assertion))
	if err != nil {
		t.Fatalf("exchanging the code of a request object: %v", err)
	}
	if tok.Extra("scope") != "orders:read" {
		t.Errorf("scope %v, want the request object's", tok.Extra("scope"))
	}

	other := newJWTKey(t, "ES256", "web-signer")
	outer := func(req string) url.Values {
		return url.Values{"client_id": {jarClientID}, "request": {req}, "redirect_uri": {webRedirect}, "state": {"outer"}}
	}
	unsigned := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	edit := func(f func(jwt.MapClaims)) jwt.MapClaims { c := requestObject(ts, inner); f(c); return c }
	for _, tc := range []struct {
		name  string
		query url.Values
		code  string
	}{
		{"unsigned (alg none)", outer(unsigned(requestObject(ts, inner))), ErrInvalidRequestObject},
		{"another key", outer(other.sign(t, requestObject(ts, inner), nil)), ErrInvalidRequestObject},
		{"iss not the client", outer(key.sign(t, edit(func(c jwt.MapClaims) { c["iss"] = webClientID }), nil)), ErrInvalidRequestObject},
		{"aud not the issuer", outer(key.sign(t, edit(func(c jwt.MapClaims) { c["aud"] = "https://elsewhere.example" }), nil)), ErrInvalidRequestObject},
		{"expired", outer(key.sign(t, edit(func(c jwt.MapClaims) { c["exp"] = ts.clock.Now().Add(-time.Hour).Unix() }), nil)), ErrInvalidRequestObject},
		{"for another client", outer(key.sign(t, edit(func(c jwt.MapClaims) { c["client_id"] = webClientID }), nil)), ErrInvalidRequestObject},
		{"nested request_uri", outer(key.sign(t, edit(func(c jwt.MapClaims) { c["request_uri"] = "https://x.example/r" }), nil)), ErrInvalidRequestObject},
		{"request_uri to fetch", url.Values{"client_id": {jarClientID}, "request_uri": {"https://app.example/request.jwt"},
			"redirect_uri": {webRedirect}, "state": {"outer"}}, ErrRequestURINotSupported},
		{"request and request_uri", url.Values{"client_id": {jarClientID}, "request": {object}, "request_uri": {requestURIPrefix + "x"},
			"redirect_uri": {webRedirect}, "state": {"outer"}}, ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := newBrowser(t, ts).get(authorizeWith(tc.query))
			assertAuthorizationError(t, ts, resp, http.StatusFound, tc.code, "outer")
		})
	}

	// A client without registered keys cannot have its request objects
	// verified: request_not_supported, to its own redirect URI.
	webObject := requestObject(ts, inner)
	webObject["iss"] = webClientID
	resp, _ := newBrowser(t, ts).get(authorizeWith(url.Values{"client_id": {webClientID}, "request": {key.sign(t, webObject, nil)},
		"redirect_uri": {webRedirect}, "state": {"outer"}}))
	assertAuthorizationError(t, ts, resp, http.StatusFound, ErrRequestNotSupported, "outer")

	// Without a registered redirect_uri outside the object, a refusal is
	// a page: the object's redirect_uri is not verified.
	resp, page := newBrowser(t, ts).get(authorizeWith(url.Values{"client_id": {jarClientID}, "request": {unsigned(requestObject(ts, inner))}}))
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(page, "alg none") {
		t.Errorf("unsigned request object without an outer redirect_uri: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// signInAndDecide goes from an authorization URL through the login and
// consent pages, and returns the answer to the decision: in form_post
// mode, the page that posts the response.
func (b *browser) signInAndDecide(authURL, decision string, remember bool) (*http.Response, string) {
	b.t.Helper()
	resp, _ := b.get(authURL)
	_, page := b.get(location(b.t, resp).String())
	f := hiddenFields(page)
	f.Set("username", testUser)
	f.Set("password", testPassword)
	resp, _ = b.post(b.ts.URL+endpoints.LoginPath, f)
	_, page = b.get(location(b.t, resp).String())
	f = hiddenFields(page)
	f.Set("decision", decision)
	if remember {
		f.Set("remember", "yes")
	}
	return b.post(b.ts.URL+endpoints.ConsentPath, f)
}

var formPostRE = regexp.MustCompile(`<form method="post" action="([^"]*)" id="response">`)

// formPostFields reads the form_post page's destination and fields.
func formPostFields(t *testing.T, resp *http.Response, page string) (string, url.Values) {
	t.Helper()
	m := formPostRE.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("status %d, want the form_post page: %.300s", resp.StatusCode, page)
	}
	return m[1], hiddenFields(page)
}

// response_mode=form_post: codes and errors alike reach the client in a
// page that posts them to the redirect URI, under a CSP that lets its one
// script run and its form go to the client's origin alone. An unsupported
// response mode is refused in the query.
func TestFormPostResponseMode(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.webConfig("orders:read")
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("fp-state", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("response_mode", "form_post"))

	b := newBrowser(t, ts)
	resp, page := b.signInAndDecide(authURL, "approve", true)
	action, fields := formPostFields(t, resp, page)
	if action != webRedirect || fields.Get("state") != "fp-state" || fields.Get("iss") != ts.URL || fields.Get("code") == "" || fields.Has("csrf_token") {
		t.Fatalf("form_post to %s with %v", action, fields)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src "+ts.srv.pages.FormPostScriptSource()+";") || !strings.Contains(csp, "form-action http://127.0.0.1:9999;") {
		t.Errorf("CSP %q", csp)
	}
	if _, err := cfg.Exchange(ctx(t), fields.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("code delivered by form_post: %v", err)
	}

	// Single sign-on answers /authorize itself with the page.
	resp, page = b.get(authURL)
	if _, fields = formPostFields(t, resp, page); fields.Get("code") == "" {
		t.Errorf("single sign-on by form_post: %v", fields)
	}

	// Errors too, whether found at /authorize or on the consent page.
	resp, page = newBrowser(t, ts).get(cfg.AuthCodeURL("no-pkce", oauth2.SetAuthURLParam("response_mode", "form_post")))
	if _, fields = formPostFields(t, resp, page); fields.Get("error") != ErrInvalidRequest || fields.Get("state") != "no-pkce" || fields.Get("iss") != ts.URL {
		t.Errorf("error at /authorize by form_post: %v", fields)
	}
	// A denial (on a server where nothing is remembered yet).
	ts2 := newTestServer(t)
	cfg2 := ts2.webConfig("orders:read")
	resp, page = newBrowser(t, ts2).signInAndDecide(cfg2.AuthCodeURL("deny2", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("response_mode", "form_post")), "deny", false)
	if _, fields = formPostFields(t, resp, page); fields.Get("error") != ErrAccessDenied || fields.Get("state") != "deny2" {
		t.Errorf("denial by form_post: %v", fields)
	}

	for _, mode := range []string{"fragment", "jwt", "form_post.jwt"} {
		resp, _ = newBrowser(t, ts).get(cfg.AuthCodeURL("m", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("response_mode", mode)))
		assertAuthorizationError(t, ts, resp, http.StatusFound, ErrInvalidRequest, "m")
	}
}
