package server

// The OpenID Foundation's certification test plans for an OpenID Provider
// (Basic OP, Config OP, RP-Initiated Logout OP), module by module: each
// subtest is named after the module of the OpenID conformance suite and
// checks what that module checks, with go-oidc and golang.org/x/oauth2 as
// the relying party. docs/conformance.md lists them with their status.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// oidfRun is one module's run: a server with the OpenID client (apps.grafana,
// a static client with client_secret_basic), a go-oidc relying party and
// a browser.
type oidfRun struct {
	t  *testing.T
	ts *testServer
	rp *relyingParty
	b  *browser
	// pkce: send S256 PKCE, as only oidcc-ensure-request-with-valid-pkce-succeeds does.
	pkce bool
}

func newOIDFRun(t *testing.T, scopes ...string) *oidfRun {
	t.Helper()
	ts := newTestServer(t)
	withOIDC(t, ts)
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	// The suite sends PKCE in one module only, so its client may not
	// require it (spec.requirePKCE: false); Gatehouse's default is on.
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(oidcClientID)
		c.RequirePKCE = false
		s.Clients = s.Clients.With(&c)
	})
	rp := newRelyingParty(t, ts, scopes...)
	// The client's method, client_secret_basic, rather than x/oauth2's
	// guess, which retries a refused request with the other method.
	rp.cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return &oidfRun{t: t, ts: ts, rp: rp, b: newBrowser(t, ts)}
}

// code runs the authorization request through login and consent (which
// is remembered) and returns the redirect back, checked for state and iss
// (RFC 9207), and the PKCE verifier when o.pkce.
func (o *oidfRun) code(opts ...oauth2.AuthCodeOption) (*url.URL, string) {
	o.t.Helper()
	v := ""
	if o.pkce {
		v = oauth2.GenerateVerifier()
		opts = append(opts, oauth2.S256ChallengeOption(v))
	}
	back := o.b.authorize(o.rp.cfg.AuthCodeURL("oidf-state", opts...), "approve", true)
	if q := back.Query(); q.Get("code") == "" || q.Get("state") != "oidf-state" || q.Get("iss") != o.ts.URL {
		o.t.Fatalf("came back to %s, want a code with state and iss", back)
	}
	return back, v
}

// exchange redeems a code (with the PKCE verifier, if any) and verifies
// the ID token with go-oidc.
func (o *oidfRun) exchange(back *url.URL, verifier string) (*oauth2.Token, *oidc.IDToken, map[string]any) {
	o.t.Helper()
	tok, err := o.redeem(back, verifier)
	if err != nil {
		o.t.Fatalf("code exchange: %v", err)
	}
	idt, claims := o.rp.verify(o.t, tok)
	return tok, idt, claims
}

// redeem sends the code of a redirect back to the token endpoint.
func (o *oidfRun) redeem(back *url.URL, verifier string) (*oauth2.Token, error) {
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	return o.rp.cfg.Exchange(ctx(o.t), back.Query().Get("code"), opts...)
}

// flow is code and exchange.
func (o *oidfRun) flow(opts ...oauth2.AuthCodeOption) (*oauth2.Token, *oidc.IDToken, map[string]any) {
	o.t.Helper()
	return o.exchange(o.code(opts...))
}

// silent is an authorization request answered without any page.
func (o *oidfRun) silent(opts ...oauth2.AuthCodeOption) *url.URL {
	o.t.Helper()
	return authorizeRedirect(o.t, o.b, o.rp, opts...)
}

func (o *oidfRun) userinfo(tok *oauth2.Token) map[string]any {
	o.t.Helper()
	ui, err := o.rp.provider.UserInfo(ctx(o.t), oauth2.StaticTokenSource(tok))
	if err != nil {
		o.t.Fatalf("userinfo: %v", err)
	}
	var claims map[string]any
	if err := ui.Claims(&claims); err != nil {
		o.t.Fatal(err)
	}
	return claims
}

func wantRedirectError(t *testing.T, u *url.URL, code string) {
	t.Helper()
	if !strings.HasPrefix(u.String(), oidcRedirect) || u.Query().Get("error") != code || u.Query().Get("state") == "" {
		t.Fatalf("came back to %s, want error %s with the state", u, code)
	}
}

var param = oauth2.SetAuthURLParam

// authTime is an ID token's auth_time, 0 when it has none.
func authTime(claims map[string]any) float64 {
	v, _ := claims["auth_time"].(float64)
	return v
}

// TestOIDFBasicOP mirrors the Basic OP certification plan
// (oidcc-basic-certification-test-plan: response_type code,
// client_secret_basic, static client).
func TestOIDFBasicOP(t *testing.T) {
	t.Run("oidcc-server", func(t *testing.T) {
		o := newOIDFRun(t)
		tok, idt, _ := o.flow(oidc.Nonce("n-server"))
		if idt.Nonce != "n-server" || idt.VerifyAccessToken(tok.AccessToken) != nil || idt.Subject != testSubject {
			t.Errorf("ID token: nonce %q, sub %q, at_hash checked: %v", idt.Nonce, idt.Subject, idt.VerifyAccessToken(tok.AccessToken))
		}
	})
	t.Run("oidcc-response-type-missing", func(t *testing.T) {
		o := newOIDFRun(t)
		wantRedirectError(t, o.silent(param("response_type", "")), ErrInvalidRequest)
	})
	t.Run("oidcc-idtoken-signature", func(t *testing.T) {
		o := newOIDFRun(t)
		tok, _, _ := o.flow()
		if h := jwtHeader(t, tok.Extra("id_token").(string)); h["alg"] != "RS256" || h["kid"] == nil {
			t.Errorf("ID token header %v: want RS256, the default, with the kid of a published key", h)
		}
	})
	t.Run("oidcc-idtoken-unsigned", func(t *testing.T) {
		// The suite skips the module unless discovery offers alg none.
		o := newOIDFRun(t)
		algs := getJSON(t, o.ts.URL+endpoints.OpenIDConfigurationPath)["id_token_signing_alg_values_supported"]
		if strings.Contains(mustJSON(algs), `"none"`) {
			t.Errorf("id_token_signing_alg_values_supported %v offers none", algs)
		}
	})
	for _, tc := range []struct{ name, method, authz, body string }{
		{"oidcc-userinfo-get", http.MethodGet, "Bearer ", ""},
		{"oidcc-userinfo-post-header", http.MethodPost, "Bearer ", ""},
		{"oidcc-userinfo-post-body", http.MethodPost, "", "access_token="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOIDFRun(t, "openid", "email")
			tok, _, _ := o.flow()
			authz, body := tc.authz, tc.body
			if authz != "" {
				authz += tok.AccessToken
			} else {
				body += url.QueryEscape(tok.AccessToken)
			}
			resp := userinfoRequest(t, o.ts, tc.method, authz, body)
			defer resp.Body.Close()
			var info map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK ||
				info["sub"] != testSubject || info["email"] != "alice@example.com" {
				t.Errorf("userinfo: %d %v %v", resp.StatusCode, info, err)
			}
		})
	}
	t.Run("oidcc-ensure-request-without-nonce-succeeds-for-code-flow", func(t *testing.T) {
		o := newOIDFRun(t)
		if _, idt, _ := o.flow(); idt.Nonce != "" {
			t.Errorf("nonce %q in the ID token of a request without one", idt.Nonce)
		}
	})
	t.Run("oidcc-scope-profile", func(t *testing.T) {
		o := newOIDFRun(t, "openid", "profile")
		tok, _, _ := o.flow()
		if info := o.userinfo(tok); info["name"] != "Alice Example" || info["preferred_username"] != testUser {
			t.Errorf("userinfo %v", info)
		}
	})
	t.Run("oidcc-scope-email", func(t *testing.T) {
		o := newOIDFRun(t, "openid", "email")
		tok, _, _ := o.flow()
		if info := o.userinfo(tok); info["email"] != "alice@example.com" || info["email_verified"] != true {
			t.Errorf("userinfo %v", info)
		}
	})
	for _, name := range []string{"oidcc-scope-address", "oidcc-scope-phone", "oidcc-scope-all"} {
		t.Run(name, func(t *testing.T) {
			// Skipped by the suite: the scopes are not offered (no
			// source of people has addresses or phone numbers).
			o := newOIDFRun(t)
			scopes := mustJSON(getJSON(t, o.ts.URL+endpoints.OpenIDConfigurationPath)["scopes_supported"])
			if strings.Contains(scopes, `"address"`) || strings.Contains(scopes, `"phone"`) {
				t.Errorf("scopes_supported %s offers address or phone", scopes)
			}
		})
	}
	t.Run("oidcc-ensure-other-scope-order-succeeds", func(t *testing.T) {
		o := newOIDFRun(t, "openid", "email")
		// RFC 6749 §3.3: the order of scopes does not matter. The
		// parameters come in another order than x/oauth2's too.
		raw := o.ts.URL + endpoints.AuthorizePath + "?state=oidf-state&scope=email+openid&nonce=n-order" +
			"&redirect_uri=" + url.QueryEscape(oidcRedirect) + "&response_type=code&client_id=" + oidcClientID
		tok, idt, _ := o.exchange(o.b.authorize(raw, "approve", true), "")
		if info := o.userinfo(tok); idt.Nonce != "n-order" || info["email"] != "alice@example.com" {
			t.Errorf("nonce %q, userinfo %v", idt.Nonce, info)
		}
	})
	// Parameters the server does not act on are ignored, never an error.
	for _, tc := range []struct{ name, key, value string }{
		{"oidcc-display-page", "display", "page"},
		{"oidcc-display-popup", "display", "popup"},
		{"oidcc-ui-locales", "ui_locales", "se"},
		{"oidcc-claims-locales", "claims_locales", "se"},
		{"oidcc-ensure-request-with-acr-values-succeeds", "acr_values", "1 2"},
		{"oidcc-ensure-request-with-unknown-parameter-succeeds", "extra", "foobar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOIDFRun(t)
			if _, _, claims := o.flow(param(tc.key, tc.value)); claims["acr"] != nil {
				t.Errorf("acr %v, which this server does not set", claims["acr"])
			}
		})
	}
	t.Run("oidcc-prompt-login", func(t *testing.T) {
		o := newOIDFRun(t)
		_, first, c1 := o.flow()
		o.ts.clock.Advance(2 * time.Second)
		if u := o.silent(param("prompt", "login")); u.Path != endpoints.LoginPath {
			t.Fatalf("prompt=login went to %s, want the login page", u)
		}
		_, second, c2 := o.flow(param("prompt", "login"))
		if authTime(c2) <= authTime(c1) || second.Subject != first.Subject {
			t.Errorf("auth_time %v then %v: a new login must be later", c1["auth_time"], c2["auth_time"])
		}
	})
	t.Run("oidcc-prompt-none-not-logged-in", func(t *testing.T) {
		o := newOIDFRun(t)
		wantRedirectError(t, o.silent(param("prompt", "none")), ErrLoginRequired)
	})
	t.Run("oidcc-prompt-none-logged-in", func(t *testing.T) {
		o := newOIDFRun(t)
		_, first, c1 := o.flow()
		resp, _ := o.b.get(o.rp.cfg.AuthCodeURL("oidf-state", param("prompt", "none")))
		_, second, c2 := o.exchange(location(t, resp), "")
		if second.Subject != first.Subject || authTime(c2) != authTime(c1) {
			t.Errorf("sub %s/%s, auth_time %v/%v: want the same login", first.Subject, second.Subject, c1["auth_time"], c2["auth_time"])
		}
	})
	t.Run("oidcc-max-age-1", func(t *testing.T) {
		o := newOIDFRun(t)
		_, _, c1 := o.flow()
		o.ts.clock.Advance(2 * time.Second)
		if u := o.silent(param("max_age", "1")); u.Path != endpoints.LoginPath {
			t.Fatalf("max_age=1 after 2 s went to %s, want the login page", u)
		}
		if _, _, c2 := o.flow(param("max_age", "1")); authTime(c2) <= authTime(c1) {
			t.Errorf("auth_time %v then %v", c1["auth_time"], c2["auth_time"])
		}
	})
	t.Run("oidcc-max-age-10000", func(t *testing.T) {
		o := newOIDFRun(t)
		_, _, c1 := o.flow(param("max_age", "15000"))
		resp, _ := o.b.get(o.rp.cfg.AuthCodeURL("oidf-state", param("max_age", "10000")))
		if _, _, c2 := o.exchange(location(t, resp), ""); authTime(c2) == 0 || authTime(c2) != authTime(c1) {
			t.Errorf("auth_time %v then %v: want the same login, without a page", c1["auth_time"], c2["auth_time"])
		}
	})
	t.Run("oidcc-id-token-hint", func(t *testing.T) {
		o := newOIDFRun(t)
		tok, _, _ := o.flow()
		if u := o.silent(param("prompt", "none"), param("id_token_hint", tok.Extra("id_token").(string))); u.Query().Get("code") == "" {
			t.Errorf("prompt=none with id_token_hint went to %s", u)
		}
	})
	t.Run("oidcc-login-hint", func(t *testing.T) {
		o := newOIDFRun(t)
		u := o.silent(param("login_hint", "buffy@"+strings.TrimPrefix(o.ts.URL, "http://")))
		if resp, page := o.b.get(u.String()); resp.StatusCode != http.StatusOK || !strings.Contains(page, `value="buffy@`) {
			t.Errorf("login page for a login_hint: %d", resp.StatusCode)
		}
		o.flow(param("login_hint", testUser))
	})
	t.Run("oidcc-codereuse", func(t *testing.T) {
		o := newOIDFRun(t)
		back, v := o.code()
		o.exchange(back, v)
		if _, err := o.redeem(back, v); retrieveError(t, err).ErrorCode != ErrInvalidGrant {
			t.Errorf("second use: %v", err)
		}
	})
	t.Run("oidcc-codereuse-30seconds", func(t *testing.T) {
		o := newOIDFRun(t)
		back, v := o.code()
		tok, _, _ := o.exchange(back, v)
		o.ts.clock.Advance(30 * time.Second)
		if _, err := o.redeem(back, v); retrieveError(t, err).ErrorCode != ErrInvalidGrant {
			t.Errorf("second use after 30 s: %v", err)
		}
		// The first redemption's access token is revoked (RFC 6749 §4.1.2).
		assertBearerError(t, o.ts, userinfoRequest(t, o.ts, http.MethodGet, "Bearer "+tok.AccessToken, ""), http.StatusUnauthorized, ErrInvalidToken)
	})
	t.Run("oidcc-ensure-registered-redirect-uri", func(t *testing.T) {
		o := newOIDFRun(t)
		resp, page := o.b.get(o.rp.cfg.AuthCodeURL("s", param("redirect_uri", "https://unregistered.example/cb")))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(page, "Invalid return address") {
			t.Errorf("unregistered redirect_uri: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("oidcc-ensure-post-request-succeeds", func(t *testing.T) {
		o := newOIDFRun(t)
		resp, _ := o.b.post(o.ts.URL+endpoints.AuthorizePath, authorizeQuery(t, o.rp.cfg.AuthCodeURL("oidf-state")))
		o.exchange(o.b.authorize(location(t, resp).String(), "approve", true), "")
	})
	t.Run("oidcc-server-client-secret-post", func(t *testing.T) {
		o := newOIDFRun(t)
		o.ts.update(func(s *config.Snapshot) {
			c := *s.Clients.Get(oidcClientID)
			c.AuthMethod, c.AuthMethods = oauthv1.AuthClientSecretPost, nil
			s.Clients = s.Clients.With(&c)
		})
		o.rp.cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		o.flow()
	})
	t.Run("oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported", func(t *testing.T) {
		o := newOIDFRun(t)
		wantRedirectError(t, o.silent(param("request_uri", "https://rp.example/request.jwt")), ErrRequestURINotSupported)
	})
	t.Run("oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", func(t *testing.T) {
		// Skipped by the suite: request objects must be signed, so
		// discovery does not offer none. An unsigned one is refused.
		o := newOIDFRun(t)
		algs := mustJSON(getJSON(t, o.ts.URL+endpoints.OpenIDConfigurationPath)["request_object_signing_alg_values_supported"])
		if strings.Contains(algs, `"none"`) {
			t.Errorf("request_object_signing_alg_values_supported %s offers none", algs)
		}
		unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"client_id":"`+oidcClientID+`","response_type":"code"}`)) + "."
		wantRedirectError(t, o.silent(param("request", unsigned)), ErrRequestNotSupported)
	})
	t.Run("oidcc-claims-essential", func(t *testing.T) {
		o := newOIDFRun(t)
		tok, _, _ := o.flow(param("claims", `{"userinfo":{"name":{"essential":true}}}`))
		if info := o.userinfo(tok); info["name"] != "Alice Example" {
			t.Errorf("userinfo %v, want the essential name", info)
		}
	})
	t.Run("oidcc-ensure-request-object-with-redirect-uri", func(t *testing.T) {
		// Skipped by the suite (it sends unsigned objects); the same with
		// a signed one: the object's redirect_uri wins over the query's.
		o := newOIDFRun(t)
		key := newJWTKey(t, "ES256", "rp-1")
		o.ts.update(func(s *config.Snapshot) {
			c := *s.Clients.Get(oidcClientID)
			c.Assertion = &config.ClientAssertion{Keys: key.static(t)}
			s.Clients = s.Clients.With(&c)
		})
		now := o.ts.clock.Now()
		object := key.sign(t, jwt.MapClaims{"iss": oidcClientID, "aud": o.ts.URL, "exp": now.Add(time.Minute).Unix(),
			"client_id": oidcClientID, "response_type": "code", "scope": "openid", "redirect_uri": oidcRedirect, "state": "oidf-state"}, nil)
		raw := o.ts.URL + endpoints.AuthorizePath + "?" + url.Values{"client_id": {oidcClientID}, "request": {object},
			"redirect_uri": {"https://invalid.example/cb"}, "response_type": {"code"}, "scope": {"openid"}}.Encode()
		o.exchange(o.b.authorize(raw, "approve", true), "")
	})
	t.Run("oidcc-refresh-token", func(t *testing.T) {
		// As the suite: prompt=consent with offline_access (§11), then a
		// refresh a second later that names the scope again.
		o := newOIDFRun(t, "openid", "offline_access")
		tok, _, first := o.flow(param("prompt", "consent"))
		o.ts.clock.Advance(time.Second)
		resp := o.ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {tok.RefreshToken}, "scope": {"openid offline_access"}}, oidcClientID, oidcSecret)
		defer resp.Body.Close()
		var next struct {
			AccessToken  string `json:"access_token"`
			TokenType    string `json:"token_type"`
			ExpiresIn    int    `json:"expires_in"`
			RefreshToken string `json:"refresh_token"`
			IDToken      string `json:"id_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&next); err != nil || resp.StatusCode != http.StatusOK ||
			!strings.Contains(resp.Header.Get("Cache-Control"), "no-store") || next.TokenType != "Bearer" || next.ExpiresIn <= 0 {
			t.Fatalf("refresh: %d %q %+v %v", resp.StatusCode, resp.Header.Get("Cache-Control"), next, err)
		}
		// §12.2: the refreshed ID token has the same iss, sub, aud and
		// auth_time, and a later iat.
		_, second := o.rp.verify(t, (&oauth2.Token{AccessToken: next.AccessToken}).WithExtra(map[string]any{"id_token": next.IDToken}))
		for _, c := range []string{"iss", "sub", "aud", "auth_time", "azp"} {
			if mustJSON(first[c]) != mustJSON(second[c]) {
				t.Errorf("%s: %v, then %v after the refresh", c, first[c], second[c])
			}
		}
		if second["iat"].(float64) <= first["iat"].(float64) {
			t.Errorf("iat %v, then %v", first["iat"], second["iat"])
		}
		// Bound to the client: another one cannot use it.
		other := *o.rp.cfg
		other.ClientID, other.ClientSecret = webClientID, webSecret
		if _, err := other.TokenSource(ctx(t), &oauth2.Token{RefreshToken: next.RefreshToken}).Token(); retrieveError(t, err).ErrorCode != ErrInvalidGrant {
			t.Errorf("another client's refresh: %v", err)
		}
	})
	t.Run("oidcc-ensure-request-with-valid-pkce-succeeds", func(t *testing.T) {
		// PKCE is not required of this client, but a request that
		// carries it gets it checked.
		o := newOIDFRun(t)
		o.pkce = true
		back, _ := o.code()
		if _, err := o.redeem(back, oauth2.GenerateVerifier()); retrieveError(t, err).ErrorCode != ErrInvalidGrant {
			t.Errorf("a wrong verifier: %v", err)
		}
		if _, err := o.redeem(o.code()); err != nil {
			t.Errorf("the right verifier: %v", err)
		}
	})
}

// TestOIDFConfigOP mirrors the Config OP plan
// (oidcc-config-certification-test-plan): discovery.
func TestOIDFConfigOP(t *testing.T) {
	t.Run("oidcc-discovery-endpoint-verification", func(t *testing.T) {
		o := newOIDFRun(t)
		doc := getJSON(t, o.ts.URL+endpoints.OpenIDConfigurationPath)
		strs := func(k string) []string {
			var out []string
			for _, x := range doc[k].([]any) {
				out = append(out, x.(string))
			}
			return out
		}
		switch {
		case doc["issuer"] != o.ts.URL:
			t.Errorf("issuer %v", doc["issuer"])
		case !slices.Contains(strs("scopes_supported"), "openid"), !slices.Contains(strs("response_types_supported"), "code"),
			!slices.Contains(strs("subject_types_supported"), "public"), !slices.Contains(strs("id_token_signing_alg_values_supported"), "RS256"):
			t.Errorf("discovery lacks a required value: %v", doc)
		case doc["claims_parameter_supported"] != true, len(strs("claims_supported")) == 0:
			t.Errorf("claims: %v %v", doc["claims_parameter_supported"], doc["claims_supported"])
		}
		// Every key of the JWKS is public and identified.
		var jwks struct{ Keys []map[string]any }
		resp, err := http.Get(doc["jwks_uri"].(string))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil || len(jwks.Keys) == 0 {
			t.Fatalf("JWKS: %v", err)
		}
		for _, k := range jwks.Keys {
			if k["kid"] == nil || k["alg"] == nil || k["d"] != nil || k["p"] != nil {
				t.Errorf("JWKS key %v: no kid or alg, or private", k)
			}
		}
		// Under an https issuer every endpoint is https.
		o.ts.update(func(s *config.Snapshot) {
			s.Issuer, s.Endpoints = "https://auth.example.test", endpoints.For("https://auth.example.test")
		})
		for k, v := range getJSON(t, o.ts.URL+endpoints.OpenIDConfigurationPath) {
			if u, ok := v.(string); ok && (strings.HasSuffix(k, "_endpoint") || strings.HasSuffix(k, "_uri")) && !strings.HasPrefix(u, "https://auth.example.test/") {
				t.Errorf("%s = %s, not under the https issuer", k, u)
			}
		}
	})
}

// TestOIDFRPInitiatedLogout mirrors the RP-Initiated Logout OP plan
// (oidcc-rp-initiated-logout-certification-test-plan).
func TestOIDFRPInitiatedLogout(t *testing.T) {
	t.Run("oidcc-rp-initiated-logout-discovery-endpoint-verification", func(t *testing.T) {
		o := newOIDFRun(t)
		if getJSON(t, o.ts.URL+endpoints.OpenIDConfigurationPath)["end_session_endpoint"] != o.ts.URL+endpoints.EndSessionPath {
			t.Error("no end_session_endpoint")
		}
	})
	signedInRun := func(t *testing.T) (*oidfRun, string) {
		o := newOIDFRun(t)
		tok, _, _ := o.flow()
		return o, tok.Extra("id_token").(string)
	}
	logout := func(o *oidfRun, params url.Values) (*http.Response, string) {
		return o.b.get(o.ts.URL + endpoints.EndSessionPath + "?" + params.Encode())
	}
	// refused: no redirect back, and the session stays.
	refused := func(t *testing.T, o *oidfRun, params url.Values) {
		t.Helper()
		if resp, _ := logout(o, params); resp.Header.Get("Location") != "" {
			t.Errorf("redirected to %s", resp.Header.Get("Location"))
		}
		if !signedIn(t, o.b, o.rp) {
			t.Error("the session ended")
		}
	}
	// confirmed: a page asks, and confirming signs out without a redirect.
	confirmed := func(t *testing.T, o *oidfRun, params url.Values) {
		t.Helper()
		resp, page := logout(o, params)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.Contains(page, "Sign out?") {
			t.Fatalf("%d to %q: want the confirmation page", resp.StatusCode, resp.Header.Get("Location"))
		}
		f := hiddenFields(page)
		f.Set("decision", "logout")
		if resp, _ = o.b.post(o.ts.URL+endpoints.EndSessionPath, f); resp.StatusCode != http.StatusOK {
			t.Errorf("confirmation answered %d, want the signed-out page", resp.StatusCode)
		}
		if signedIn(t, o.b, o.rp) {
			t.Error("the session survived")
		}
	}
	t.Run("oidcc-rp-initiated-logout", func(t *testing.T) {
		o, hint := signedInRun(t)
		resp, _ := logout(o, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {oidcLoggedOut}, "state": {"bye"}})
		if u := location(t, resp); !strings.HasPrefix(u.String(), oidcLoggedOut) || u.Query().Get("state") != "bye" {
			t.Errorf("went to %s", u)
		}
		wantRedirectError(t, o.silent(param("prompt", "none")), ErrLoginRequired)
	})
	t.Run("oidcc-rp-initiated-logout-bad-post-logout-redirect-uri", func(t *testing.T) {
		o, hint := signedInRun(t)
		refused(t, o, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://unregistered.example/bye"}})
	})
	t.Run("oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri", func(t *testing.T) {
		o, hint := signedInRun(t)
		refused(t, o, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {oidcLoggedOut + "?foo=bar"}})
	})
	t.Run("oidcc-rp-initiated-logout-modified-id-token-hint", func(t *testing.T) {
		o, hint := signedInRun(t)
		parts := strings.Split(hint, ".")
		none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
		refused(t, o, url.Values{"id_token_hint": {none}, "post_logout_redirect_uri": {oidcLoggedOut}})
	})
	t.Run("oidcc-rp-initiated-logout-bad-id-token-hint", func(t *testing.T) {
		o, _ := signedInRun(t)
		snap := o.ts.snap()
		foreign := &config.Snapshot{Issuer: snap.Issuer, AccessTokenTTL: time.Hour,
			Keys: &keyset.Set{Keys: []keyset.Key{activeKey(t, keyset.RS256, o.ts.clock.Now().Add(-time.Hour))}}}
		forged, e := o.ts.srv.signIDToken(foreign, idTokenGrant{tokenGrant: tokenGrant{Client: snap.Clients.Get(oidcClientID), Subject: testSubject}}, "at", o.ts.clock.Now())
		if e != nil {
			t.Fatal(e)
		}
		refused(t, o, url.Values{"id_token_hint": {forged}, "post_logout_redirect_uri": {oidcLoggedOut}})
	})
	t.Run("oidcc-rp-initiated-logout-no-id-token-hint", func(t *testing.T) {
		o, _ := signedInRun(t)
		refused(t, o, url.Values{"post_logout_redirect_uri": {oidcLoggedOut}})
	})
	t.Run("oidcc-rp-initiated-logout-no-params", func(t *testing.T) {
		o, _ := signedInRun(t)
		confirmed(t, o, url.Values{})
	})
	t.Run("oidcc-rp-initiated-logout-only-state", func(t *testing.T) {
		o, _ := signedInRun(t)
		confirmed(t, o, url.Values{"state": {"only"}})
	})
	t.Run("oidcc-rp-initiated-logout-no-post-logout-redirect-uri", func(t *testing.T) {
		o, hint := signedInRun(t)
		if resp, page := logout(o, url.Values{"id_token_hint": {hint}}); resp.Header.Get("Location") != "" || !strings.Contains(page, "signed out") {
			t.Errorf("%d to %q: want the signed-out page", resp.StatusCode, resp.Header.Get("Location"))
		}
		if signedIn(t, o.b, o.rp) {
			t.Error("the session survived")
		}
	})
	t.Run("oidcc-rp-initiated-logout-no-state", func(t *testing.T) {
		o, hint := signedInRun(t)
		resp, _ := logout(o, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {oidcLoggedOut}})
		if u := location(t, resp); u.String() != oidcLoggedOut {
			t.Errorf("went to %s, want %s without a state", u, oidcLoggedOut)
		}
		if signedIn(t, o.b, o.rp) {
			t.Error("the session survived")
		}
	})
}
