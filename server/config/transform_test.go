package config

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// fullClient is an OAuthClient as the API server sends it after a
// kubectl apply and a few reconciles.
func fullClient(ns, name string) *oauthv1.OAuthClient {
	f := false
	now := metav1.Now()
	return &oauthv1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: "0b5c1d1e-7f4a-4b7e-9a57-1f1b7a8e9c2d",
			ResourceVersion: "123456", Generation: 3, CreationTimestamp: now, Finalizers: []string{"oauth.gatehouse.dev/finalizer"},
			Labels: map[string]string{"app.kubernetes.io/name": name, "team": ns},
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"oauth.gatehouse.dev/v1alpha1","kind":"OAuthClient","metadata":{"name":"` + name +
				`","namespace":"` + ns + `"},"spec":{"serverRef":{"name":"main","namespace":"auth"},"grantTypes":["authorization_code","refresh_token"],"scopes":["openid","orders:read"]}}`},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "oauth.gatehouse.dev/v1alpha1", Time: &now,
					FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{}},"f:spec":{"f:grantTypes":{},"f:scopes":{},"f:serverRef":{}}}`)},
				{Manager: "gatehouse-operator", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "oauth.gatehouse.dev/v1alpha1", Time: &now, Subresource: "status",
					FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:status":{"f:clientID":{},"f:conditions":{},"f:secretHashes":{},"f:secretName":{}}}`)},
			}},
		Spec: oauthv1.OAuthClientSpec{
			ServerRef:   oauthv1.ServerReference{Name: "main", Namespace: "auth"},
			DisplayName: "Orders " + name, ClientType: oauthv1.ClientConfidential,
			RedirectURIs: []oauthv1.RedirectURI{oauthv1.RedirectURI("https://" + name + ".example/callback")},
			GrantTypes: []oauthv1.GrantType{oauthv1.GrantAuthorizationCode, oauthv1.GrantRefreshToken,
				oauthv1.GrantTokenExchange},
			TokenExchange: &oauthv1.TokenExchange{SubjectTokens: []oauthv1.ExchangeableToken{
				{Type: oauthv1.ExchangeAccessToken, Audiences: []oauthv1.Audience{"https://orders.example"}}}},
			BackchannelLogout: &oauthv1.BackchannelLogout{URI: "https://" + name + ".example/backchannel-logout", SessionRequired: true},
			Scopes:            []oauthv1.ScopeName{"openid", "orders:read"},
			Audience:          []oauthv1.Audience{"https://orders.example"},
			RequirePKCE:       &f, SecretName: name + "-credentials", RequirePushedAuthorizationRequests: true,
			TokenLifetimes:     &oauthv1.ClientTokenLifetimes{AccessToken: &metav1.Duration{Duration: 3600e9}},
			AllowedCORSOrigins: []oauthv1.CORSOrigin{oauthv1.CORSOrigin("https://" + name + ".example")},
			LogoURI:            oauthv1.DisplayURI("https://" + name + ".example/logo.png"),
			PolicyURI:          "https://example.com/privacy", TOSURI: "https://example.com/terms",
			SecretKeyAliases: []oauthv1.SecretKeyAlias{{Name: "APP_CLIENT_SECRET", From: oauthv1.SecretKeyClientSecret}},
		},
		Status: oauthv1.OAuthClientStatus{ObservedGeneration: 3, ClientID: ns + "." + name, SecretName: name + "-credentials",
			Conditions: []metav1.Condition{
				{Type: oauthv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "the client is registered and its Secret is in place", ObservedGeneration: 3, LastTransitionTime: now},
				{Type: "SecretRotated", Status: metav1.ConditionFalse, Reason: "NotDue", Message: "the next rotation is due later", LastTransitionTime: now},
			},
			SecretHashes:     []oauthv1.SecretHash{{Hash: "sha256:6b3a55e0261b0304143f805a24924d0c1c44524821305f31d9277843b8a10f4e"}},
			LastRotationTime: &now,
		},
	}
}

// TestLeanClientCompilesTheSame: the informer's lean copy gives the same
// Client as the whole object, and keeps nothing the server does not read.
func TestLeanClientCompilesTheSame(t *testing.T) {
	server := &Snapshot{Scopes: map[string]*Scope{"orders:read": {Name: "orders:read", Audience: "https://orders.example", from: oauthv1.NamespacesFromAll}}}
	full := fullClient("team-a", "shop")
	obj, err := leanClient(full)
	if err != nil {
		t.Fatal(err)
	}
	lean := obj.(*oauthv1.OAuthClient)
	want := compileClient(full, server, map[string]map[oauthv1.GrantType]bool{})
	got := compileClient(lean, server, map[string]map[oauthv1.GrantType]bool{})
	if want == nil || want.TokenExchange == nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("lean compiles to %+v, want %+v", got, want)
	}
	if lean.ManagedFields != nil || lean.Annotations != nil || lean.Labels != nil || lean.Spec.SecretName != "" ||
		len(lean.Status.Conditions) != 1 || lean.Status.Conditions[0].Message != "" || lean.Status.LastRotationTime != nil {
		t.Errorf("lean copy keeps more than needed: %+v", lean)
	}
	// The uid stays: Events about the client (back-channel logout
	// failures) name it, and kubectl describe finds them by it.
	if lean.Namespace != full.Namespace || lean.Name != full.Name || lean.ResourceVersion != full.ResourceVersion || lean.UID != full.UID {
		t.Errorf("lean copy lost its identity: %s/%s@%s", lean.Namespace, lean.Name, lean.ResourceVersion)
	}
	// Not Ready: still not Ready when lean.
	full.Status.Conditions[0].Status = metav1.ConditionFalse
	obj, _ = leanClient(full)
	if c := compileClient(obj.(*oauthv1.OAuthClient), server, nil); c != nil {
		t.Errorf("a client not Ready compiles to %+v", c)
	}
	if other, _ := leanClient("not a client"); other != "not a client" {
		t.Errorf("other objects must pass through, got %v", other)
	}
}
