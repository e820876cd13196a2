package v1alpha1_test

// API-tier tests: the generated CRDs, installed in a real kube-apiserver,
// accept the samples, fill in defaults, and reject bad objects at apply time
// with messages a user can act on.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// Valid objects that each table case below breaks in one way.
const (
	validServer = `
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: AuthorizationServer
metadata: {name: auth}
spec:
  issuer: https://auth.example.com
`
	validClient = `
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: app}
spec:
  serverRef: {name: auth}
  grantTypes: [authorization_code, refresh_token]
  redirectURIs: [https://app.example.com/callback]
  scopes: [orders:read]
`
	validPublicClient = `
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: cli}
spec:
  serverRef: {name: auth}
  clientType: public
  redirectURIs: [http://127.0.0.1:8400/callback]
`
	validScope = `
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: Scope
metadata: {name: orders-read}
spec:
  serverRef: {name: auth}
  name: orders:read
  description: See your orders
`
)

// longName is a valid object name (a DNS subdomain of 63-character
// labels at most) of n characters, n not one past a multiple of 61.
func longName(n int) string {
	return strings.Repeat(strings.Repeat("a", 60)+".", 5)[:n]
}

// object builds an object from a base YAML and an RFC 7386 merge patch
// (written as YAML; null removes a field).
func object(t *testing.T, base, patch string) *unstructured.Unstructured {
	t.Helper()
	baseJSON, err := yaml.YAMLToJSON([]byte(base))
	if err != nil {
		t.Fatalf("base: %v", err)
	}
	if patch != "" {
		patchJSON, err := yaml.YAMLToJSON([]byte(patch))
		if err != nil {
			t.Fatalf("patch %q: %v", patch, err)
		}
		if baseJSON, err = jsonpatch.MergePatch(baseJSON, patchJSON); err != nil {
			t.Fatalf("merging %q: %v", patch, err)
		}
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(baseJSON); err != nil {
		t.Fatalf("object: %v", err)
	}
	return obj
}

var namespaceCounter atomic.Int32

// createAsValidated creates obj and checks the API server's verdict: want
// "" means it is accepted, otherwise refused with an error containing want.
func createAsValidated(ctx context.Context, t *testing.T, cp *testenv.ControlPlane, obj client.Object, want string) {
	t.Helper()
	err := cp.Client.Create(ctx, obj)
	switch {
	case want == "" && err != nil:
		t.Fatalf("rejected: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("got %v, want an error with %q", err, want)
	}
}

// namespace creates a namespace of its own for one test.
func namespace(t *testing.T, cp *testenv.ControlPlane) string {
	t.Helper()
	name := fmt.Sprintf("api-%d-%s", namespaceCounter.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := cp.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

func TestValidationRejectsBadObjects(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)

	cases := []struct {
		name  string
		base  string
		patch string
		want  string // fragment of the API server's message
	}{
		// AuthorizationServer: issuer.
		{"issuer not a URL", validServer, `spec: {issuer: auth.example.com}`, "issuer must be an absolute URL with a host"},
		{"issuer without host", validServer, `spec: {issuer: "https:///path"}`, "issuer must be an absolute URL with a host"},
		{"issuer plain http", validServer, `spec: {issuer: "http://auth.example.com"}`, "issuer must use https; http is allowed only on loopback hosts"},
		{"issuer http on look-alike host", validServer, `spec: {issuer: "http://127.0.0.1.example.com"}`, "issuer must use https"},
		{"issuer with query", validServer, `spec: {issuer: "https://auth.example.com/?tenant=a"}`, "issuer must not have a query or fragment"},
		{"issuer with fragment", validServer, `spec: {issuer: "https://auth.example.com/#x"}`, "issuer must not have a query or fragment"},
		{"issuer missing", validServer, `spec: {issuer: null}`, "spec.issuer: Required value"},
		{"spec missing", validServer, `spec: null`, "spec: Required value"},
		// AuthorizationServer: replicas and storage.
		{"memory storage with two replicas", validServer, `spec: {replicas: 2}`, "use storage type Postgres to run more than one replica"},
		{"negative replicas", validServer, `spec: {replicas: -1}`, "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"},
		{"unknown storage", validServer, `spec: {storage: {type: Redis}}`, `spec.storage.type: Unsupported value: "Redis": supported values: "Memory", "Postgres"`},
		{"postgres without connection", validServer, `spec: {storage: {type: Postgres}}`, "postgres must be set when, and only when, type is Postgres"},
		{"memory with postgres block", validServer, `spec: {storage: {type: Memory, postgres: {urlSecretRef: {name: db, key: url}}}}`, "postgres must be set when, and only when, type is Postgres"},
		{"postgres secret key with slash", validServer, `spec: {storage: {type: Postgres, postgres: {urlSecretRef: {name: db, key: a/b}}}}`, "spec.storage.postgres.urlSecretRef.key in body should match"},
		// AuthorizationServer: signing.
		{"symmetric algorithm", validServer, `spec: {signing: {algorithm: HS256}}`, `Unsupported value: "HS256": supported values: "ES256", "RS256", "EdDSA"`},
		{"rotation interval in days", validServer, `spec: {signing: {rotationInterval: 30d}}`, "rotationInterval must be a duration such as 720h"},
		{"rotation interval too short", validServer, `spec: {signing: {rotationInterval: 10m}}`, "rotationInterval must be between 1h and 8760h"},
		{"prepublish too short", validServer, `spec: {signing: {prepublishPeriod: 30s}}`, "prepublishPeriod must be between 1m and 720h"},
		{"prepublish not before rotation", validServer, `spec: {signing: {rotationInterval: 24h, prepublishPeriod: 48h}}`, "prepublishPeriod must be shorter than rotationInterval"},
		// AuthorizationServer: token lifetimes.
		{"access token lifetime zero", validServer, `spec: {tokens: {accessToken: 0s}}`, "accessToken lifetime must be between 1m and 24h"},
		{"access token lifetime negative", validServer, `spec: {tokens: {accessToken: -5m}}`, "accessToken lifetime must be a duration such as 10m"},
		{"access token lifetime too long", validServer, `spec: {tokens: {accessToken: 25h}}`, "accessToken lifetime must be between 1m and 24h"},
		{"refresh token lifetime too long", validServer, `spec: {tokens: {refreshToken: 9000h}}`, "refreshToken lifetime must be between 1h and 8760h"},
		{"refresh shorter than access", validServer, `spec: {tokens: {accessToken: 2h, refreshToken: 1h}}`, "refreshToken lifetime must be longer than accessToken lifetime"},
		{"code lifetime too long", validServer, `spec: {tokens: {authorizationCode: 1h}}`, "authorizationCode lifetime must be between 10s and 10m"},
		{"code lifetime not a duration", validServer, `spec: {tokens: {authorizationCode: soon}}`, "authorizationCode lifetime must be a duration such as 60s"},
		{"device code lifetime too short", validServer, `spec: {tokens: {deviceCode: 30s}}`, "deviceCode lifetime must be between 1m and 30m"},
		{"device code lifetime too long", validServer, `spec: {tokens: {deviceCode: 2h}}`, "deviceCode lifetime must be between 1m and 30m"},
		{"device code lifetime not a duration", validServer, `spec: {tokens: {deviceCode: "10"}}`, "deviceCode lifetime must be a duration such as 10m"},
		// AuthorizationServer: pushed authorization requests.
		{"request_uri lifetime too short", validServer, `spec: {pushedAuthorizationRequests: {requestURILifetime: 5s}}`, "requestURILifetime must be between 10s and 10m"},
		{"request_uri lifetime too long", validServer, `spec: {pushedAuthorizationRequests: {requestURILifetime: 1h}}`, "requestURILifetime must be between 10s and 10m"},
		{"request_uri lifetime not a duration", validServer, `spec: {pushedAuthorizationRequests: {requestURILifetime: "60"}}`, "requestURILifetime must be a duration such as 60s"},
		// AuthorizationServer: client namespaces.
		{"selector without selector", validServer, `spec: {allowedClients: {namespaces: {from: Selector}}}`, "selector must be set when, and only when, from is Selector"},
		{"selector with All", validServer, `spec: {allowedClients: {namespaces: {from: All, selector: {matchLabels: {team: a}}}}}`, "selector must be set when, and only when, from is Selector"},
		{"unknown namespace policy", validServer, `spec: {allowedClients: {namespaces: {from: Everyone}}}`, `Unsupported value: "Everyone": supported values: "Same", "All", "Selector"`},

		// OAuthClient: redirect URIs.
		{"relative redirect URI", validClient, `spec: {redirectURIs: [/callback]}`, "a redirect URI must be an absolute URL"},
		{"redirect URI with fragment", validClient, `spec: {redirectURIs: ["https://app.example.com/cb#top"]}`, "a redirect URI must not contain a fragment"},
		{"plain http redirect URI", validClient, `spec: {redirectURIs: ["http://app.example.com/cb"]}`, "a redirect URI must use https; http is allowed only on loopback hosts"},
		{"http redirect on look-alike host", validClient, `spec: {redirectURIs: ["http://localhost.example.com/cb"]}`, "a redirect URI must use https"},
		{"custom scheme without a domain", validClient, `spec: {redirectURIs: ["myapp:/callback"]}`, "private-use scheme in reverse-domain form"},
		{"javascript redirect URI", validClient, `spec: {redirectURIs: ["javascript:alert(1)"]}`, "a redirect URI must use https"},
		{"loopback look-alike with userinfo", validClient, `spec: {redirectURIs: ["http://127.0.0.1:8400@evil.example/cb"]}`, "a redirect URI must use https"},
		{"https redirect without host", validClient, `spec: {redirectURIs: ["https:/callback"]}`, "a redirect URI must use https"},
		{"authorization_code without redirect URI", validClient, `spec: {redirectURIs: null}`, "grant type authorization_code needs at least one redirect URI"},
		{"PAR required without the code flow", validClient, `spec: {grantTypes: [client_credentials], redirectURIs: null, requirePushedAuthorizationRequests: true}`, "requirePushedAuthorizationRequests is about authorization requests: it needs grant type authorization_code"},
		// OAuthClient: grants.
		{"refresh without authorization_code", validClient, `spec: {grantTypes: [refresh_token]}`, "grant type refresh_token requires authorization_code or urn:ietf:params:oauth:grant-type:device_code"},
		{"refresh with client_credentials only", validClient, `spec: {grantTypes: [client_credentials, refresh_token], redirectURIs: null}`, "grant type refresh_token requires authorization_code or urn:ietf:params:oauth:grant-type:device_code"},
		{"password grant", validClient, `spec: {grantTypes: [password]}`, `Unsupported value: "password": supported values: "authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"`},
		{"device grant misspelt", validPublicClient, `spec: {grantTypes: [device_code]}`, `Unsupported value: "device_code"`},
		{"implicit grant", validClient, `spec: {grantTypes: [implicit]}`, `Unsupported value: "implicit"`},
		{"no grants", validClient, `spec: {grantTypes: []}`, "spec.grantTypes in body should have at least 1 items"},
		{"duplicate grant", validClient, `spec: {grantTypes: [authorization_code, authorization_code]}`, `Duplicate value: "authorization_code"`},
		// OAuthClient: public clients.
		{"public client with client_credentials", validPublicClient, `spec: {grantTypes: [authorization_code, client_credentials]}`, "a public client cannot use client_credentials"},
		{"public client with secretName", validPublicClient, `spec: {secretName: cli-oauth}`, "a public client has no secret: remove secretName and secretRotation"},
		{"public client with rotation", validPublicClient, `spec: {secretRotation: {interval: 24h}}`, "a public client has no secret: remove secretName and secretRotation"},
		{"public client with basic auth", validPublicClient, `spec: {tokenEndpointAuthMethod: client_secret_basic}`, "a public client has no secret, so its tokenEndpointAuthMethod must be none"},
		{"public client without PKCE", validPublicClient, `spec: {requirePKCE: false}`, "PKCE cannot be turned off for a public client"},
		{"confidential client with auth none", validClient, `spec: {tokenEndpointAuthMethod: none}`, "tokenEndpointAuthMethod none is for public clients only"},
		{"unknown auth method", validClient, `spec: {tokenEndpointAuthMethod: client_secret_jwt}`, `Unsupported value: "client_secret_jwt"`},
		{"unknown client type", validClient, `spec: {clientType: spa}`, `Unsupported value: "spa": supported values: "confidential", "public"`},
		// OAuthClient: scopes, audience, secret.
		{"scope with a space", validClient, `spec: {scopes: ["orders read"]}`, "a scope must not contain spaces"},
		{"scope with a quote", validClient, `spec: {scopes: ['say"hi']}`, "a scope may contain only printable ASCII characters"},
		{"scope with a backslash", validClient, `spec: {scopes: ['a\b']}`, "a scope may contain only printable ASCII characters"},
		{"empty scope", validClient, `spec: {scopes: [""]}`, "should be at least 1 chars long"},
		{"audience with white space", validClient, `spec: {audience: ["orders api"]}`, "an audience must not contain white space"},
		{"bad secret name", validClient, `spec: {secretName: My_Secret}`, "secretName must be a valid Secret name"},
		{"name too long for the default Secret name", validClient, `metadata: {name: ` + longName(241) + `}`, "the default Secret or ConfigMap name <name>-oauth-client would be longer than 253 characters"},
		{"rotation interval too short", validClient, `spec: {secretRotation: {interval: 30m}}`, "interval must be between 1h and 8760h"},
		{"grace period not shorter than interval", validClient, `spec: {secretRotation: {interval: 12h}}`, "gracePeriod must be shorter than interval"},
		{"grace period too long", validClient, `spec: {secretRotation: {gracePeriod: 1000h}}`, "gracePeriod must be at most 720h"},
		{"server ref without name", validClient, `spec: {serverRef: {name: null}}`, "spec.serverRef.name: Required value"},
		{"display name too long", validClient, `spec: {displayName: "` + strings.Repeat("x", 129) + `"}`, "may not be more than 128 bytes"},

		// Scope.
		{"scope name with a space", validScope, `spec: {name: "orders read"}`, "a scope must not contain spaces: OAuth separates scopes with a space"},
		{"scope name empty", validScope, `spec: {name: ""}`, "spec.name in body should be at least 1 chars long"},
		{"scope without description", validScope, `spec: {description: null}`, "spec.description: Required value"},
		{"scope without server", validScope, `spec: {serverRef: null}`, "spec.serverRef: Required value"},
		{"scope audience with space", validScope, `spec: {audience: "orders api"}`, "an audience must not contain white space"},
	}

	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			err := cp.Client.Create(ctx, obj)
			if err == nil {
				t.Fatalf("the API server accepted it; want a rejection containing %q", tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error containing %q, got %v", tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not say %q:\n%v", tc.want, err)
			}
			// A rejected object leaves nothing behind.
			check := &unstructured.Unstructured{}
			check.SetGroupVersionKind(obj.GroupVersionKind())
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), check); !apierrors.IsNotFound(err) {
				t.Errorf("after the rejection, Get says %v; want NotFound", err)
			}
		})
	}
}

// TestValidationAcceptsEdgeCases pins the other side of the rules: what a
// stricter rule would wrongly refuse.
func TestValidationAcceptsEdgeCases(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)

	cases := []struct {
		name  string
		base  string
		patch string
	}{
		{"issuer http on 127.0.0.1", validServer, `spec: {issuer: "http://127.0.0.1:8080"}`},
		{"issuer http on localhost with path", validServer, `spec: {issuer: "http://localhost:8080/tenants/a"}`},
		{"issuer http on [::1]", validServer, `spec: {issuer: "http://[::1]:8080"}`},
		{"postgres storage with replicas", validServer, `spec: {replicas: 3, storage: {type: Postgres, postgres: {urlSecretRef: {name: db, key: url}}}}`},
		{"zero replicas", validServer, `spec: {replicas: 0}`},
		{"namespace selector", validServer, `spec: {allowedClients: {namespaces: {from: Selector, selector: {matchLabels: {gatehouse: enabled}}}}}`},
		{"EdDSA with fractional durations", validServer, `spec: {signing: {algorithm: EdDSA, rotationInterval: 1.5h, prepublishPeriod: 30m}, tokens: {accessToken: 1h30m, authorizationCode: 30s}}`},
		{"loopback redirect URIs", validClient, `spec: {redirectURIs: ["http://127.0.0.1:8400/callback", "http://localhost:3000/cb", "http://[::1]/cb"]}`},
		{"native app scheme", validPublicClient, `spec: {redirectURIs: ["com.example.app:/oauth2redirect"]}`},
		{"redirect URI with query", validClient, `spec: {redirectURIs: ["https://app.example.com/cb?tenant=a"]}`},
		{"scopes with colon, dot and slash", validClient, `spec: {scopes: ["orders:read", "api.example.com/read", "a!#$%&'()*+,-./:;<=>?@[]^_{|}~"]}`},
		{"confidential client opting out of PKCE", validClient, `spec: {requirePKCE: false}`},
		{"client that must push its requests", validClient, `spec: {requirePushedAuthorizationRequests: true}`},
		{"server requiring PAR, request_uri lifetime at its bounds", validServer, `spec: {pushedAuthorizationRequests: {required: true, requestURILifetime: 10m}}`},
		{"client_credentials only", validClient, `spec: {grantTypes: [client_credentials], redirectURIs: null, tokenEndpointAuthMethod: client_secret_post}`},
		{"public client auth none", validPublicClient, `spec: {tokenEndpointAuthMethod: none}`},
		{"device grant alone, no redirect URI", validPublicClient, `spec: {grantTypes: ["urn:ietf:params:oauth:grant-type:device_code"], redirectURIs: null}`},
		{"device grant with refresh tokens", validPublicClient, `spec: {grantTypes: ["urn:ietf:params:oauth:grant-type:device_code", refresh_token], redirectURIs: null}`},
		{"every grant of a confidential client", validClient, `spec: {grantTypes: [authorization_code, refresh_token, client_credentials, "urn:ietf:params:oauth:grant-type:device_code"]}`},
		{"device code lifetime at its bounds", validServer, `spec: {tokens: {deviceCode: 30m}}`},
		{"on-demand rotation only", validClient, `spec: {secretRotation: {gracePeriod: 0s}}`},
		{"scope without consent", validScope, `spec: {requiresConsent: false, audience: "https://orders.example.com"}`},
		{"long name with its own Secret name", validClient, `{metadata: {name: ` + longName(245) + `}, spec: {secretName: app-oauth}}`},
		{"long name of a public client", validPublicClient, `metadata: {name: ` + longName(245) + `}`},
	}
	ctx := context.Background()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("%s-%d", obj.GetName(), i))
			if err := cp.Client.Create(ctx, obj); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

func TestDefaultsAreFilledIn(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()

	create := func(yamlDoc string, into client.Object) {
		t.Helper()
		obj := object(t, yamlDoc, "")
		obj.SetNamespace(ns)
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetKind(), err)
		}
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), into); err != nil {
			t.Fatalf("get %s: %v", obj.GetKind(), err)
		}
	}

	var server oauthv1.AuthorizationServer
	create(validServer, &server)
	got := server.Spec
	check(t, "replicas", *got.Replicas, int32(1))
	check(t, "signing.algorithm", got.Signing.Algorithm, oauthv1.SigningES256)
	check(t, "signing.rotationInterval", got.Signing.RotationInterval.Duration.String(), "720h0m0s")
	check(t, "signing.prepublishPeriod", got.Signing.PrepublishPeriod.Duration.String(), "24h0m0s")
	check(t, "tokens.accessToken", got.Tokens.AccessToken.Duration.String(), "10m0s")
	check(t, "tokens.refreshToken", got.Tokens.RefreshToken.Duration.String(), "720h0m0s")
	check(t, "tokens.authorizationCode", got.Tokens.AuthorizationCode.Duration.String(), "1m0s")
	check(t, "tokens.deviceCode", got.Tokens.DeviceCode.Duration.String(), "10m0s")
	check(t, "storage.type", got.Storage.Type, oauthv1.StorageMemory)
	check(t, "allowedClients.namespaces.from", got.AllowedClients.Namespaces.From, oauthv1.NamespacesFromSame)
	check(t, "pushedAuthorizationRequests.required", got.PushedAuthorizationRequests.Required, false)
	check(t, "pushedAuthorizationRequests.requestURILifetime", got.PushedAuthorizationRequests.RequestURILifetime.Duration.String(), "1m0s")

	var app oauthv1.OAuthClient
	create(`
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: minimal}
spec:
  serverRef: {name: auth}
  redirectURIs: [https://app.example.com/callback]
`, &app)
	check(t, "clientType", app.Spec.ClientType, oauthv1.ClientConfidential)
	check(t, "grantTypes", fmt.Sprint(app.Spec.GrantTypes), "[authorization_code]")
	check(t, "requirePKCE", *app.Spec.RequirePKCE, true)
	check(t, "skipConsent", app.Spec.SkipConsent, false)
	check(t, "requirePushedAuthorizationRequests", app.Spec.RequirePushedAuthorizationRequests, false)
	check(t, "tokenEndpointAuthMethod (resolved by the server from clientType)", app.Spec.TokenEndpointAuthMethod, oauthv1.TokenEndpointAuthMethod(""))

	var rotating oauthv1.OAuthClient
	create(validClient+"  secretRotation: {interval: 2160h}\n", &rotating)
	check(t, "secretRotation.gracePeriod", rotating.Spec.SecretRotation.GracePeriod.Duration.String(), "24h0m0s")

	var scope oauthv1.Scope
	create(validScope, &scope)
	check(t, "requiresConsent", *scope.Spec.RequiresConsent, true)
}

func check[T comparable](t *testing.T, field string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", field, got, want)
	}
}

func TestImmutableFields(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()

	cases := []struct {
		name  string
		base  string
		patch string
		want  string
	}{
		{"client serverRef", validClient, `{"spec":{"serverRef":{"name":"other"}}}`, "serverRef is immutable: create a new OAuthClient"},
		{"client clientType", validClient, `{"spec":{"clientType":"public","grantTypes":["authorization_code"]}}`, "clientType is immutable"},
		{"scope serverRef", validScope, `{"spec":{"serverRef":{"name":"other"}}}`, "serverRef is immutable: create a new Scope"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.base, "")
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("%s-%d", obj.GetName(), i))
			if err := cp.Client.Create(ctx, obj); err != nil {
				t.Fatalf("create: %v", err)
			}
			before := obj.DeepCopy()
			err := cp.Client.Patch(ctx, obj, client.RawPatch("application/merge-patch+json", []byte(tc.patch)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("patch %s: got %v, want an error containing %q", tc.patch, err, tc.want)
			}
			after := before.DeepCopy()
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(before), after); err != nil {
				t.Fatal(err)
			}
			if after.GetResourceVersion() != before.GetResourceVersion() {
				t.Errorf("the rejected patch changed the object (resourceVersion %s -> %s)", before.GetResourceVersion(), after.GetResourceVersion())
			}
		})
	}
}

// sampleObjects reads every object in config/samples.
func sampleObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "oauth_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in config/samples (%v)", err)
	}
	var objs []*unstructured.Unstructured
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		decoder := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
		for {
			var raw map[string]any
			if err := decoder.Decode(&raw); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("%s: %v", file, err)
				}
				break
			}
			if raw == nil {
				continue
			}
			objs = append(objs, &unstructured.Unstructured{Object: raw})
		}
		_ = f.Close()
	}
	return objs
}

func TestEverySampleApplies(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()

	kinds := map[string]int{}
	for _, obj := range sampleObjects(t) {
		obj.SetNamespace(ns)
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Errorf("sample %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
		kinds[obj.GetKind()]++
	}
	for _, kind := range []string{"AuthorizationServer", "OAuthClient", "Scope"} {
		if kinds[kind] == 0 {
			t.Errorf("config/samples has no %s", kind)
		}
	}

	// The samples show the three client shapes the README talks about.
	var clients oauthv1.OAuthClientList
	if err := cp.Client.List(ctx, &clients, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	shapes := map[string]bool{}
	for _, c := range clients.Items {
		grants := fmt.Sprint(c.Spec.GrantTypes)
		switch {
		case c.Spec.ClientType == oauthv1.ClientPublic && *c.Spec.RequirePKCE:
			shapes["public with PKCE"] = true
		case strings.Contains(grants, "client_credentials"):
			shapes["machine"] = true
		case strings.Contains(grants, "authorization_code") && strings.Contains(grants, "refresh_token"):
			shapes["confidential web app"] = true
		}
	}
	for _, shape := range []string{"public with PKCE", "machine", "confidential web app"} {
		if !shapes[shape] {
			t.Errorf("config/samples has no %s client", shape)
		}
	}
}

// The CRDs round-trip through the Go types without losing fields: a field
// the schema prunes but the Go type has would be silently dropped.
func TestSamplesRoundTripThroughGoTypes(t *testing.T) {
	for _, obj := range sampleObjects(t) {
		raw, err := json.Marshal(obj.Object)
		if err != nil {
			t.Fatal(err)
		}
		var typed any
		switch obj.GetKind() {
		case "AuthorizationServer":
			typed = &oauthv1.AuthorizationServer{}
		case "OAuthClient":
			typed = &oauthv1.OAuthClient{}
		case "Scope":
			typed = &oauthv1.Scope{}
		default:
			t.Fatalf("unknown kind %s", obj.GetKind())
		}
		decoder := json.NewDecoder(strings.NewReader(string(raw)))
		decoder.DisallowUnknownFields()
		if err := decoder.Decode(typed); err != nil {
			t.Errorf("%s %s has a field the Go type lacks: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
}
