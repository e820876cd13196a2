package config

import (
	"maps"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// The server applies a Scope's allowedClients itself where it can, so a
// client still marked Ready from before the Scope closed gets no token
// with that scope.
func TestScopePolicyLimitsClientScopes(t *testing.T) {
	as := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example.test"}}
	scope := func(name string, from oauthv1.FromNamespaces) oauthv1.Scope {
		return oauthv1.Scope{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: name},
			Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "main"},
				Name: oauthv1.ScopeName(name), Description: name, Audience: oauthv1.Audience("https://" + name),
				AllowedClients: oauthv1.AllowedClients{Namespaces: oauthv1.ClientNamespaces{From: from}}}}
	}
	client := func(ns string) oauthv1.OAuthClient {
		return oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "main", Namespace: "auth"},
				Scopes:   []oauthv1.ScopeName{"same", "all", "selector", "legacy"},
				Audience: []oauthv1.Audience{"https://same", "https://all", "https://nobody"}},
			Status: oauthv1.OAuthClientStatus{ClientID: ns + ".app", Conditions: ready(metav1.ConditionTrue)}}
	}
	var b Builder
	s, err := b.Build(Inputs{Server: as,
		Scopes: []oauthv1.Scope{
			scope("same", oauthv1.NamespacesFromSame), scope("all", oauthv1.NamespacesFromAll),
			scope("selector", oauthv1.NamespacesFromSelector), scope("legacy", ""),
		},
		Clients: []oauthv1.OAuthClient{client("auth"), client("team")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Clients.Get("auth.app").AllowedScopes; !slices.Equal(got, []string{"same", "all", "selector", "legacy"}) {
		t.Errorf("a client next to the Scopes may request %v, want all four", got)
	}
	// Selector needs namespace labels, which only the operator reads.
	if got := s.Clients.Get("team.app").AllowedScopes; !slices.Equal(got, []string{"all", "selector"}) {
		t.Errorf("a client in another namespace may request %v, want [all selector]", got)
	}
	// Audiences follow the same rule: only APIs whose Scope admits the
	// client, and never one no Scope names.
	if got := s.Clients.Get("auth.app").Audience; !slices.Equal(got, []string{"https://same", "https://all"}) {
		t.Errorf("a client next to the Scopes gets audiences %v, want [https://same https://all]", got)
	}
	if got := s.Clients.Get("team.app").Audience; !slices.Equal(got, []string{"https://all"}) {
		t.Errorf("a client in another namespace gets audiences %v, want [https://all]", got)
	}
}

// The APIs a client says it serves in spec.tokenExchange follow the
// audience rule too: a client cannot accept tokens meant for an API whose
// Scope does not admit it. Without the grant type there is no exchange.
func TestScopePolicyLimitsExchangeAudiences(t *testing.T) {
	as := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example.test"}}
	scope := func(name string, from oauthv1.FromNamespaces) oauthv1.Scope {
		return oauthv1.Scope{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: name},
			Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "main"},
				Name: oauthv1.ScopeName(name), Description: name, Audience: oauthv1.Audience("https://" + name),
				AllowedClients: oauthv1.AllowedClients{Namespaces: oauthv1.ClientNamespaces{From: from}}}}
	}
	client := func(name string, grants ...oauthv1.GrantType) oauthv1.OAuthClient {
		return oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name},
			Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "main", Namespace: "auth"},
				GrantTypes: grants,
				TokenExchange: &oauthv1.TokenExchange{
					SubjectTokens: []oauthv1.ExchangeableToken{{Type: oauthv1.ExchangeAccessToken,
						Audiences: []oauthv1.Audience{"https://same", "https://all", "https://nobody"}},
						{Type: oauthv1.ExchangeServiceAccount, ServiceAccounts: []string{"worker"}}},
					AllowImpersonation: true,
				}},
			Status: oauthv1.OAuthClientStatus{ClientID: "team." + name, Conditions: ready(metav1.ConditionTrue),
				ExchangeServiceAccounts: []oauthv1.ServiceAccountUID{{Name: "worker", UID: "uid-worker"}}}}
	}
	var b Builder
	s, err := b.Build(Inputs{Server: as,
		Scopes:  []oauthv1.Scope{scope("same", oauthv1.NamespacesFromSame), scope("all", oauthv1.NamespacesFromAll)},
		Clients: []oauthv1.OAuthClient{client("exchanger", oauthv1.GrantTokenExchange), client("plain", oauthv1.GrantClientCredentials)},
	})
	if err != nil {
		t.Fatal(err)
	}
	te := s.Clients.Get("team.exchanger").TokenExchange
	if te == nil || len(te.SubjectTokens) != 2 || !te.AllowImpersonation {
		t.Fatalf("token exchange compiled to %+v", te)
	}
	if got := te.SubjectTokens[0].Audiences; !slices.Equal(got, []string{"https://all"}) {
		t.Errorf("a client in another namespace may exchange tokens for %v, want [https://all]", got)
	}
	// ServiceAccounts are the client's own namespace's.
	if got := te.SubjectTokens[1].ServiceAccountSubjects; !slices.Equal(got, []string{"system:serviceaccount:team:worker"}) {
		t.Errorf("service-account subjects %v", got)
	}
	// Each bound to the UID the operator found, which the informer's
	// lean copy keeps.
	if got := te.SubjectTokens[1].ServiceAccountUIDs; !maps.Equal(got, map[string]string{"system:serviceaccount:team:worker": "uid-worker"}) {
		t.Errorf("service-account UIDs %v", got)
	}
	ex := client("exchanger", oauthv1.GrantTokenExchange)
	lean, err := leanClient(&ex)
	if err != nil {
		t.Fatal(err)
	}
	if got := lean.(*oauthv1.OAuthClient).Status.ExchangeServiceAccounts; !slices.Equal(got, ex.Status.ExchangeServiceAccounts) {
		t.Errorf("the informer's copy has exchangeServiceAccounts %v, want %v", got, ex.Status.ExchangeServiceAccounts)
	}
	if te := s.Clients.Get("team.plain").TokenExchange; te != nil {
		t.Errorf("a client without the token-exchange grant may exchange: %+v", te)
	}
}
