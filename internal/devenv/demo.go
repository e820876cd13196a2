package devenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/yaml"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/users"
)

// What `gatehouse dev` creates.
const (
	Namespace    = "gatehouse-dev"
	Server       = "demo"
	UsersSecret  = "demo-users"
	Client       = "demo-app"
	ClientSecret = "demo-app-oauth"
	Username     = "demo"
	// Group is the demo user's group; the dev control plane lets it read
	// everything, so that kubectl as the demo user shows something.
	Group = "demo-team"
	// RedirectURI is a loopback redirect URI (RFC 8252 §7.3). Nothing
	// listens there: the browser shows the code in its address bar.
	RedirectURI = "http://127.0.0.1:5555/callback"
	// ScopeRead and ScopeWrite are offered by the demo server and allowed
	// to the demo client.
	ScopeRead  oauthv1.ScopeName = "orders:read"
	ScopeWrite oauthv1.ScopeName = "orders:write"
	Audience                     = "https://orders.example.com" // examples/orders-api's default
	// KubectlClient is the public client `gatehouse login` uses to log in
	// to the dev control plane; any loopback port matches its redirect URI.
	KubectlClient      = "kubectl"
	KubectlRedirectURI = "http://127.0.0.1/callback"
	// WorkloadClient is a client with no secret: it authenticates with the
	// tokens of the ServiceAccount of the same name (issue 20), which the
	// dev control plane issues (kubectl create token).
	WorkloadClient = "demo-workload"
)

// KubectlScopes are what `gatehouse login` asks for: an ID token with the
// username and groups, and a refresh token to renew it.
var KubectlScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeGroups, oidc.ScopeOfflineAccess}

// ApplyDemoData creates or updates the demo objects, so a second run (or a
// different --port) converges on the same state.
func ApplyDemoData(ctx context.Context, c client.Client, issuer, password string) error {
	if err := createNamespace(ctx, c); err != nil {
		return err
	}
	usersYAML, err := demoUsers(password)
	if err != nil {
		return err
	}
	for _, s := range demoObjects(issuer, password, usersYAML) {
		if _, err := controllerutil.CreateOrUpdate(ctx, c, s.obj, func() error { s.mutate(); return nil }); err != nil {
			return fmt.Errorf("applying %T %s: %w", s.obj, s.obj.GetName(), err)
		}
	}
	return nil
}

// createNamespace retries briefly: a new API server creates its
// namespaces controller's defaults a moment after it is healthy.
func createNamespace(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	var err error
	for range 50 {
		if err = c.Create(ctx, ns); err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("creating namespace %s: %w", Namespace, err)
}

func demoUsers(password string) ([]byte, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), users.MinBcryptCost)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(map[string]any{"users": []users.User{{
		Username: Username, PasswordHash: string(hash), Subject: Username,
		Email: "demo@gatehouse.invalid", EmailVerified: true, Name: "Demo User", Groups: []string{Group},
	}}})
}

type demoObject struct {
	obj    client.Object
	mutate func()
}

func demoObjects(issuer, password string, usersYAML []byte) []demoObject {
	usersSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: UsersSecret}}
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: Server}}
	wantRole, wantBinding := DemoViewRole(), DemoViewBinding()
	workloadSA := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: WorkloadClient}}
	role := &rbacv1.ClusterRole{ObjectMeta: wantRole.ObjectMeta}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: wantBinding.ObjectMeta}
	return []demoObject{
		{role, func() { role.Rules = wantRole.Rules }},
		{binding, func() { binding.RoleRef, binding.Subjects = wantBinding.RoleRef, wantBinding.Subjects }},
		{usersSecret, func() {
			// Keep the hash when the password is unchanged: a new salt
			// would make the token server reload the users for nothing.
			if old, ok := usersSecret.Data[users.SecretDataKey]; ok && sameDemoUser(old, usersYAML, password) {
				return
			}
			usersSecret.Data = map[string][]byte{users.SecretDataKey: usersYAML}
		}},
		{srv, func() {
			srv.Spec.Issuer = issuer
			srv.Spec.Users = &oauthv1.UsersSpec{SecretRef: oauthv1.LocalObjectReference{Name: UsersSecret}}
			srv.Spec.Storage.Type = oauthv1.StorageMemory
			// Clients from any namespace, so `kubectl apply -f my-client.yaml`
			// works wherever it lands.
			srv.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromAll
		}},
		demoScope("orders-read", ScopeRead, "See your orders and their delivery status"),
		demoScope("orders-write", ScopeWrite, "Place and cancel orders on your behalf"),
		demoClient(Client, func(spec *oauthv1.OAuthClientSpec) {
			spec.DisplayName = "Gatehouse demo app"
			spec.ClientType = oauthv1.ClientConfidential
			spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantAuthorizationCode, oauthv1.GrantRefreshToken, oauthv1.GrantClientCredentials}
			spec.RedirectURIs = []oauthv1.RedirectURI{RedirectURI}
			spec.Scopes = []oauthv1.ScopeName{ScopeRead, ScopeWrite}
			spec.SecretName = ClientSecret
		}),
		{workloadSA, func() {}},
		demoClient(WorkloadClient, func(spec *oauthv1.OAuthClientSpec) {
			spec.DisplayName = "Gatehouse demo workload (no secret)"
			spec.ClientType = oauthv1.ClientConfidential
			spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantClientCredentials}
			spec.RedirectURIs = nil
			spec.Scopes = []oauthv1.ScopeName{ScopeRead}
			spec.Authentication = &oauthv1.ClientAuthentication{ServiceAccount: &oauthv1.ServiceAccountAuthentication{Name: WorkloadClient}}
		}),
		demoClient(KubectlClient, func(spec *oauthv1.OAuthClientSpec) {
			spec.DisplayName = "kubectl (gatehouse login)"
			spec.ClientType = oauthv1.ClientPublic
			spec.TokenEndpointAuthMethod = oauthv1.AuthNone
			// The device grant serves `gatehouse login --device` on a host
			// with no browser.
			spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantAuthorizationCode, oauthv1.GrantRefreshToken, oauthv1.GrantDeviceCode}
			spec.RedirectURIs = []oauthv1.RedirectURI{KubectlRedirectURI}
			spec.Scopes = nil
			for _, s := range KubectlScopes {
				spec.Scopes = append(spec.Scopes, oauthv1.ScopeName(s))
			}
		}),
	}
}

// demoScopesForAll lets clients from every namespace request the demo
// scopes, as the demo server admits them, so that a client applied anywhere
// works.
var demoScopesForAll = oauthv1.AllowedClients{Namespaces: oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromAll}}

func demoScope(name string, scope oauthv1.ScopeName, description string) demoObject {
	sc := &oauthv1.Scope{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name}}
	return demoObject{sc, func() {
		sc.Spec = oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: Server}, Name: scope,
			Description: description, Audience: Audience, AllowedClients: demoScopesForAll}
	}}
}

func demoClient(name string, set func(*oauthv1.OAuthClientSpec)) demoObject {
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name}}
	return demoObject{oc, func() {
		oc.Spec.ServerRef = oauthv1.ServerReference{Name: Server}
		set(&oc.Spec)
	}}
}

// sameDemoUser says whether the stored users.yaml holds the demo user as
// wanted (same claims) with this password.
func sameDemoUser(stored, wanted []byte, password string) bool {
	have, err := users.Parse(stored)
	if err != nil {
		return false
	}
	want, err := users.Parse(wanted)
	if err != nil {
		return false
	}
	u, err := have.Authenticate(Username, password)
	w, _ := want.Lookup(Username)
	return err == nil && u.Email == w.Email && u.Name == w.Name && fmt.Sprint(u.Groups) == fmt.Sprint(w.Groups) && u.EmailVerified == w.EmailVerified
}

// DemoPassword returns the demo user's password, generated on the first
// run and kept in path for the next.
func DemoPassword(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) >= 16 {
		return string(bytes.TrimSpace(b)), nil
	}
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pw := base64.RawURLEncoding.EncodeToString(b)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}
