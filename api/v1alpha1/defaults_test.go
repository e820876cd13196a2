package v1alpha1_test

import (
	"os"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

func d(s string) *metav1.Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: v}
}

func TestServerLifetimes(t *testing.T) {
	unset := &v1.AuthorizationServer{}
	set := &v1.AuthorizationServer{Spec: v1.AuthorizationServerSpec{
		Tokens:  v1.TokenLifetimes{AccessToken: d("5m"), RefreshToken: d("48h"), AuthorizationCode: d("30s")},
		Signing: v1.SigningSpec{Algorithm: v1.SigningRS256, RotationInterval: d("168h"), PrepublishPeriod: d("1h")},
	}}
	zero := &v1.AuthorizationServer{Spec: v1.AuthorizationServerSpec{Tokens: v1.TokenLifetimes{AccessToken: d("0s")}}}
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
	if unset.SigningAlgorithm() != v1.SigningES256 || set.SigningAlgorithm() != v1.SigningRS256 {
		t.Errorf("signing algorithm: %s and %s", unset.SigningAlgorithm(), set.SigningAlgorithm())
	}
}

func TestClientServerRefAndRotation(t *testing.T) {
	local := &v1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web"},
		Spec: v1.OAuthClientSpec{ServerRef: v1.ServerReference{Name: "auth"}}}
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
	srv := &v1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "platform", Name: "auth"}}
	if srv.ServerKey() != remote.ServerKey() {
		t.Errorf("server key %s, client key %s", srv.ServerKey(), remote.ServerKey())
	}

	if local.SecretGracePeriod() != 24*time.Hour || local.SecretRotationInterval() != 0 {
		t.Errorf("unset rotation: grace %s, interval %s", local.SecretGracePeriod(), local.SecretRotationInterval())
	}
	local.Spec.SecretRotation = &v1.SecretRotation{Interval: d("48h"), GracePeriod: d("0s")}
	if local.SecretGracePeriod() != 0 || local.SecretRotationInterval() != 48*time.Hour {
		t.Errorf("grace 0s must stay 0 (stop the old secret at once): grace %s, interval %s",
			local.SecretGracePeriod(), local.SecretRotationInterval())
	}
}

func TestScopeOwner(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name string, created time.Time, deleting bool) v1.Scope {
		s := v1.Scope{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)}}
		if deleting {
			s.DeletionTimestamp = &metav1.Time{Time: created}
		}
		return s
	}
	for _, c := range []struct {
		name   string
		scopes []v1.Scope
		want   string
	}{
		{"none", nil, ""},
		{"oldest wins", []v1.Scope{mk("b", t0.Add(time.Second), false), mk("a", t0.Add(2*time.Second), false)}, "b"},
		{"tie goes to the smaller name", []v1.Scope{mk("z", t0, false), mk("m", t0, false)}, "m"},
		{"a Scope being deleted holds nothing", []v1.Scope{mk("old", t0, true), mk("new", t0.Add(time.Hour), false)}, "new"},
		{"only deleted ones", []v1.Scope{mk("old", t0, true)}, ""},
	} {
		got := ""
		if o := v1.ScopeOwner(c.scopes); o != nil {
			got = o.Name
		}
		if got != c.want {
			t.Errorf("%s: owner %q, want %q", c.name, got, c.want)
		}
		sorted := append([]v1.Scope(nil), c.scopes...)
		v1.SortScopeClaims(sorted)
		if c.want != "" && len(sorted) > 0 && sorted[0].Name != c.want && sorted[0].DeletionTimestamp.IsZero() {
			t.Errorf("%s: sorted first %q, owner %q", c.name, sorted[0].Name, c.want)
		}
	}
}

// The constants restate the CRD's +kubebuilder:default markers: if one
// side changes, this fails until the other does.
func TestDefaultsMatchCRD(t *testing.T) {
	raw, err := os.ReadFile("../../config/crd/bases/oauth.gatehouse.dev_authorizationservers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	def := func(parent, field string) string {
		p := spec.Properties[parent].Properties[field]
		if p.Default == nil {
			t.Fatalf("the CRD has no default for spec.%s.%s", parent, field)
		}
		var s string
		if err := yaml.Unmarshal(p.Default.Raw, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		parent, field string
		want          time.Duration
	}{
		{"tokens", "accessToken", v1.DefaultAccessTokenLifetime},
		{"tokens", "refreshToken", v1.DefaultRefreshTokenLifetime},
		{"tokens", "authorizationCode", v1.DefaultAuthorizationCodeLifetime},
		{"tokens", "deviceCode", v1.DefaultDeviceCodeLifetime},
		{"signing", "rotationInterval", v1.DefaultRotationInterval},
		{"signing", "prepublishPeriod", v1.DefaultPrepublishPeriod},
	} {
		got, err := time.ParseDuration(def(c.parent, c.field))
		if err != nil || got != c.want {
			t.Errorf("spec.%s.%s: CRD default %s (%v), constant %s", c.parent, c.field, got, err, c.want)
		}
	}
	if alg := def("signing", "algorithm"); alg != string(v1.DefaultSigningAlgorithm) {
		t.Errorf("spec.signing.algorithm: CRD default %s, constant %s", alg, v1.DefaultSigningAlgorithm)
	}
}
