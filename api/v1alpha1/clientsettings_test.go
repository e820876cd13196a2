package v1alpha1_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Issue 25's client settings are checked at apply time: per-client token
// lifetimes within bounds, CORS origins in exactly the form browsers
// send, https-only consent-page links, and Secret key aliases that cannot
// shadow the operator's own keys.
func TestClientSettingsValidation(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()
	for i, tc := range []struct {
		name, base, patch, want string // want "" accepts
	}{
		{"lifetimes", validClient, `spec: {tokenLifetimes: {accessToken: 2m, idToken: 1h, refreshToken: 24h}}`, ""},
		{"access token only", validClient, `spec: {tokenLifetimes: {accessToken: 24h}}`, ""},
		{"access token too short", validClient, `spec: {tokenLifetimes: {accessToken: 30s}}`, "accessToken lifetime must be between 1m and 24h"},
		{"access token too long", validClient, `spec: {tokenLifetimes: {accessToken: 25h}}`, "accessToken lifetime must be between 1m and 24h"},
		{"ID token too long", validClient, `spec: {tokenLifetimes: {idToken: 48h}}`, "idToken lifetime must be between 1m and 24h"},
		{"refresh token too short", validClient, `spec: {tokenLifetimes: {refreshToken: 30m}}`, "refreshToken lifetime must be between 1h and 8760h"},
		{"refresh not longer than access", validClient, `spec: {tokenLifetimes: {accessToken: 2h, refreshToken: 1h}}`, "refreshToken lifetime must be longer than accessToken lifetime"},
		{"lifetime not a duration", validClient, `spec: {tokenLifetimes: {accessToken: soon}}`, "accessToken lifetime must be a duration"},

		{"origins", validClient, `spec: {allowedCORSOrigins: ["https://app.example.com", "https://app.example.com:8443", "http://localhost:3000", "http://127.0.0.1:5173", "http://[::1]:8080"]}`, ""},
		{"origin with a path", validClient, `spec: {allowedCORSOrigins: ["https://app.example.com/app"]}`, "an origin is scheme://host[:port] and nothing else"},
		{"origin with a trailing slash", validClient, `spec: {allowedCORSOrigins: ["https://app.example.com/"]}`, "an origin is scheme://host[:port] and nothing else"},
		{"origin with a query", validClient, `spec: {allowedCORSOrigins: ["https://app.example.com?x"]}`, "an origin is scheme://host[:port] and nothing else"},
		{"origin with userinfo", validClient, `spec: {allowedCORSOrigins: ["https://me@app.example.com"]}`, "an origin is scheme://host[:port] and nothing else"},
		{"origin wildcard", validClient, `spec: {allowedCORSOrigins: ["https://*.example.com"]}`, "an origin must not contain a wildcard"},
		{"origin star", validClient, `spec: {allowedCORSOrigins: ["*"]}`, "an origin must not contain a wildcard"},
		{"origin upper case", validClient, `spec: {allowedCORSOrigins: ["https://App.example.com"]}`, "an origin must be lower case"},
		{"origin http", validClient, `spec: {allowedCORSOrigins: ["http://app.example.com"]}`, "an origin must use https"},
		{"origin default port", validClient, `spec: {allowedCORSOrigins: ["https://app.example.com:443"]}`, "must not name the scheme's default port"},
		{"origin null", validClient, `spec: {allowedCORSOrigins: ["null"]}`, "an origin is scheme://host[:port] and nothing else"},

		{"consent links", validClient, `spec: {logoURI: "https://cdn.example.com/logo.png?v=2", policyURI: "https://app.example.com/privacy", tosURI: "https://app.example.com/terms"}`, ""},
		{"http logo", validClient, `spec: {logoURI: "http://cdn.example.com/logo.png"}`, "must be an absolute https URL"},
		{"data logo", validClient, `spec: {logoURI: "data:image/png;base64,AAAA"}`, "must be an absolute https URL"},
		{"javascript policy", validClient, `spec: {policyURI: "javascript:alert(1)"}`, "must be an absolute https URL"},
		{"relative terms", validClient, `spec: {tosURI: "/terms"}`, "must be an absolute https URL"},
		{"logo breaking out of the CSP", validClient, `spec: {logoURI: "https://cdn.example.com/a.png;script-src"}`, "must not contain whitespace, quotes"},
		{"logo with a quote", validClient, `spec: {logoURI: "https://cdn.example.com/a.png'"}`, "must not contain whitespace, quotes"},
		{"logo with a space", validClient, `spec: {logoURI: "https://cdn.example.com/a b.png"}`, "must not contain whitespace, quotes"},
		{"policy with a fragment", validClient, `spec: {policyURI: "https://app.example.com/legal#privacy"}`, "must not contain whitespace, quotes"},
		{"terms with userinfo", validClient, `spec: {tosURI: "https://evil.example@app.example.com/terms"}`, "must not contain userinfo"},

		{"aliases", validClient, `spec: {secretKeyAliases: [{name: OAUTH2_PROXY_CLIENT_SECRET, from: client_secret}, {name: OAUTH2_PROXY_CLIENT_ID, from: client_id}, {name: GF_AUTH_GENERIC_OAUTH_API_URL, from: userinfo_endpoint}]}`, ""},
		{"alias shadowing a key", validClient, `spec: {secretKeyAliases: [{name: client_secret, from: client_id}]}`, "name is one of the keys the operator writes itself"},
		{"alias of an unknown key", validClient, `spec: {secretKeyAliases: [{name: X, from: password}]}`, `Unsupported value: "password"`},
		{"alias with a bad name", validClient, `spec: {secretKeyAliases: [{name: "A B", from: client_id}]}`, "should match"},
		{"alias named twice", validClient, `spec: {secretKeyAliases: [{name: A, from: client_id}, {name: A, from: issuer}]}`, "Duplicate value"},
		{"aliases on a public client", validPublicClient, `spec: {secretKeyAliases: [{name: CLIENT_ID, from: client_id}]}`, "a public client, or one with spec.authentication, has none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("settings-%d", i))
			createAsValidated(ctx, t, cp, obj, tc.want)
		})
	}
}

// A client's lifetimes default to the server's, field by field; its ID
// token lives as long as its access token unless it says otherwise.
func TestClientLifetimes(t *testing.T) {
	srv := &oauthv1.AuthorizationServer{}
	srv.Spec.Tokens.AccessToken, srv.Spec.Tokens.RefreshToken = d("15m"), d("48h")
	for _, tc := range []struct {
		name    string
		set     *oauthv1.ClientTokenLifetimes
		want    oauthv1.Lifetimes
		longest time.Duration
	}{
		{"none", nil, oauthv1.Lifetimes{AccessToken: 15 * time.Minute, IDToken: 15 * time.Minute, RefreshToken: 48 * time.Hour}, 0},
		{"empty", &oauthv1.ClientTokenLifetimes{}, oauthv1.Lifetimes{AccessToken: 15 * time.Minute, IDToken: 15 * time.Minute, RefreshToken: 48 * time.Hour}, 0},
		{"access", &oauthv1.ClientTokenLifetimes{AccessToken: d("1h")}, oauthv1.Lifetimes{AccessToken: time.Hour, IDToken: time.Hour, RefreshToken: 48 * time.Hour}, time.Hour},
		{"ID token", &oauthv1.ClientTokenLifetimes{IDToken: d("5m")}, oauthv1.Lifetimes{AccessToken: 15 * time.Minute, IDToken: 5 * time.Minute, RefreshToken: 48 * time.Hour}, 5 * time.Minute},
		{"all", &oauthv1.ClientTokenLifetimes{AccessToken: d("2m"), IDToken: d("3h"), RefreshToken: d("8h")}, oauthv1.Lifetimes{AccessToken: 2 * time.Minute, IDToken: 3 * time.Hour, RefreshToken: 8 * time.Hour}, 3 * time.Hour},
		{"zero bypassing the schema", &oauthv1.ClientTokenLifetimes{AccessToken: &metav1.Duration{}}, oauthv1.Lifetimes{AccessToken: 15 * time.Minute, IDToken: 15 * time.Minute, RefreshToken: 48 * time.Hour}, 0},
	} {
		oc := &oauthv1.OAuthClient{Spec: oauthv1.OAuthClientSpec{TokenLifetimes: tc.set}}
		if got := oc.Lifetimes(srv); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		if got := tc.set.LongestSigned(); got != tc.longest {
			t.Errorf("%s: longest signed %s, want %s", tc.name, got, tc.longest)
		}
	}
}
