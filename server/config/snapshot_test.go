package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/users"
)

func clientKey(o client.Object) client.ObjectKey { return client.ObjectKeyFromObject(o) }

func ready(status metav1.ConditionStatus) []metav1.Condition {
	return []metav1.Condition{{Type: oauthv1.ConditionReady, Status: status}}
}

func TestBuildFiltersAndDefaults(t *testing.T) {
	f := false
	as := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example.test"}}
	oc := func(ns, name, serverNS string, cond metav1.ConditionStatus, mut func(*oauthv1.OAuthClient)) oauthv1.OAuthClient {
		c := oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:   oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "main", Namespace: serverNS}},
			Status: oauthv1.OAuthClientStatus{ClientID: ns + "." + name, Conditions: ready(cond)}}
		if mut != nil {
			mut(&c)
		}
		return c
	}
	notAfter := metav1.NewTime(time.Unix(100, 0))
	in := Inputs{
		Server: as,
		Scopes: []oauthv1.Scope{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "a", CreationTimestamp: metav1.NewTime(time.Unix(1, 0))},
				Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "main"}, Name: "read", Description: "first", RequiresConsent: &f}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "b", CreationTimestamp: metav1.NewTime(time.Unix(2, 0))},
				Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "main"}, Name: "read", Description: "conflicting"}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "c"},
				Spec:   oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "main"}, Name: "broken"},
				Status: oauthv1.ScopeStatus{Conditions: ready(metav1.ConditionFalse)}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "d"},
				Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "other"}, Name: "theirs"}},
		},
		Clients: []oauthv1.OAuthClient{
			oc("auth", "same-ns", "", metav1.ConditionTrue, nil),
			oc("team", "explicit", "auth", metav1.ConditionTrue, func(c *oauthv1.OAuthClient) {
				c.Spec.ClientType = oauthv1.ClientPublic
				c.Spec.RequirePKCE = &f
				c.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantAuthorizationCode, oauthv1.GrantClientCredentials}
				c.Status.SecretHashes = []oauthv1.SecretHash{{Hash: "sha256:x", NotAfter: &notAfter}}
			}),
			oc("team", "wrong-ns-default", "", metav1.ConditionTrue, nil),
			oc("team", "not-ready", "auth", metav1.ConditionFalse, nil),
			oc("team", "no-id", "auth", metav1.ConditionTrue, func(c *oauthv1.OAuthClient) { c.Status.ClientID = "" }),
			oc("x", "dup", "auth", metav1.ConditionTrue, func(c *oauthv1.OAuthClient) { c.Status.ClientID = "same" }),
			oc("y", "dup", "auth", metav1.ConditionTrue, func(c *oauthv1.OAuthClient) { c.Status.ClientID = "same" }),
		},
	}
	var b Builder
	s, err := b.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if s.AccessTokenTTL != DefaultAccessTokenTTL || s.CodeTTL != DefaultCodeTTL || s.StorageType != oauthv1.StorageMemory {
		t.Errorf("defaults: %v %v %v", s.AccessTokenTTL, s.CodeTTL, s.StorageType)
	}
	// The five built-in OpenID Connect scopes, and one Scope object.
	if len(s.Scopes) != 6 || s.Scopes["read"].Description != "first" || s.Scopes["read"].RequiresConsent || s.Scopes["read"].Builtin {
		t.Errorf("scopes = %v", s.Scopes)
	}
	for _, name := range []string{"openid", "profile", "email", "groups", "offline_access"} {
		if sc := s.Scopes[name]; sc == nil || !sc.Builtin || !sc.RequiresConsent || sc.Description == "" || !slices.Contains(s.ScopeNames, name) {
			t.Errorf("built-in scope %s = %+v", name, sc)
		}
	}
	if s.Clients.Len() != 2 || s.Clients.Get("auth.same-ns") == nil || s.Clients.Get("team.explicit") == nil {
		t.Fatalf("clients = %v", s.Clients)
	}
	c := s.Clients.Get("auth.same-ns")
	if c.AuthMethod != oauthv1.AuthClientSecretBasic || !c.RequirePKCE || !c.GrantTypes[oauthv1.GrantAuthorizationCode] || c.DisplayName != "same-ns" {
		t.Errorf("confidential defaults: %+v", c)
	}
	// No method pinned: the secret may come either way.
	if !c.AcceptsAuthMethod(oauthv1.AuthClientSecretBasic) || !c.AcceptsAuthMethod(oauthv1.AuthClientSecretPost) || c.AcceptsAuthMethod(oauthv1.AuthNone) {
		t.Errorf("confidential client without a pinned method accepts %v, want client_secret_basic and client_secret_post", c.AuthMethods)
	}
	p := s.Clients.Get("team.explicit")
	if !slices.Equal(p.AuthMethods, []oauthv1.TokenEndpointAuthMethod{oauthv1.AuthNone}) {
		t.Errorf("public client accepts %v, want none alone", p.AuthMethods)
	}
	if p.AuthMethod != oauthv1.AuthNone || !p.RequirePKCE || p.GrantTypes[oauthv1.GrantClientCredentials] || !p.SecretHashes[0].NotAfter.Equal(notAfter.Time) {
		t.Errorf("public client: %+v", p)
	}
	if len(s.Problems) != 2 || !strings.Contains(strings.Join(s.Problems, "\n"), `client_id "same"`) {
		t.Errorf("problems = %q", s.Problems)
	}
	if s.Keys != nil {
		t.Error("keys without a Secret")
	}
}

func TestBuildKeepsParsedSecretsUntilTheyChange(t *testing.T) {
	as := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example.test"}}
	data, _ := keysSecretData(t, time.Now())
	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main-signing-keys", ResourceVersion: "1"}, Data: data}
	var b Builder
	s1, _ := b.Build(Inputs{Server: as, KeysSecret: keys})
	s2, _ := b.Build(Inputs{Server: as, KeysSecret: keys})
	if s1.Keys == nil || s1.Keys != s2.Keys {
		t.Fatal("an unchanged key Secret must not be parsed again")
	}
	bad := keys.DeepCopy()
	bad.ResourceVersion = "2"
	bad.Data = map[string][]byte{"keys.json": []byte("{")}
	s3, _ := b.Build(Inputs{Server: as, KeysSecret: bad})
	if s3.Keys != s1.Keys || len(s3.Problems) != 1 || !strings.Contains(s3.Problems[0], "signing-key Secret") {
		t.Fatalf("broken key Secret: keys %v problems %q; want the last good set and a problem", s3.Keys, s3.Problems)
	}
	var fresh Builder
	if s4, _ := fresh.Build(Inputs{Server: as, KeysSecret: bad}); s4.Keys != nil {
		t.Fatal("a broken key Secret with no earlier good one must leave no keys")
	}
	if _, err := b.Build(Inputs{}); err == nil {
		t.Error("no AuthorizationServer must be an error")
	}
}

// Subject is the identity sources' one answer on whether a grant's person
// still exists: an unreadable users Secret removes nobody.
func TestSubjectStatus(t *testing.T) {
	as := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example.test"}}
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), users.MinBcryptCost)
	good := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "people", ResourceVersion: "1"},
		Data: map[string][]byte{users.SecretDataKey: []byte("users:\n- username: alice\n  subject: sub-alice\n  passwordHash: " + string(hash) + "\n")}}
	bad := good.DeepCopy()
	bad.ResourceVersion = "2"
	bad.Data[users.SecretDataKey] = []byte("users: {")
	withUsers := as.DeepCopy()
	withUsers.Spec.Users = &oauthv1.UsersSpec{SecretRef: oauthv1.LocalObjectReference{Name: "people"}}

	var b Builder
	for _, tc := range []struct {
		name string
		in   Inputs
		want map[string]SubjectStatus
	}{
		{"no users source", Inputs{Server: as}, map[string]SubjectStatus{"sub-alice": SubjectRemoved}},
		{"users Secret", Inputs{Server: withUsers, UsersSecret: good},
			map[string]SubjectStatus{"sub-alice": SubjectActive, "alice": SubjectRemoved, "sub-bob": SubjectRemoved}},
		{"users Secret missing", Inputs{Server: withUsers}, map[string]SubjectStatus{"sub-alice": SubjectUndetermined}},
		{"users Secret broken", Inputs{Server: withUsers, UsersSecret: bad}, map[string]SubjectStatus{"sub-alice": SubjectUndetermined}},
	} {
		s, err := b.Build(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		for sub, want := range tc.want {
			if got := s.Subject(sub); got != want {
				t.Errorf("%s: Subject(%q) = %v, want %v", tc.name, sub, got, want)
			}
		}
	}
}

// TestBuiltinScopesCannotBeRedefined: a Scope object named like a
// built-in OpenID Connect scope is ignored, with a problem saying so, and
// a client in another namespace may list the built-in scopes.
func TestBuiltinScopesCannotBeRedefined(t *testing.T) {
	as := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example.test"}}
	var b Builder
	s, err := b.Build(Inputs{
		Server: as,
		Scopes: []oauthv1.Scope{{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "sneaky"},
			Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "main"}, Name: "email",
				Description: "not the real one", Audience: "https://evil.example"}}},
		Clients: []oauthv1.OAuthClient{{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "grafana"},
			Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "main", Namespace: "auth"},
				Scopes:                 []oauthv1.ScopeName{"openid", "email", "groups"},
				PostLogoutRedirectURIs: []oauthv1.RedirectURI{"https://grafana.example.test/logged-out"}},
			Status: oauthv1.OAuthClientStatus{ClientID: "team.grafana", Conditions: ready(metav1.ConditionTrue)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sc := s.Scopes["email"]; !sc.Builtin || sc.Audience != "" || sc.Description == "not the real one" {
		t.Errorf("email = %+v, want the built-in scope", sc)
	}
	if len(s.Problems) != 2 || !strings.Contains(strings.Join(s.Problems, "\n"), `Scope auth/sneaky: "email" is a built-in OpenID Connect scope`) {
		t.Errorf("problems = %q", s.Problems)
	}
	if c := s.Clients.Get("team.grafana"); c == nil || !slices.Equal(c.AllowedScopes, []string{"openid", "email", "groups"}) ||
		!c.HasPostLogoutRedirectURI("https://grafana.example.test/logged-out") || c.HasPostLogoutRedirectURI("https://grafana.example.test/logged-out/x") {
		t.Errorf("client = %+v", c)
	}
}

// spec.branding reaches the pages as the AuthorizationServer says it.
func TestBuildCarriesBranding(t *testing.T) {
	brand := oauthv1.Branding{DisplayName: "Example Corp", LogoURL: "https://cdn.example/logo.svg", PrimaryColor: "#0b5fff", AccentColor: "#ffb000", DefaultLanguage: "de"}
	as := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example.test", Branding: brand}}
	var b Builder
	s, err := b.Build(Inputs{Server: as})
	if err != nil {
		t.Fatal(err)
	}
	if s.Branding != brand {
		t.Errorf("branding %+v, want %+v", s.Branding, brand)
	}
}
