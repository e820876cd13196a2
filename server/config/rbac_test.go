package config

import (
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// TestKubeSourceNeedsOnlyReadAccessByName runs the source as a service
// account holding exactly the RBAC the operator grants the token server
// (Secrets by resourceNames only, read-only everything) and shows that it
// syncs and serves, while that account cannot read any other Secret.
func TestKubeSourceNeedsOnlyReadAccessByName(t *testing.T) {
	cp := testenv.Get(t)
	ctx := t.Context()
	const ns, sa = "rbac-auth", "token-server"
	mustCreate := func(objs ...client.Object) {
		for _, o := range objs {
			if err := cp.Client.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	read := []string{"get", "list", "watch"}
	keyData, kid := keysSecretData(t, time.Now())
	mustCreate(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"},
			Spec: oauthv1.AuthorizationServerSpec{Issuer: "http://127.0.0.1:8080",
				Users: &oauthv1.UsersSpec{SecretRef: oauthv1.LocalObjectReference{Name: "people"}}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: keyset.SecretName("auth")}, Data: keyData},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"}, Data: map[string][]byte{"x": []byte("y")}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{oauthv1.GroupVersion.Group}, Resources: []string{"authorizationservers", "scopes"}, Verbs: read},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{keyset.SecretName("auth"), "people"}, Verbs: read},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "rbac-test-" + sa}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{oauthv1.GroupVersion.Group}, Resources: []string{"oauthclients"}, Verbs: read},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rbac-test-" + sa},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "rbac-test-" + sa},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}},
	)
	restricted := rest.CopyConfig(cp.Config)
	restricted.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}

	src, err := NewKube(restricted, cp.Scheme, ns, "auth", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runSource(ctx, t, src)
	waitFor(t, time.Now(), 30*time.Second, "sync with restricted RBAC", func() bool { return src.Ready() == nil })
	// The freshness check reads only what the server may read.
	waitFor(t, time.Now(), 10*time.Second, "freshness confirmed with restricted RBAC", func() bool { return !src.VerifiedAt().IsZero() })
	if k, _ := src.Current().SigningKey(time.Now()); k.ID != kid {
		t.Fatalf("signing kid %s, want %s", k.ID, kid)
	}

	c, err := client.New(restricted, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "unrelated"}, &corev1.Secret{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("the server's account read another Secret: %v", err)
	}
	if err := c.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)); !apierrors.IsForbidden(err) {
		t.Fatalf("the server's account listed Secrets: %v", err)
	}
}
