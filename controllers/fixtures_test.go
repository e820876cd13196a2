package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

const testIssuer = "https://127.0.0.1:8443/auth"

func create(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := testenv.Get(t).Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func get(t testing.TB, o client.Object) {
	t.Helper()
	if err := testenv.Get(t).Client.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
		t.Fatalf("getting %T %s: %v", o, o.GetName(), err)
	}
}

func server(ns, name string) *oauthv1.AuthorizationServer {
	return &oauthv1.AuthorizationServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       oauthv1.AuthorizationServerSpec{Issuer: testIssuer},
	}
}

func scope(ns, name, server, value string) *oauthv1.Scope {
	return &oauthv1.Scope{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: oauthv1.ScopeSpec{
			ServerRef:   oauthv1.LocalObjectReference{Name: server},
			Name:        oauthv1.ScopeName(value),
			Description: "Test scope " + value,
		},
	}
}

func oauthClient(ns, name, serverNS, server string, scopes ...string) *oauthv1.OAuthClient {
	oc := &oauthv1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: oauthv1.OAuthClientSpec{
			ServerRef:    oauthv1.ServerReference{Name: server, Namespace: serverNS},
			RedirectURIs: []oauthv1.RedirectURI{"https://app.test/callback"},
		},
	}
	for _, s := range scopes {
		oc.Spec.Scopes = append(oc.Spec.Scopes, oauthv1.ScopeName(s))
	}
	return oc
}

func appSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	get(t, sec)
	return sec
}

func objKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
