package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

func getJSON(t *testing.T, u string) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestOpenIDConfiguration: a real relying-party library discovers the
// provider (it checks that issuer matches the URL it asked), the document
// has every member OIDC Discovery 1.0 §3 requires, RS256 among the ID-token
// algorithms along with the key set's own, and it agrees with the RFC 8414
// document on every member they share.
func TestOpenIDConfiguration(t *testing.T) {
	ts := newTestServer(t)
	p, err := oidc.NewProvider(ctx(t), ts.URL)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	ep := p.Endpoint()
	if ep.AuthURL != ts.URL+"/authorize" || ep.TokenURL != ts.URL+"/token" || p.UserInfoEndpoint() != ts.URL+"/userinfo" {
		t.Errorf("endpoints = %+v, userinfo %s", ep, p.UserInfoEndpoint())
	}
	var doc map[string]any
	if err := p.Claims(&doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
		"subject_types_supported", "id_token_signing_alg_values_supported", "userinfo_endpoint", "scopes_supported", "claims_supported"} {
		if doc[m] == nil {
			t.Errorf("member %s is missing", m)
		}
	}
	strs := func(k string) []string {
		var out []string
		for _, x := range doc[k].([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	if got := strs("id_token_signing_alg_values_supported"); !slices.Equal(got, []string{"RS256", "ES256"}) {
		t.Errorf("id_token_signing_alg_values_supported = %v, want RS256 and the key set's ES256", got)
	}
	for _, sc := range []string{"openid", "profile", "email", "groups", "offline_access"} {
		if !slices.Contains(strs("scopes_supported"), sc) {
			t.Errorf("scopes_supported lacks %s", sc)
		}
	}
	for _, c := range []string{"sub", "nonce", "at_hash", "auth_time", "preferred_username", "email", "email_verified", "groups"} {
		if !slices.Contains(strs("claims_supported"), c) {
			t.Errorf("claims_supported lacks %s", c)
		}
	}
	if !slices.Equal(strs("subject_types_supported"), []string{"public"}) || doc["request_uri_parameter_supported"] != false {
		t.Errorf("subject types %v, request_uri_parameter_supported %v", doc["subject_types_supported"], doc["request_uri_parameter_supported"])
	}
	// What /authorize accepts (TestFormPostResponseMode, TestRequestObject):
	// signed request objects, never alg none; request_uri of pushed
	// requests only, which request_uri_parameter_supported does not cover.
	if !slices.Equal(strs("response_modes_supported"), []string{"query", "form_post"}) {
		t.Errorf("response_modes_supported = %v", doc["response_modes_supported"])
	}
	if !slices.Equal(strs("ui_locales_supported"), []string{"de", "en", "fr"}) { // TestPagesSpeakTheRequestedLanguage
		t.Errorf("ui_locales_supported = %v", doc["ui_locales_supported"])
	}
	if doc["claims_parameter_supported"] != true { // TestClaimsParameter
		t.Error("claims_parameter_supported is not true")
	}
	if doc["request_parameter_supported"] != true || !slices.Equal(strs("request_object_signing_alg_values_supported"), []string{"ES256", "RS256", "EdDSA"}) {
		t.Errorf("request_parameter_supported %v, request_object_signing_alg_values_supported %v", doc["request_parameter_supported"], doc["request_object_signing_alg_values_supported"])
	}
	// Back-Channel Logout 1.0 §2.1.
	if doc["backchannel_logout_supported"] != true || doc["backchannel_logout_session_supported"] != true {
		t.Errorf("backchannel_logout_supported %v, backchannel_logout_session_supported %v",
			doc["backchannel_logout_supported"], doc["backchannel_logout_session_supported"])
	}
	if !slices.Equal(strs("prompt_values_supported"), []string{"none", "login", "consent"}) {
		t.Errorf("prompt_values_supported = %v", doc["prompt_values_supported"])
	}

	oauth := getJSON(t, ts.URL+endpoints.MetadataWellKnown)
	for k, v := range oauth {
		if !reflect.DeepEqual(doc[k], v) {
			t.Errorf("%s: RFC 8414 says %v, OpenID configuration says %v", k, v, doc[k])
		}
	}

	// An RS256 key in the set is listed once.
	ts.update(func(s *config.Snapshot) {
		s.Keys = &keyset.Set{Keys: append(s.Keys.Keys, activeKey(t, keyset.RS256, ts.clock.Now()))}
	})
	if got := getJSON(t, ts.URL+endpoints.OpenIDConfigurationPath)["id_token_signing_alg_values_supported"]; !reflect.DeepEqual(got, []any{"RS256", "ES256"}) {
		t.Errorf("with an RS256 key, id_token_signing_alg_values_supported = %v", got)
	}
}

// TestOpenIDConfigurationUnderIssuerPath: Discovery §4 appends the
// well-known path to the issuer, path included.
func TestOpenIDConfigurationUnderIssuerPath(t *testing.T) {
	ts := newTestServer(t)
	issuer := ts.URL + "/tenants/a"
	ts.update(func(s *config.Snapshot) { s.Issuer, s.Endpoints = issuer, endpoints.For(issuer) })
	p, err := oidc.NewProvider(ctx(t), issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery under a path: %v", err)
	}
	if p.Endpoint().TokenURL != issuer+"/token" {
		t.Errorf("token endpoint %s", p.Endpoint().TokenURL)
	}
	resp, err := http.Post(issuer+endpoints.OpenIDConfigurationPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}
