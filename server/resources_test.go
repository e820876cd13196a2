package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

const (
	ordersAPI    = "https://orders.example.test"
	inventoryAPI = "https://inventory.example.test"
	billingAPI   = "https://billing.internal"
)

// withInventoryAPI adds a second API (inventory:read, for inventoryAPI)
// that the web and client-credentials clients may request.
func withInventoryAPI(ts *testServer) {
	ts.update(func(s *config.Snapshot) {
		s.Scopes = mapsClone(s.Scopes)
		s.Scopes["inventory:read"] = &config.Scope{Name: "inventory:read", Description: "See stock", Audience: inventoryAPI, RequiresConsent: true}
		for _, id := range []string{webClientID, ccClientID} {
			c := *s.Clients.Get(id)
			c.AllowedScopes = append(slices.Clone(c.AllowedScopes), "inventory:read")
			s.Clients = s.Clients.With(&c)
		}
	})
}

func mapsClone[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// withResources adds resource indicators to an x/oauth2 authorization
// or token request: SetAuthURLParam sets one value, RFC 8707 allows many.
func withResources(authURL string, resources ...string) string {
	u, _ := url.Parse(authURL)
	q := u.Query()
	for _, r := range resources {
		q.Add("resource", r)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// tokenAudience verifies an access token and returns its aud and scope.
func (ts *testServer) tokenAudience(t *testing.T, token string) ([]string, string) {
	t.Helper()
	claims, _ := ts.parseAccessToken(t, token)
	aud, _ := claims.GetAudience()
	scope, _ := claims["scope"].(string)
	return aud, scope
}

// refreshWith posts a refresh_token request with extra parameters (x/oauth2
// cannot add parameters to a refresh).
func (ts *testServer) refreshWith(t *testing.T, refresh string, extra url.Values) (map[string]any, *http.Response) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	for k, vs := range extra {
		form[k] = vs
	}
	resp := ts.postForm(t, endpoints.TokenPath, form, webClientID, webSecret)
	if resp.StatusCode != http.StatusOK {
		return nil, resp
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out, resp
}

// TestResourceIndicatorsCodeFlow: resources at /authorize bound the
// grant; resource at /token picks one of them for each access token,
// with that API's scopes only; the refresh token remembers all of them,
// so a refresh can narrow but never widen (RFC 8707 §2.1, §2.2).
func TestResourceIndicatorsCodeFlow(t *testing.T) {
	ts := newTestServer(t)
	withInventoryAPI(ts)
	cfg := ts.webConfig("orders:read", "inventory:read", "basic")
	verifier := oauth2.GenerateVerifier()
	authURL := withResources(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), ordersAPI, inventoryAPI)
	back := newBrowser(t, ts).authorize(authURL, "approve", false)
	code := back.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", back)
	}
	tok, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", ordersAPI))
	if err != nil {
		t.Fatal(err)
	}
	aud, scope := ts.tokenAudience(t, tok.AccessToken)
	if !slices.Equal(aud, []string{ordersAPI}) || scope != "orders:read basic" || tok.Extra("scope") != scope {
		t.Fatalf("token for orders: aud %v scope %q (response scope %v), want only the orders API's scopes", aud, scope, tok.Extra("scope"))
	}

	// A refresh picks the other granted resource.
	out, resp := ts.refreshWith(t, tok.RefreshToken, url.Values{"resource": {inventoryAPI}})
	if out == nil {
		t.Fatalf("refresh for inventory: %+v", decodeError(t, resp))
	}
	aud, scope = ts.tokenAudience(t, out["access_token"].(string))
	if !slices.Equal(aud, []string{inventoryAPI}) || scope != "inventory:read basic" {
		t.Fatalf("token for inventory: aud %v scope %q", aud, scope)
	}

	// Without resource: every granted resource, every granted scope.
	out, resp = ts.refreshWith(t, out["refresh_token"].(string), nil)
	if out == nil {
		t.Fatalf("refresh: %+v", decodeError(t, resp))
	}
	aud, scope = ts.tokenAudience(t, out["access_token"].(string))
	if !slices.Equal(aud, []string{ordersAPI, inventoryAPI}) || scope != "orders:read inventory:read basic" {
		t.Fatalf("token for the whole grant: aud %v scope %q", aud, scope)
	}

	// Never wider: billing is an audience the client could not have
	// anyway, and orders' write scope was never granted.
	rt := out["refresh_token"].(string)
	_, resp = ts.refreshWith(t, rt, url.Values{"resource": {billingAPI}})
	assertOAuthError(t, resp, http.StatusBadRequest, ErrInvalidTarget)
	_, resp = ts.refreshWith(t, rt, url.Values{"resource": {ordersAPI}, "scope": {"inventory:read"}})
	assertOAuthError(t, resp, http.StatusBadRequest, ErrInvalidScope)
	// The refused requests did not use up the refresh token.
	if out, resp = ts.refreshWith(t, rt, url.Values{"resource": {ordersAPI}}); out == nil {
		t.Fatalf("refresh after refused requests: %+v", decodeError(t, resp))
	}
}

// TestRefreshCannotWidenResources: a grant for one API stays for that API,
// even though the client may have tokens for another one.
func TestRefreshCannotWidenResources(t *testing.T) {
	ts := newTestServer(t)
	withInventoryAPI(ts)
	cfg := ts.webConfig("orders:read")
	verifier := oauth2.GenerateVerifier()
	back := newBrowser(t, ts).authorize(withResources(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), ordersAPI), "approve", false)
	tok, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if aud, _ := ts.tokenAudience(t, tok.AccessToken); !slices.Equal(aud, []string{ordersAPI}) {
		t.Fatalf("aud %v, want the resource requested at /authorize", aud)
	}
	_, resp := ts.refreshWith(t, tok.RefreshToken, url.Values{"resource": {inventoryAPI}})
	e := assertOAuthError(t, resp, http.StatusBadRequest, ErrInvalidTarget)
	if !strings.Contains(e.Description, "original grant") {
		t.Errorf("description %q does not say why", e.Description)
	}
	// A code cannot be widened at /token either.
	back = newBrowser(t, ts).authorize(withResources(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), ordersAPI), "approve", false)
	_, err = cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", inventoryAPI))
	if re := retrieveError(t, err); re.ErrorCode != ErrInvalidTarget {
		t.Fatalf("code widened to another resource: %v", re)
	}
}

// TestResourceGrantShrinksWithPolicy: once the client may no longer reach
// a granted resource, its refresh tokens are refused for it rather than
// falling back to an unrestricted audience.
func TestResourceGrantShrinksWithPolicy(t *testing.T) {
	ts := newTestServer(t)
	withInventoryAPI(ts)
	cfg := ts.webConfig("inventory:read")
	verifier := oauth2.GenerateVerifier()
	back := newBrowser(t, ts).authorize(withResources(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), inventoryAPI), "approve", false)
	tok, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(webClientID)
		c.AllowedScopes = slices.DeleteFunc(slices.Clone(c.AllowedScopes), func(s string) bool { return s == "inventory:read" })
		s.Clients = s.Clients.With(&c)
	})
	_, resp := ts.refreshWith(t, tok.RefreshToken, nil)
	assertOAuthError(t, resp, http.StatusBadRequest, ErrInvalidTarget)
}

// TestResourceRefusedAtAuthorize: each refusal goes back to the client as
// RFC 8707 §2 says, with a reason.
func TestResourceRefusedAtAuthorize(t *testing.T) {
	ts := newTestServer(t)
	withInventoryAPI(ts)
	for _, tc := range []struct {
		name      string
		scopes    []string
		resources []string
		want      string
	}{
		{"an API the client may not call", []string{"orders:read"}, []string{billingAPI}, ErrInvalidTarget},
		{"an unknown API", nil, []string{"https://elsewhere.example"}, ErrInvalidTarget},
		{"not an absolute URI", nil, []string{"orders"}, ErrInvalidTarget},
		{"a fragment", nil, []string{ordersAPI + "#x"}, ErrInvalidTarget},
		{"a scope of another API", []string{"orders:read", "inventory:read"}, []string{ordersAPI}, ErrInvalidScope},
		{"too many", nil, slices.Repeat([]string{ordersAPI}, 17), ErrInvalidTarget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ts.webConfig(tc.scopes...)
			resp, _ := newBrowser(t, ts).get(withResources(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), tc.resources...))
			u := location(t, resp)
			q := u.Query()
			if !strings.HasPrefix(u.String(), webRedirect) || q.Get("error") != tc.want || q.Get("error_description") == "" || q.Get("state") != "st" {
				t.Fatalf("redirect %s, want error %s with a description and the state", u, tc.want)
			}
		})
	}
}

// TestResourceClientCredentials: resource picks the audience of a client's
// own token among those it may have, and keeps that API's scopes only.
func TestResourceClientCredentials(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		resources []string
		wantAud   []string
		wantScope string
		wantErr   string
	}{
		{nil, []string{billingAPI, ordersAPI}, "orders:read orders:write", ""},
		{[]string{ordersAPI}, []string{ordersAPI}, "orders:read orders:write", ""},
		// Its spec.audience: reachable, and no scope is for it.
		{[]string{billingAPI}, []string{billingAPI}, "", ""},
		{[]string{billingAPI, ordersAPI}, []string{billingAPI, ordersAPI}, "orders:read orders:write", ""},
		{[]string{inventoryAPI}, nil, "", ErrInvalidTarget},
	} {
		form := url.Values{"grant_type": {"client_credentials"}, "resource": tc.resources}
		resp := ts.postForm(t, endpoints.TokenPath, form, ccClientID, ccSecret)
		if tc.wantErr != "" {
			assertOAuthError(t, resp, http.StatusBadRequest, tc.wantErr)
			continue
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("resources %v: %d %v", tc.resources, resp.StatusCode, out)
		}
		aud, scope := ts.tokenAudience(t, out["access_token"].(string))
		if !slices.Equal(aud, tc.wantAud) || scope != tc.wantScope {
			t.Errorf("resources %v: aud %v scope %q, want %v %q", tc.resources, aud, scope, tc.wantAud, tc.wantScope)
		}
	}
}

func TestParseResources(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		ok   bool
	}{
		{nil, nil, true},
		{[]string{"https://a.example/api"}, []string{"https://a.example/api"}, true},
		{[]string{"urn:example:orders"}, []string{"urn:example:orders"}, true},
		{[]string{"https://a.example", "https://a.example"}, []string{"https://a.example"}, true},
		{[]string{"/relative"}, nil, false},
		{[]string{"https://a.example/#"}, nil, false},
		{[]string{"https://a.example/" + strings.Repeat("x", 256)}, nil, false},
		{[]string{"%zz"}, nil, false},
	} {
		got, e := parseResources(tc.in)
		if (e == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("parseResources(%q) = %v, %v", tc.in, got, e)
		}
		if e != nil && e.Code != ErrInvalidTarget {
			t.Errorf("parseResources(%q): %s, want invalid_target", tc.in, e.Code)
		}
	}
}
