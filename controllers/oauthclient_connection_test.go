package controllers_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// TestConnectionDataListsWhatTheClientMayAskFor (issue 20): the ConfigMap
// of a client without a secret that may exchange tokens says, as a
// client's Secret does, the grants, scopes and token types it may use and
// the APIs (resources) it may get a token for: its spec.audience and its
// Scopes' audiences. A Scope whose audience changes changes the list.
func TestConnectionDataListsWhatTheClientMayAskFor(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	orders, stock := scope(ns, "orders-read", "auth", "orders:read"), scope(ns, "stock-read", "auth", "stock:read")
	orders.Spec.Audience, stock.Spec.Audience = "https://orders.example", "https://stock.example"
	billing := scope(ns, "billing", "auth", "billing:charge")
	billing.Spec.Audience = "https://billing.example"
	create(t, server(ns, "auth"), orders, stock, billing, scope(ns, "profile", "auth", "profile:read"),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gateway"}})

	gw := serviceAccountClient(ns, "gateway", "", "auth", "gateway")
	gw.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantClientCredentials, oauthv1.GrantTokenExchange}
	gw.Spec.Scopes = []oauthv1.ScopeName{"orders:read", "stock:read", "profile:read"}
	gw.Spec.Audience = []oauthv1.Audience{"https://billing.example"}
	gw.Spec.TokenExchange = &oauthv1.TokenExchange{SubjectTokens: []oauthv1.ExchangeableToken{
		{Type: oauthv1.ExchangeAccessToken}, {Type: oauthv1.ExchangeServiceAccount, ServiceAccounts: []string{"batch"}}}}
	create(t, gw)
	waitCondition(t, gw, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	want := map[string]string{
		"grant_types":         "client_credentials " + string(oauthv1.GrantTokenExchange),
		"scope":               "orders:read stock:read profile:read",
		"resources":           "https://billing.example https://orders.example https://stock.example",
		"subject_token_types": oauthv1.TokenTypeAccessToken + " " + oauthv1.TokenTypeJWT,
	}
	connectionDataIs(t, ns, "gateway-oauth-client", want, "actor_token_types")

	// The Scope's API moves: the list follows.
	get(t, stock)
	stock.Spec.Audience = "https://inventory.example"
	if err := c.Update(ctx, stock); err != nil {
		t.Fatal(err)
	}
	want["resources"] = "https://billing.example https://inventory.example https://orders.example"
	connectionDataIs(t, ns, "gateway-oauth-client", want, "actor_token_types")

	// A client with a secret: its Secret carries the same list.
	shop := oauthClient(ns, "shop", "", "auth", "orders:read", "profile:read")
	create(t, shop)
	waitCondition(t, shop, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	if got := string(appSecret(t, ns, "shop-oauth-client").Data["resources"]); got != "https://orders.example" {
		t.Errorf("the Secret's resources = %q, want https://orders.example", got)
	}
	// A client with no API of its own has no list.
	lone := oauthClient(ns, "lone", "", "auth", "profile:read")
	create(t, lone)
	waitCondition(t, lone, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	if got, ok := appSecret(t, ns, "lone-oauth-client").Data["resources"]; ok {
		t.Errorf("a client whose scopes have no audience has resources %q", got)
	}
}

// connectionDataIs waits until the ConfigMap holds want and none of absent.
func connectionDataIs(t *testing.T, ns, name string, want map[string]string, absent ...string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		cm := &corev1.ConfigMap{}
		if err := testenv.Get(t).Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
			return err
		}
		for k, v := range want {
			if cm.Data[k] != v {
				return fmt.Errorf("ConfigMap %s: %s = %q, want %q", name, k, cm.Data[k], v)
			}
		}
		for _, k := range absent {
			if v, ok := cm.Data[k]; ok {
				return fmt.Errorf("ConfigMap %s has %s = %q", name, k, v)
			}
		}
		return nil
	})
}

// TestExchangeServiceAccountsBoundToUID (issue 20): the ServiceAccounts
// whose tokens a client may exchange (spec.tokenExchange) are published
// with their UIDs, as the one it authenticates as is: one that does not
// exist is left out (its tokens are refused), one created appears, and
// one deleted and re-created under the same name gets its new UID, so
// the token server refuses the old one's tokens.
func TestExchangeServiceAccountsBoundToUID(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"), scope(ns, "orders-read", "auth", "orders:read"))
	broker := oauthClient(ns, "broker", "", "auth", "orders:read")
	broker.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantTokenExchange}
	broker.Spec.RedirectURIs = nil
	broker.Spec.TokenExchange = &oauthv1.TokenExchange{
		SubjectTokens: []oauthv1.ExchangeableToken{{Type: oauthv1.ExchangeServiceAccount, ServiceAccounts: []string{"batch", "reports"}}},
		ActorTokens:   []oauthv1.ExchangeableToken{{Type: oauthv1.ExchangeServiceAccount, ServiceAccounts: []string{"batch"}}},
	}
	create(t, broker)
	waitCondition(t, broker, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	if got := broker.Status.ExchangeServiceAccounts; len(got) != 0 {
		t.Errorf("exchangeServiceAccounts %v before any of them exists", got)
	}

	batch := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "batch"}}
	create(t, batch)
	exchangeUIDsAre(t, broker, map[string]string{"batch": string(batch.UID)})

	if err := c.Delete(ctx, batch); err != nil {
		t.Fatal(err)
	}
	exchangeUIDsAre(t, broker, map[string]string{})
	again := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "batch"}}
	reports := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reports"}}
	create(t, again, reports)
	if again.UID == batch.UID {
		t.Fatal("the re-created ServiceAccount has the old UID")
	}
	exchangeUIDsAre(t, broker, map[string]string{"batch": string(again.UID), "reports": string(reports.UID)})
}

// exchangeUIDsAre waits until the client's status.exchangeServiceAccounts
// is want (name to UID).
func exchangeUIDsAre(t *testing.T, oc *oauthv1.OAuthClient, want map[string]string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		get(t, oc)
		got := map[string]string{}
		for _, sa := range oc.Status.ExchangeServiceAccounts {
			got[sa.Name] = sa.UID
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("status.exchangeServiceAccounts = %v, want %v", got, want)
		}
		return nil
	})
}
