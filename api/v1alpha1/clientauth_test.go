package v1alpha1_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Clients without secrets (issue 20): bad combinations of
// spec.authentication, tokenEndpointAuthMethod, clientType and the secret
// fields are refused at apply time, as are bad keys and trusted issuers.
func TestClientAuthenticationValidation(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()

	const (
		ecKey   = `{kty: EC, crv: P-256, kid: k1, x: f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU, "y": x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0}`
		saAuth  = `{serviceAccount: {name: orders-worker}}`
		pkjAuth = `{privateKeyJWT: {keys: [` + ecKey + `]}}`
	)
	cc := `grantTypes: [client_credentials], redirectURIs: null, `
	rejected := []struct{ name, base, patch, want string }{
		{"two credentials", validClient, `spec: {` + cc + `authentication: {serviceAccount: {name: a}, privateKeyJWT: {jwksURI: "https://keys.example.com"}}}`,
			"authentication needs exactly one of serviceAccount, privateKeyJWT or federated"},
		{"empty authentication", validClient, `spec: {` + cc + `authentication: {}}`,
			"authentication needs exactly one of serviceAccount, privateKeyJWT or federated"},
		{"public client with a credential", validPublicClient, `spec: {authentication: ` + saAuth + `}`,
			"a public client cannot have authentication"},
		{"secretName with a credential", validClient, `spec: {` + cc + `secretName: creds, authentication: ` + saAuth + `}`,
			"a client with spec.authentication has no secret: remove secretName and secretRotation"},
		{"secretRotation with a credential", validClient, `spec: {` + cc + `secretRotation: {interval: 720h}, authentication: ` + saAuth + `}`,
			"a client with spec.authentication has no secret"},
		{"configMapName without a credential", validClient, `spec: {configMapName: conn}`,
			"configMapName is for clients with spec.authentication"},
		{"client_secret_basic with a ServiceAccount", validClient, `spec: {` + cc + `tokenEndpointAuthMethod: client_secret_basic, authentication: ` + saAuth + `}`,
			"authentication.serviceAccount and authentication.federated mean tokenEndpointAuthMethod federated_jwt"},
		{"private_key_jwt with a ServiceAccount", validClient, `spec: {` + cc + `tokenEndpointAuthMethod: private_key_jwt, authentication: ` + saAuth + `}`,
			"mean tokenEndpointAuthMethod federated_jwt"},
		{"federated_jwt with keys", validClient, `spec: {` + cc + `tokenEndpointAuthMethod: federated_jwt, authentication: ` + pkjAuth + `}`,
			"authentication.privateKeyJWT means tokenEndpointAuthMethod private_key_jwt"},
		{"private_key_jwt without keys", validClient, `spec: {` + cc + `tokenEndpointAuthMethod: private_key_jwt}`,
			"tokenEndpointAuthMethod private_key_jwt needs the client's public keys in authentication.privateKeyJWT"},
		{"federated_jwt without a binding", validClient, `spec: {` + cc + `tokenEndpointAuthMethod: federated_jwt}`,
			"tokenEndpointAuthMethod federated_jwt needs authentication.serviceAccount or authentication.federated"},
		{"client_secret_jwt", validClient, `spec: {tokenEndpointAuthMethod: client_secret_jwt}`, `Unsupported value: "client_secret_jwt"`},
		{"bad ServiceAccount name", validClient, `spec: {` + cc + `authentication: {serviceAccount: {name: Orders_Worker}}}`,
			"name must be a valid ServiceAccount name"},
		{"two key sources", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {jwksURI: "https://keys.example.com", secretRef: {name: k, key: jwks.json}}}}`,
			"privateKeyJWT needs exactly one of keys, jwksURI or secretRef"},
		{"no key source", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {}}}`,
			"privateKeyJWT needs exactly one of keys, jwksURI or secretRef"},
		{"jwksURI over http", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {jwksURI: "http://keys.example.com/jwks"}}}`,
			"jwksURI must use https; http is allowed only on loopback hosts"},
		{"HMAC key", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {keys: [{kty: oct, k: c2VjcmV0}]}}}`, `Unsupported value: "oct"`},
		{"alg none", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {keys: [{kty: EC, alg: none, crv: P-256, x: AA, "y": AA}]}}}`, `Unsupported value: "none"`},
		{"HS256", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {keys: [{kty: RSA, alg: HS256, "n": AA, e: AQAB}]}}}`, `Unsupported value: "HS256"`},
		{"alg of another key type", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {keys: [{kty: EC, alg: RS256, crv: P-256, x: AA, "y": AA}]}}}`,
			"alg must fit the key: ES256 for EC, RS256 for RSA, EdDSA for OKP"},
		{"EC key without y", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {keys: [{kty: EC, crv: P-256, x: AA}]}}}`,
			"an EC key needs crv P-256, x and y"},
		{"EC key with a bare YAML y", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {keys: [{kty: EC, crv: P-256, x: AA, y: AA}]}}}`,
			"in YAML quote the name y"},
		{"RSA key with a bare YAML n", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {keys: [{kty: RSA, n: AA, e: AQAB}]}}}`,
			"in YAML quote the name n"},
		{"P-384", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {keys: [{kty: EC, crv: P-384, x: AA, "y": AA}]}}}`, `Unsupported value: "P-384"`},
		{"RSA key without e", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {keys: [{kty: RSA, "n": AA}]}}}`, "an RSA key needs n and e"},
		{"key not base64url", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {keys: [{kty: OKP, crv: Ed25519, x: "a+b/"}]}}}`, "should match"},
		{"federated binding without subject", validClient, `spec: {` + cc + `authentication: {federated: {issuer: github}}}`, "subject: Required value"},
		{"federated claim on iss", validClient, `spec: {` + cc + `authentication: {federated: {issuer: github, subject: x, claims: {iss: evil}}}}`,
			"claims cannot list iss, sub, aud, exp, nbf, iat or jti"},
		{"federated issuer not a name", validClient, `spec: {` + cc + `authentication: {federated: {issuer: "GitHub_CI", subject: x}}}`,
			"issuer is the name of a trusted issuer: a DNS label"},
		// AuthorizationServer: workload identity.
		{"SA token lifetime too long", validServer, `spec: {workloadIdentity: {serviceAccountTokens: {maxTokenLifetime: 8760h}}}`,
			"maxTokenLifetime must be between 10m and 48h"},
		{"trusted issuer over http", validServer, `spec: {workloadIdentity: {trustedIssuers: [{name: ci, issuer: "http://ci.example.com"}]}}`,
			"issuer must use https; http is allowed only on loopback hosts"},
		{"trusted issuer with jwksURI and keys", validServer, `spec: {workloadIdentity: {trustedIssuers: [{name: ci, issuer: "https://ci.example.com", jwksURI: "https://ci.example.com/keys", keys: [` + ecKey + `]}]}}`,
			"set at most one of jwksURI and keys"},
		{"CA with inline keys", validServer, `spec: {workloadIdentity: {trustedIssuers: [{name: ci, issuer: "https://ci.example.com", caConfigMapRef: {name: ca, key: ca.crt}, keys: [` + ecKey + `]}]}}`,
			"caConfigMapRef is for fetching keys over https"},
		{"unknown reuse", validServer, `spec: {workloadIdentity: {trustedIssuers: [{name: ci, issuer: "https://ci.example.com", reuse: Always}]}}`, `Unsupported value: "Always"`},
		{"two trusted issuers of one name", validServer, `spec: {workloadIdentity: {trustedIssuers: [{name: ci, issuer: "https://a.example.com"}, {name: ci, issuer: "https://b.example.com"}]}}`,
			"Duplicate value"},
	}
	for _, tc := range rejected {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			obj := object(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			err := cp.Client.Create(ctx, obj)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an Invalid error saying %q", err, tc.want)
			}
		})
	}

	accepted := []struct{ name, base, patch string }{
		{"ServiceAccount", validClient, `spec: {` + cc + `authentication: ` + saAuth + `}`},
		{"ServiceAccount with its method spelled out", validClient, `spec: {` + cc + `tokenEndpointAuthMethod: federated_jwt, configMapName: conn, authentication: ` + saAuth + `}`},
		{"inline keys", validClient, `spec: {` + cc + `tokenEndpointAuthMethod: private_key_jwt, authentication: ` + pkjAuth + `}`},
		{"jwksURI", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {jwksURI: "https://keys.example.com/jwks.json"}}}`},
		{"jwksURI on loopback", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {jwksURI: "http://127.0.0.1:8443/jwks"}}}`},
		{"key Secret", validClient, `spec: {` + cc + `authentication: {privateKeyJWT: {secretRef: {name: client-key, key: tls.crt}}}}`},
		{"code flow with private_key_jwt", validClient, `spec: {authentication: ` + pkjAuth + `}`},
		{"federated", validClient, `spec: {` + cc + `authentication: {federated: {issuer: github, subject: "repo:org/app:ref:refs/heads/main", claims: {repository: org/app}}}}`},
		{"trusted issuers", validServer, `spec: {workloadIdentity: {serviceAccountTokens: {maxTokenLifetime: 10m}, trustedIssuers: [
			{name: github, issuer: "https://token.actions.githubusercontent.com", reuse: SingleUse, allowedClients: {namespaces: {from: All}}},
			{name: east, issuer: "https://kubernetes.default.svc", keys: [` + ecKey + `], reuse: UntilExpiry, audiences: [gatehouse]},
			{name: corp, issuer: "https://ci.corp.example", jwksURI: "https://ci.corp.example/keys", caConfigMapRef: {name: corp-ca, key: ca.crt}}]}}`},
	}
	for _, tc := range accepted {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			obj := object(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName(obj.GetName() + "-" + strings.NewReplacer(" ", "-", "_", "-").Replace(strings.ToLower(tc.name)))
			if err := cp.Client.Create(ctx, obj); err != nil {
				t.Fatalf("create: %v", err)
			}
		})
	}
}

// The defaults of workload identity are filled in at apply time and read
// the same way by the accessors.
func TestWorkloadIdentityDefaults(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()
	obj := object(t, validServer, `spec: {workloadIdentity: {trustedIssuers: [{name: github, issuer: "https://token.actions.githubusercontent.com"}]}}`)
	obj.SetNamespace(ns)
	if err := cp.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	var srv oauthv1.AuthorizationServer
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), &srv); err != nil {
		t.Fatal(err)
	}
	wi := srv.Spec.WorkloadIdentity
	if d := wi.ServiceAccountTokens.MaxTokenLifetime; d == nil || d.Duration != time.Hour {
		t.Errorf("serviceAccountTokens.maxTokenLifetime = %v, want 1h", d)
	}
	ti := &wi.TrustedIssuers[0]
	if ti.Reuse != oauthv1.TokenSingleUse || ti.AllowedClients.Namespaces.From != oauthv1.NamespacesFromSame ||
		ti.MaxTokenLifetime == nil || ti.MaxTokenLifetime.Duration != time.Hour {
		t.Errorf("trusted issuer defaults: %+v", ti)
	}
	if got := ti.AcceptedAudiences(srv.Spec.Issuer); len(got) != 1 || got[0] != srv.Spec.Issuer {
		t.Errorf("AcceptedAudiences = %v, want the server's issuer", got)
	}
}

// AuthMethod is the one place the effective method is decided; the CRD's
// rules keep spec.tokenEndpointAuthMethod consistent with it. AuthMethods
// tells an unset method (a client with a secret may send it either way)
// from a pinned one, which the CRD's defaulting must leave unset
// (TestDefaultsAreFilledIn).
func TestAuthMethod(t *testing.T) {
	sa := &oauthv1.ClientAuthentication{ServiceAccount: &oauthv1.ServiceAccountAuthentication{Name: "w"}}
	pk := &oauthv1.ClientAuthentication{PrivateKeyJWT: &oauthv1.PrivateKeyJWTAuthentication{JWKSURI: "https://k"}}
	fed := &oauthv1.ClientAuthentication{Federated: &oauthv1.FederatedAuthentication{Issuer: "ci", Subject: "s"}}
	basic, post := oauthv1.AuthClientSecretBasic, oauthv1.AuthClientSecretPost
	for _, tc := range []struct {
		spec        oauthv1.OAuthClientSpec
		want        oauthv1.TokenEndpointAuthMethod
		wantMethods []oauthv1.TokenEndpointAuthMethod
		wantSecret  bool
	}{
		{oauthv1.OAuthClientSpec{}, basic, []oauthv1.TokenEndpointAuthMethod{basic, post}, true},
		{oauthv1.OAuthClientSpec{ClientType: oauthv1.ClientConfidential}, basic, []oauthv1.TokenEndpointAuthMethod{basic, post}, true},
		{oauthv1.OAuthClientSpec{ClientType: oauthv1.ClientConfidential, TokenEndpointAuthMethod: post}, post, []oauthv1.TokenEndpointAuthMethod{post}, true},
		{oauthv1.OAuthClientSpec{ClientType: oauthv1.ClientConfidential, TokenEndpointAuthMethod: basic}, basic, []oauthv1.TokenEndpointAuthMethod{basic}, true},
		{oauthv1.OAuthClientSpec{ClientType: oauthv1.ClientPublic}, oauthv1.AuthNone, []oauthv1.TokenEndpointAuthMethod{oauthv1.AuthNone}, false},
		{oauthv1.OAuthClientSpec{Authentication: sa}, oauthv1.AuthFederatedJWT, []oauthv1.TokenEndpointAuthMethod{oauthv1.AuthFederatedJWT}, false},
		{oauthv1.OAuthClientSpec{Authentication: fed}, oauthv1.AuthFederatedJWT, []oauthv1.TokenEndpointAuthMethod{oauthv1.AuthFederatedJWT}, false},
		{oauthv1.OAuthClientSpec{Authentication: pk}, oauthv1.AuthPrivateKeyJWT, []oauthv1.TokenEndpointAuthMethod{oauthv1.AuthPrivateKeyJWT}, false},
		{oauthv1.OAuthClientSpec{Authentication: pk, TokenEndpointAuthMethod: oauthv1.AuthPrivateKeyJWT}, oauthv1.AuthPrivateKeyJWT, []oauthv1.TokenEndpointAuthMethod{oauthv1.AuthPrivateKeyJWT}, false},
	} {
		oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: tc.spec}
		if got := oc.AuthMethod(); got != tc.want {
			t.Errorf("%+v: AuthMethod = %s, want %s", tc.spec, got, tc.want)
		}
		if got := oc.AuthMethods(); !slices.Equal(got, tc.wantMethods) {
			t.Errorf("%+v: AuthMethods = %v, want %v", tc.spec, got, tc.wantMethods)
		}
		if got := oc.HasSecret(); got != tc.wantSecret {
			t.Errorf("%+v: HasSecret = %v, want %v", tc.spec, got, tc.wantSecret)
		}
	}
}
