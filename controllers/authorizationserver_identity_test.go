package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testldap"
)

// Each identity provider reports its health: a real slapd that accepts
// the bind (TLS verified with the test CA) is Ready, an OpenID Provider
// that does not answer is Unreachable and makes Ready name it, with an
// Event; a wrong bind password is CredentialsRejected; a removed
// provider's condition goes. No Secret value shows anywhere.
func TestIdentityProviderConditions(t *testing.T) {
	ldap := testldap.Start(t, testldap.SeedLDIF)
	ns := newNamespace(t, nil)
	op := startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "corp-ldap"},
			Data: map[string][]byte{"password": []byte(testldap.ServicePassword), "ca.crt": ldap.CAPEM}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sso"}, Data: map[string][]byte{"client-secret": []byte("sso-client-secret-value")}})
	srv := server(ns, "main")
	srv.Spec.Issuer = fmt.Sprintf("https://%s.example.test", ns)
	srv.Spec.IdentityProviders = []oauthv1.IdentityProvider{
		{Name: "corp", LDAP: &oauthv1.LDAPIdentityProvider{
			Host: ldap.TLSAddr, Security: oauthv1.LDAPSecurityTLS, BindDN: testldap.ServiceDN,
			BindPasswordRef: oauthv1.SecretKeyReference{Name: "corp-ldap", Key: "password"},
			CASecretRef:     &oauthv1.SecretKeyReference{Name: "corp-ldap", Key: "ca.crt"},
			UserSearch:      oauthv1.LDAPUserSearch{BaseDN: testldap.PeopleDN}}},
		{Name: "sso", OIDC: &oauthv1.OIDCIdentityProvider{
			Issuer: "http://127.0.0.1:1", ClientID: "gatehouse",
			ClientSecretRef: oauthv1.SecretKeyReference{Name: "sso", Key: "client-secret"}}},
	}
	create(t, srv)
	waitCondition(t, srv, oauthv1.ConditionIdentityProviderPrefix+"corp", metav1.ConditionTrue, oauthv1.ReasonIdentityProviderReady)
	waitCondition(t, srv, oauthv1.ConditionIdentityProviderPrefix+"sso", metav1.ConditionFalse, oauthv1.ReasonIdentityProviderUnreachable)
	waitEvent(t, ns, "main", oauthv1.ReasonIdentityProviderUnreachable)

	// The token server may read the providers' Secrets, by name.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controllers.ServerObjectName(srv)}}
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := c.Get(ctx, objKey(ns, role.Name), role); err != nil {
			return err
		}
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "secrets") && slices.Contains(r.ResourceNames, "corp-ldap") && slices.Contains(r.ResourceNames, "sso") {
				return nil
			}
		}
		return fmt.Errorf("the server's Role does not grant the providers' Secrets: %+v", role.Rules)
	})

	// With everything else up, Ready names the broken provider.
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controllers.ServerObjectName(srv)}}
	testenv.Eventually(t, 20*time.Second, func() error { return c.Get(ctx, objKey(ns, dep.Name), dep) })
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
	if err := c.Status().Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonIdentityProviderUnreachable)
	if msg := readyCondition(srv).Message; !strings.HasPrefix(msg, "identity provider sso: ") {
		t.Fatalf("Ready does not name the provider: %q", msg)
	}

	// The bind password changes to a wrong one; the next reconcile checks
	// again because the Secret changed. The OpenID Provider goes away.
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "corp-ldap"}}
	get(t, sec)
	sec.Data["password"] = []byte("wrong-bind-password-value")
	if err := c.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	get(t, srv)
	srv.Spec.IdentityProviders = srv.Spec.IdentityProviders[:1]
	if err := c.Update(ctx, srv); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, srv, oauthv1.ConditionIdentityProviderPrefix+"corp", metav1.ConditionFalse, oauthv1.ReasonIdentityProviderCredentialsRejected)
	if meta.FindStatusCondition(srv.Status.Conditions, oauthv1.ConditionIdentityProviderPrefix+"sso") != nil {
		t.Fatal("the removed provider still has a condition")
	}
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonIdentityProviderCredentialsRejected)
	waitEvent(t, ns, "main", oauthv1.ReasonIdentityProviderCredentialsRejected)

	for _, secret := range []string{testldap.ServicePassword, "wrong-bind-password-value", "sso-client-secret-value"} {
		if strings.Contains(op.logs.String(), secret) {
			t.Errorf("the operator's log carries a Secret value")
		}
		for _, e := range eventsFor(t, ns, "main") {
			if strings.Contains(e.Note, secret) {
				t.Errorf("an Event carries a Secret value: %s", e.Note)
			}
		}
		for _, cond := range srv.Status.Conditions {
			if strings.Contains(cond.Message, secret) {
				t.Errorf("condition %s carries a Secret value", cond.Type)
			}
		}
	}
}
