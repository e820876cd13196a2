package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// A server that admits every namespace does not let every namespace mint
// tokens for every API: each Scope says which namespaces may request it.
func TestScopeAllowedClients(t *testing.T) {
	serverNS := newNamespace(t, nil)
	appNS := newNamespace(t, map[string]string{"team": "shop"})
	startOperator(t, newFakeClock(), serverNS, appNS)
	c := testenv.Get(t).Client
	ctx := context.Background()

	srv := server(serverNS, "shared")
	srv.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromAll
	open := scope(serverNS, "profile", "shared", "profile:read")
	open.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromAll
	payments := scope(serverNS, "payments", "shared", "payments:charge") // default: Same
	create(t, srv, open, payments)

	local := oauthClient(serverNS, "payments-batch", "", "shared", "payments:charge")
	create(t, local)
	waitCondition(t, local, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")

	oc := oauthClient(appNS, "shop", serverNS, "shared", "profile:read", "payments:charge")
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "ScopeNotAllowed")
	msg := readyCondition(oc).Message
	if !strings.Contains(msg, `"payments:charge"`) || strings.Contains(msg, `"profile:read"`) || !strings.Contains(msg, appNS) {
		t.Errorf("message %q should name the namespace and payments:charge, and only that scope", msg)
	}
	if err := c.Get(ctx, objKey(appNS, "shop-oauth-client"), &corev1.Secret{}); err == nil {
		t.Error("a client refused a scope got credentials")
	}

	// The Scope's owner admits the shop team by label: the client follows.
	get(t, payments)
	payments.Spec.AllowedClients.Namespaces = oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromSelector,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "shop"}}}
	if err := c.Update(ctx, payments); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")

	// The namespace losing the label takes the scope away again.
	nsObj := &corev1.Namespace{}
	if err := c.Get(ctx, objKey("", appNS), nsObj); err != nil {
		t.Fatal(err)
	}
	nsObj.Labels["team"] = "marketing"
	if err := c.Update(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "ScopeNotAllowed")
	if msg := readyCondition(oc).Message; !strings.Contains(msg, "team=shop") {
		t.Errorf("message %q does not show the Scope's selector", msg)
	}

	// Naming an API in spec.audience is the same as asking for its scope:
	// only an API whose Scope admits the namespace.
	get(t, payments)
	payments.Spec.Audience = "https://payments.example.com"
	payments.Spec.AllowedClients.Namespaces = oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromSame}
	if err := c.Update(ctx, payments); err != nil {
		t.Fatal(err)
	}
	sneaky := oauthClient(appNS, "sneaky", serverNS, "shared", "profile:read")
	sneaky.Spec.Audience = []oauthv1.Audience{"https://payments.example.com"}
	create(t, sneaky)
	waitCondition(t, sneaky, oauthv1.ConditionReady, metav1.ConditionFalse, "AudienceNotAllowed")
	if msg := readyCondition(sneaky).Message; !strings.Contains(msg, "https://payments.example.com") {
		t.Errorf("message %q does not name the audience", msg)
	}
	// Opening the Scope to every namespace admits the audience too.
	get(t, payments)
	payments.Spec.AllowedClients.Namespaces = oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromAll}
	if err := c.Update(ctx, payments); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, sneaky, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")

	// Saying it serves an API, so as to exchange the tokens sent to it
	// (spec.tokenExchange), is held to the same rule, and follows the
	// Scope when it changes.
	get(t, payments)
	payments.Spec.AllowedClients.Namespaces = oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromSame}
	if err := c.Update(ctx, payments); err != nil {
		t.Fatal(err)
	}
	middleman := oauthClient(appNS, "middleman", serverNS, "shared", "profile:read")
	middleman.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantTokenExchange}
	middleman.Spec.RedirectURIs = nil
	middleman.Spec.TokenExchange = &oauthv1.TokenExchange{SubjectTokens: []oauthv1.ExchangeableToken{
		{Type: oauthv1.ExchangeAccessToken, Audiences: []oauthv1.Audience{"https://payments.example.com"}}}}
	create(t, middleman)
	waitCondition(t, middleman, oauthv1.ConditionReady, metav1.ConditionFalse, "AudienceNotAllowed")
	if msg := readyCondition(middleman).Message; !strings.Contains(msg, "https://payments.example.com") {
		t.Errorf("message %q does not name the audience", msg)
	}
	get(t, payments)
	payments.Spec.AllowedClients.Namespaces = oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromAll}
	if err := c.Update(ctx, payments); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, middleman, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")

	// Its Secret says what it may use; a grant it loses leaves it.
	sec := appSecret(t, appNS, "middleman-oauth-client")
	if got := string(sec.Data["grant_types"]); got != string(oauthv1.GrantTokenExchange) {
		t.Errorf("grant_types = %q", got)
	}
	if got := string(sec.Data["subject_token_types"]); got != oauthv1.TokenTypeAccessToken {
		t.Errorf("subject_token_types = %q", got)
	}
	if _, ok := sec.Data["actor_token_types"]; ok {
		t.Error("actor_token_types written for a client that may present no actor token")
	}
	get(t, middleman)
	middleman.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantClientCredentials}
	middleman.Spec.TokenExchange = nil
	if err := c.Update(ctx, middleman); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sec = appSecret(t, appNS, "middleman-oauth-client")
		_, stale := sec.Data["subject_token_types"]
		if !stale && string(sec.Data["grant_types"]) == "client_credentials" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Secret still says %q, subject_token_types %q", sec.Data["grant_types"], sec.Data["subject_token_types"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
