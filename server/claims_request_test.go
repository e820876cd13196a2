package server

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/server/config"
)

// The claims parameter (OpenID Connect Core §5.5) with go-oidc as the
// relying party: claims asked for one by one come in the ID token or at
// userinfo, as asked, without the scopes that would release more; the
// consent page asks about them; the token's scope stays what was asked.
func TestClaimsParameter(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid")
	claims := `{"id_token":{"email":{"essential":true},"auth_time":{"essential":true}},"userinfo":{"name":null,"groups":{"essential":true},"phone_number":{"essential":true}}}`
	v := oauth2.GenerateVerifier()
	b := newBrowser(t, ts)
	resp, _ := b.get(rp.cfg.AuthCodeURL("st", oidc.Nonce("n"), oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("claims", claims)))
	_, page := b.get(location(t, resp).String())
	f := hiddenFields(page)
	f.Set("username", testUser)
	f.Set("password", testPassword)
	resp, _ = b.post(ts.URL+"/login", f)
	_, page = b.get(location(t, resp).String())
	for _, scope := range []string{"email", "profile", "groups"} {
		if !strings.Contains(page, "<code>"+scope+"</code>") {
			t.Errorf("the consent page does not ask about %s, whose claims are requested:\n%s", scope, page)
		}
	}
	f = hiddenFields(page)
	f.Set("decision", "approve")
	resp, _ = b.post(ts.URL+"/consent", f)
	back := location(t, resp)
	tok, err := rp.cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("scope") != "openid" {
		t.Errorf("scope %v: the claims parameter widened the scope", tok.Extra("scope"))
	}
	_, idClaims := rp.verify(t, tok)
	if idClaims["email"] != "alice@example.com" || idClaims["auth_time"] == nil {
		t.Errorf("ID token claims %v, want email and auth_time", idClaims)
	}
	for _, c := range []string{"name", "groups", "email_verified", "preferred_username"} {
		if _, ok := idClaims[c]; ok {
			t.Errorf("ID token carries %s, which was not asked for in it", c)
		}
	}
	ui, err := rp.provider.UserInfo(ctx(t), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := ui.Claims(&info); err != nil {
		t.Fatal(err)
	}
	if info["name"] != "Alice Example" || len(info["groups"].([]any)) != 2 || info["email"] != nil || info["phone_number"] != nil {
		t.Errorf("userinfo %v, want name and groups alone (no phone number exists, no error for it)", info)
	}

	// A client that may not ask for groups gets none, essential or not.
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(oidcClientID)
		c.AllowedScopes = slices.DeleteFunc(slices.Clone(c.AllowedScopes), func(sc string) bool { return sc == "groups" })
		s.Clients = s.Clients.With(&c)
	})
	tok = rp.loginWith(t, newBrowser(t, ts), oauth2.SetAuthURLParam("claims", `{"id_token":{"groups":{"essential":true},"name":null}}`))
	if _, idClaims = rp.verify(t, tok); idClaims["groups"] != nil || idClaims["name"] != "Alice Example" {
		t.Errorf("ID token for a client without the groups scope: %v", idClaims)
	}
}

// loginWith runs the code flow with extra authorization parameters and
// exchanges the code.
func (rp *relyingParty) loginWith(t *testing.T, b *browser, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	t.Helper()
	v := oauth2.GenerateVerifier()
	back := b.authorize(rp.cfg.AuthCodeURL("st", append(opts, oidc.Nonce("n"), oauth2.S256ChallengeOption(v))...), "approve", false)
	if back.Query().Get("code") == "" {
		t.Fatalf("no code: %s", back)
	}
	tok, err := rp.cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// What the claims parameter asks that cannot be given is an error where
// Core says so: a sub value of someone else (never a code for another
// person), an essential acr with values (this server sets no acr:
// unmet_authentication_requirements), and a parameter that is not the
// JSON §5.5 describes.
func TestClaimsParameterRefusals(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	rp := newRelyingParty(t, ts, "openid", "profile")
	authURL := func(state, claims string, extra ...oauth2.AuthCodeOption) string {
		return rp.cfg.AuthCodeURL(state, append(extra, oidc.Nonce("n"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
			oauth2.SetAuthURLParam("claims", claims))...)
	}
	wantError := func(t *testing.T, u *url.URL, code, state string) {
		t.Helper()
		if !strings.HasPrefix(u.String(), oidcRedirect) || u.Query().Get("error") != code || u.Query().Get("state") != state {
			t.Errorf("came back to %s, want error %s with state %s", u, code, state)
		}
	}
	for _, tc := range []struct{ name, claims, code string }{
		{"not JSON", `{"id_token":`, ErrInvalidRequest},
		{"not an object", `["email"]`, ErrInvalidRequest},
		{"member not an object", `{"userinfo":"email"}`, ErrInvalidRequest},
		{"claim not an object", `{"userinfo":{"email":true}}`, ErrInvalidRequest},
		{"value and values", `{"id_token":{"email":{"value":"a","values":["b"]}}}`, ErrInvalidRequest},
		{"too long", `{"userinfo":{"name":{"value":"` + strings.Repeat("x", maxClaimsParam) + `"}}}`, ErrInvalidRequest},
		{"essential acr with values", `{"id_token":{"acr":{"essential":true,"values":["urn:mace:incommon:iap:silver"]}}}`, ErrUnmetAuthenticationRequirements},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := newBrowser(t, ts).get(authURL(tc.name, tc.claims))
			wantError(t, location(t, resp), tc.code, tc.name)
		})
	}
	// A voluntary acr is no error; the ID token just has none.
	resp, _ := newBrowser(t, ts).get(authURL("acr", `{"id_token":{"acr":{"values":["urn:mace:incommon:iap:silver"]}}}`))
	if u := location(t, resp); u.Query().Get("error") != "" {
		t.Errorf("a voluntary acr: %s", u)
	}

	// sub with a value: someone else signs in, no code.
	back := newBrowser(t, ts).authorize(authURL("other", `{"id_token":{"sub":{"value":"someone-else"}}}`), "approve", true)
	wantError(t, back, ErrAccessDenied, "other")
	// With alice signed in (and her consent remembered), the same request
	// with prompt=none is login_required, as id_token_hint's would be; with
	// her own sub, it is answered.
	b := newBrowser(t, ts)
	rp.login(t, b, "n", true)
	resp, _ = b.get(authURL("none", `{"id_token":{"sub":{"value":"someone-else"}}}`, oauth2.SetAuthURLParam("prompt", "none")))
	wantError(t, location(t, resp), ErrLoginRequired, "none")
	resp, _ = b.get(authURL("mine", `{"id_token":{"sub":{"value":"`+testSubject+`"}}}`, oauth2.SetAuthURLParam("prompt", "none")))
	if u := location(t, resp); u.Query().Get("code") == "" {
		t.Errorf("prompt=none with the signed-in person's own sub: %s", u)
	}
}
