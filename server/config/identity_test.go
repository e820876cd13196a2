package config

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/server/identity"
)

func identityServer() *oauthv1.AuthorizationServer {
	return &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example.test", IdentityProviders: []oauthv1.IdentityProvider{
			{Name: "corp", DisplayName: "Corp SSO", OIDC: &oauthv1.OIDCIdentityProvider{
				Issuer: "https://login.example.test", ClientID: "gatehouse",
				ClientSecretRef: oauthv1.SecretKeyReference{Name: "corp-oidc", Key: "client-secret"}}},
			{Name: "ad", LDAP: &oauthv1.LDAPIdentityProvider{
				Host: "ldap.example.test:636", BindDN: "cn=svc", BindPasswordRef: oauthv1.SecretKeyReference{Name: "ad-bind", Key: "password"},
				CASecretRef: &oauthv1.SecretKeyReference{Name: "ad-bind", Key: "ca.crt"},
				UserSearch:  oauthv1.LDAPUserSearch{BaseDN: "ou=people"}}},
		}}}
}

func secret(name, version string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: name, ResourceVersion: version}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// Providers whose Secrets are missing or wrong are listed (their people's
// grants go on) but cannot log anyone in, and the problem names the Secret
// and key, never a value. Removing a provider removes its people.
func TestBuildIdentityProviders(t *testing.T) {
	as := identityServer()
	if got := strings.Join(IdentitySecretNames(as), ","); got != "corp-oidc,ad-bind,ad-bind" {
		t.Fatalf("IdentitySecretNames = %s", got)
	}
	var b Builder
	snap, err := b.Build(Inputs{Server: as, IdentitySecrets: map[string]*corev1.Secret{
		"ad-bind": secret("ad-bind", "1", map[string]string{"password": "bind-pw-value", "ca.crt": "not a certificate"}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(snap.Problems, "\n")
	for _, want := range []string{"identity provider corp: the Secret corp-oidc does not exist", "identity provider ad: CA: Secret ad-bind key ca.crt holds no PEM certificate"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems %q lack %q", problems, want)
		}
	}
	if strings.Contains(problems, "bind-pw-value") {
		t.Fatal("a problem carries a Secret's value")
	}
	set := snap.IdentitySet()
	if len(set.Redirects()) != 1 || !set.HasPasswordForm() {
		t.Fatalf("the login page would offer %d buttons, form %v", len(set.Redirects()), set.HasPasswordForm())
	}
	if _, err := set.Authenticate(t.Context(), "alice", "pw"); err == nil || !strings.Contains(err.Error(), "identity provider unavailable") {
		t.Fatalf("login through a broken directory: %v", err)
	}
	sub := identity.UpstreamSubject("corp", "x")
	if snap.Subject(sub) != SubjectActive || snap.Subject(identity.UpstreamSubject("gone", "x")) != SubjectRemoved {
		t.Fatal("a configured provider's people must stay, an unknown provider's go")
	}

	// Fixed Secrets: the working source replaces the broken one; an
	// unchanged provider keeps its Source (and its discovery cache).
	secrets := map[string]*corev1.Secret{"corp-oidc": secret("corp-oidc", "2", map[string]string{"client-secret": "s"})}
	snap, _ = b.Build(Inputs{Server: as, IdentitySecrets: secrets})
	first, _ := snap.IdentitySet().Redirect("corp")
	if _, ok := first.(*identity.OIDCSource); !ok {
		t.Fatalf("corp is %T after its Secret appeared", first)
	}
	snap, _ = b.Build(Inputs{Server: as, IdentitySecrets: secrets})
	if again, _ := snap.IdentitySet().Redirect("corp"); again != first {
		t.Fatal("an unchanged provider got a new Source")
	}

	as.Spec.IdentityProviders = as.Spec.IdentityProviders[1:]
	snap, _ = b.Build(Inputs{Server: as, IdentitySecrets: secrets})
	if snap.Subject(sub) != SubjectRemoved {
		t.Fatal("the people of a removed provider must be removed")
	}
}

// The token server watches the providers' Secrets by name: a provider
// whose Secret appears after the start becomes usable without a restart,
// and a provider removed from the spec takes its people with it.
func TestKubeSourceWatchesIdentitySecrets(t *testing.T) {
	cp := testenv.Get(t)
	ctx := t.Context()
	const ns = "auth-identity"
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	keyData, _ := keysSecretData(t, time.Now())
	as := identityServer()
	as.Namespace, as.Spec.Issuer = ns, "http://127.0.0.1:8080"
	as.Spec.IdentityProviders = as.Spec.IdentityProviders[:1]
	for _, o := range []client.Object{as, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: keyset.SecretName("main")}, Data: keyData}} {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	src, err := NewKube(cp.Config, cp.Scheme, ns, "main", slog.New(slog.NewTextHandler(&testenv.LogBuffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runSource(ctx, t, src)
	waitFor(t, time.Now(), 30*time.Second, "initial sync", func() bool { return src.Ready() == nil })
	corp := func() identity.RedirectSource { r, _ := src.Current().IdentitySet().Redirect("corp"); return r }
	if _, broken := corp().(*identity.BrokenRedirect); !broken {
		t.Fatalf("corp without its Secret is %T", corp())
	}

	start := time.Now()
	sec := secret("corp-oidc", "", map[string]string{"client-secret": "s"})
	sec.Namespace = ns
	if err := cp.Client.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, start, 10*time.Second, "provider Secret picked up", func() bool { _, ok := corp().(*identity.OIDCSource); return ok })

	sub := identity.UpstreamSubject("corp", "x")
	if src.Current().Subject(sub) != SubjectActive {
		t.Fatal("corp's person is not active")
	}
	start = time.Now()
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(as), as); err != nil {
		t.Fatal(err)
	}
	as.Spec.IdentityProviders = nil
	if err := cp.Client.Update(ctx, as); err != nil {
		t.Fatal(err)
	}
	waitFor(t, start, 10*time.Second, "provider removed", func() bool { return src.Current().Subject(sub) == SubjectRemoved })
}

// caSecretRef: an OpenID Provider behind a private CA is trusted through
// the PEM in the Secret, and only through it.
func TestOIDCProviderCA(t *testing.T) {
	var op *httptest.Server
	op = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": op.URL, "authorization_endpoint": op.URL + "/authorize",
			"token_endpoint": op.URL + "/token", "jwks_uri": op.URL + "/jwks"})
	}))
	defer op.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: op.Certificate().Raw})
	p := &oauthv1.IdentityProvider{Name: "corp", OIDC: &oauthv1.OIDCIdentityProvider{
		Issuer: op.URL, ClientID: "c", ClientSecretRef: oauthv1.SecretKeyReference{Name: "sso", Key: "secret"},
		CASecretRef: &oauthv1.SecretKeyReference{Name: "sso", Key: "ca.crt"}}}
	start := func(secrets map[string]*corev1.Secret) error {
		src, err := NewIdentitySource(p, secrets)
		if err != nil {
			return err
		}
		_, _, err = src.(identity.RedirectSource).Start(t.Context(), "https://auth.example.test/login/callback")
		return err
	}
	if err := start(map[string]*corev1.Secret{"sso": secret("sso", "1", map[string]string{"secret": "s", "ca.crt": string(ca)})}); err != nil {
		t.Fatalf("with the provider's CA: %v", err)
	}
	p.OIDC.CASecretRef = nil
	if err := start(map[string]*corev1.Secret{"sso": secret("sso", "1", map[string]string{"secret": "s"})}); !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("without it, the system's CAs must not trust the provider: %v", err)
	}
}

// The snapshot carries each provider's re-check timing (defaults filled
// in, 0s meaning off) and the providers the operator found unreachable,
// from their conditions; a provider that is fine, or whose problem is
// another, is not marked unreachable.
func TestBuildRechecksAndUnreachable(t *testing.T) {
	as := identityServer()
	off := metav1.Duration{}
	as.Spec.IdentityProviders[1].Recheck = oauthv1.UpstreamRecheck{Interval: &off}
	as.Status.Conditions = []metav1.Condition{
		{Type: oauthv1.ConditionIdentityProviderPrefix + "corp", Status: metav1.ConditionFalse, Reason: oauthv1.ReasonIdentityProviderUnreachable,
			Message: "discovery at https://login.example.test: connection refused"},
		{Type: oauthv1.ConditionIdentityProviderPrefix + "ad", Status: metav1.ConditionFalse, Reason: oauthv1.ReasonIdentityProviderCredentialsRejected},
	}
	var b Builder
	snap, err := b.Build(Inputs{Server: as})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := snap.RecheckOf("corp"); !ok || r.Interval != 10*time.Minute || r.Grace != time.Hour {
		t.Errorf("corp's re-check: %+v, %v", r, ok)
	}
	if r, ok := snap.RecheckOf("ad"); ok {
		t.Errorf("ad's re-checks are off, got %+v", r)
	}
	if len(snap.Unreachable) != 1 || !strings.Contains(snap.Unreachable["corp"], "connection refused") {
		t.Errorf("unreachable = %v", snap.Unreachable)
	}
	as.Status.Conditions[0].Status, as.Status.Conditions[0].Reason = metav1.ConditionTrue, oauthv1.ReasonIdentityProviderReady
	if snap, _ = b.Build(Inputs{Server: as}); len(snap.Unreachable) != 0 {
		t.Errorf("a provider found reachable again is still marked: %v", snap.Unreachable)
	}
}
