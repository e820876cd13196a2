package v1alpha1_test

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

func d(s string) *metav1.Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: v}
}

func TestServerLifetimes(t *testing.T) {
	unset := &oauthv1.AuthorizationServer{}
	set := &oauthv1.AuthorizationServer{Spec: oauthv1.AuthorizationServerSpec{
		Tokens:  oauthv1.TokenLifetimes{AccessToken: d("5m"), RefreshToken: d("48h"), AuthorizationCode: d("30s")},
		Signing: oauthv1.SigningSpec{Algorithm: oauthv1.SigningRS256, RotationInterval: d("168h"), PrepublishPeriod: d("1h")},
	}}
	zero := &oauthv1.AuthorizationServer{Spec: oauthv1.AuthorizationServerSpec{Tokens: oauthv1.TokenLifetimes{AccessToken: d("0s")}}}
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"access default", unset.AccessTokenLifetime(), 10 * time.Minute},
		{"refresh default", unset.RefreshTokenLifetime(), 720 * time.Hour},
		{"code default", unset.AuthorizationCodeLifetime(), 60 * time.Second},
		{"rotation default", unset.RotationInterval(), 720 * time.Hour},
		{"prepublish default", unset.PrepublishPeriod(), 24 * time.Hour},
		{"access set", set.AccessTokenLifetime(), 5 * time.Minute},
		{"refresh set", set.RefreshTokenLifetime(), 48 * time.Hour},
		{"code set", set.AuthorizationCodeLifetime(), 30 * time.Second},
		{"rotation set", set.RotationInterval(), 168 * time.Hour},
		{"prepublish set", set.PrepublishPeriod(), time.Hour},
		{"zero lifetime bypassing the schema", zero.AccessTokenLifetime(), 10 * time.Minute},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.got, c.want)
		}
	}
	if unset.SigningAlgorithm() != oauthv1.SigningES256 || set.SigningAlgorithm() != oauthv1.SigningRS256 {
		t.Errorf("signing algorithm: %s and %s", unset.SigningAlgorithm(), set.SigningAlgorithm())
	}
}

func TestClientServerRefAndRotation(t *testing.T) {
	local := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web"},
		Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "auth"}}}
	remote := local.DeepCopy()
	remote.Spec.ServerRef.Namespace = "platform"
	if got := local.ServerKey(); got != "app/auth" {
		t.Errorf("serverRef without namespace: %s, want app/auth", got)
	}
	if got := remote.ServerKey(); got != "platform/auth" {
		t.Errorf("serverRef with namespace: %s, want platform/auth", got)
	}
	if !local.References("app", "auth") || local.References("platform", "auth") || !remote.References("platform", "auth") || remote.References("app", "auth") {
		t.Error("References disagrees with ServerKey")
	}
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "platform", Name: "auth"}}
	if srv.ServerKey() != remote.ServerKey() {
		t.Errorf("server key %s, client key %s", srv.ServerKey(), remote.ServerKey())
	}

	if local.SecretGracePeriod() != 24*time.Hour || local.SecretRotationInterval() != 0 {
		t.Errorf("unset rotation: grace %s, interval %s", local.SecretGracePeriod(), local.SecretRotationInterval())
	}
	local.Spec.SecretRotation = &oauthv1.SecretRotation{Interval: d("48h"), GracePeriod: d("0s")}
	if local.SecretGracePeriod() != 0 || local.SecretRotationInterval() != 48*time.Hour {
		t.Errorf("grace 0s must stay 0 (stop the old secret at once): grace %s, interval %s",
			local.SecretGracePeriod(), local.SecretRotationInterval())
	}
}

func TestScopeOwner(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name string, created time.Time, deleting bool) oauthv1.Scope {
		s := oauthv1.Scope{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)}}
		if deleting {
			s.DeletionTimestamp = &metav1.Time{Time: created}
		}
		return s
	}
	for _, c := range []struct {
		name   string
		scopes []oauthv1.Scope
		want   string
	}{
		{"none", nil, ""},
		{"oldest wins", []oauthv1.Scope{mk("b", t0.Add(time.Second), false), mk("a", t0.Add(2*time.Second), false)}, "b"},
		{"tie goes to the smaller name", []oauthv1.Scope{mk("z", t0, false), mk("m", t0, false)}, "m"},
		{"a Scope being deleted holds nothing", []oauthv1.Scope{mk("old", t0, true), mk("new", t0.Add(time.Hour), false)}, "new"},
		{"only deleted ones", []oauthv1.Scope{mk("old", t0, true)}, ""},
	} {
		got := ""
		if o := oauthv1.ScopeOwner(c.scopes); o != nil {
			got = o.Name
		}
		if got != c.want {
			t.Errorf("%s: owner %q, want %q", c.name, got, c.want)
		}
		sorted := append([]oauthv1.Scope(nil), c.scopes...)
		oauthv1.SortScopeClaims(sorted)
		if c.want != "" && len(sorted) > 0 && sorted[0].Name != c.want && sorted[0].DeletionTimestamp.IsZero() {
			t.Errorf("%s: sorted first %q, owner %q", c.name, sorted[0].Name, c.want)
		}
	}
}

// Every accessor that defaults a field returns, for an object that leaves
// the field unset, what the CRD's +kubebuilder:default marker writes: the
// operator and the token server read the accessors, objects built without
// the API server (tests, gatehouse dev) get the same defaults as stored
// ones, and if either side changes this fails until the other does. Every
// default of the OAuthClient CRD has its accessor here.
func TestDefaultsMatchCRD(t *testing.T) {
	servers, clients := crdDefaults(t, "authorizationservers"), crdDefaults(t, "oauthclients")
	duration := func(defaults map[string]any, path string) time.Duration {
		t.Helper()
		s, _ := defaults[path].(string)
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s: CRD default %v: %v", path, defaults[path], err)
		}
		return v
	}
	srv, issuer := &oauthv1.AuthorizationServer{}, &oauthv1.TrustedIssuer{}
	recheckInterval, recheckGrace := (&oauthv1.IdentityProvider{}).RecheckTiming()
	for _, c := range []struct {
		path string
		got  time.Duration
	}{
		{".spec.tokens.accessToken", srv.AccessTokenLifetime()},
		{".spec.tokens.refreshToken", srv.RefreshTokenLifetime()},
		{".spec.tokens.authorizationCode", srv.AuthorizationCodeLifetime()},
		{".spec.tokens.deviceCode", srv.DeviceCodeLifetime()},
		{".spec.signing.rotationInterval", srv.RotationInterval()},
		{".spec.signing.prepublishPeriod", srv.PrepublishPeriod()},
		{".spec.workloadIdentity.serviceAccountTokens.maxTokenLifetime", srv.ServiceAccountTokenMaxLifetime()},
		{".spec.workloadIdentity.trustedIssuers[].maxTokenLifetime", issuer.TokenMaxLifetime()},
		{".spec.identityProviders[].recheck.interval", recheckInterval},
		{".spec.identityProviders[].recheck.gracePeriod", recheckGrace},
		{".spec.pushedAuthorizationRequests.requestURILifetime", srv.RequestURILifetime()},
	} {
		if want := duration(servers, c.path); c.got != want {
			t.Errorf("AuthorizationServer %s: accessor gives %s, CRD default %s", c.path, c.got, want)
		}
	}
	if got, want := string(srv.SigningAlgorithm()), servers[".spec.signing.algorithm"]; got != want {
		t.Errorf("AuthorizationServer .spec.signing.algorithm: accessor gives %s, CRD default %v", got, want)
	}
	if got, want := string(srv.RefreshTokenRetryMode()), servers[".spec.refreshTokenRetry"]; got != want {
		t.Errorf("AuthorizationServer .spec.refreshTokenRetry: accessor gives %s, CRD default %v", got, want)
	}
	if got, want := string(issuer.TokenReuse()), servers[".spec.workloadIdentity.trustedIssuers[].reuse"]; got != want {
		t.Errorf("AuthorizationServer trustedIssuers[].reuse: accessor gives %s, CRD default %v", got, want)
	}

	oc := &oauthv1.OAuthClient{}
	var grants []any
	for _, g := range oc.Grants() {
		grants = append(grants, string(g))
	}
	clientType := string(oauthv1.ClientConfidential)
	if oc.IsPublic() {
		clientType = string(oauthv1.ClientPublic)
	}
	pinned := map[string]struct{ got, want any }{
		".spec.clientType":                 {clientType, clients[".spec.clientType"]},
		".spec.grantTypes":                 {grants, clients[".spec.grantTypes"]},
		".spec.requirePKCE":                {oc.PKCERequired(), clients[".spec.requirePKCE"]},
		".spec.secretRotation.gracePeriod": {oc.SecretGracePeriod(), duration(clients, ".spec.secretRotation.gracePeriod")},
	}
	for path, c := range pinned {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("OAuthClient %s: accessor gives %v, CRD default %v", path, c.got, c.want)
		}
	}
	for path := range clients {
		if _, ok := pinned[path]; !ok {
			t.Errorf("OAuthClient %s has a CRD default (%v) that no accessor is pinned to here", path, clients[path])
		}
	}
	// A set requirePKCE is kept, except that a public client cannot opt
	// out; grant types a public client cannot use are dropped.
	no := false
	oc.Spec.RequirePKCE = &no
	if oc.PKCERequired() {
		t.Error("a confidential client's requirePKCE: false is ignored")
	}
	oc.Spec.ClientType = oauthv1.ClientPublic
	oc.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantClientCredentials, oauthv1.GrantAuthorizationCode, oauthv1.GrantTokenExchange}
	if !oc.PKCERequired() || !reflect.DeepEqual(oc.Grants(), []oauthv1.GrantType{oauthv1.GrantAuthorizationCode}) {
		t.Errorf("public client: PKCE required %v, grants %v", oc.PKCERequired(), oc.Grants())
	}
}

// crdDefaults are the +kubebuilder:default values of a generated CRD, by
// the field's path (.spec.tokens.accessToken; [] for list items).
func crdDefaults(t *testing.T, plural string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../../config/crd/bases/oauth.gatehouse.dev_" + plural + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	var walk func(p *apiextensionsv1.JSONSchemaProps, path string)
	walk = func(p *apiextensionsv1.JSONSchemaProps, path string) {
		if p.Default != nil {
			var v any
			if err := json.Unmarshal(p.Default.Raw, &v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if m, ok := v.(map[string]any); !ok || len(m) > 0 { // {} only makes the children's defaults apply
				out[path] = v
			}
		}
		for name, child := range p.Properties {
			walk(&child, path+"."+name)
		}
		if p.Items != nil && p.Items.Schema != nil {
			walk(p.Items.Schema, path+"[]")
		}
	}
	walk(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, "")
	return out
}
