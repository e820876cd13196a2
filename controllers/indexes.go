package controllers

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// Field indexes let a change to one object find the objects that depend on
// it from the informer cache, without listing every object of a kind.
const (
	// indexClientServer: OAuthClient by "<namespace>/<name>" of its server.
	indexClientServer = "oauth.gatehouse.dev/client-server"
	// indexClientScope: OAuthClient by "<server namespace>/<server>/<scope>"
	// for each scope it requests.
	indexClientScope = "oauth.gatehouse.dev/client-scope"
	// indexClientAudience: OAuthClient by "<server namespace>/<server>/<aud>"
	// for each audience in its spec.audience.
	indexClientAudience = "oauth.gatehouse.dev/client-audience"
	// indexClientSecret: confidential OAuthClient by the name of the Secret
	// it waits for: one it does not hold yet, or holds without being Ready
	// (a conflict, a Secret someone else must fix). A client that is Ready
	// with its Secret is found from the Secret's client label instead: at
	// 10,000 clients an index entry each, unique to its client, was most of
	// a KiB per client.
	indexClientSecret = "oauth.gatehouse.dev/client-secret"
	// indexClientServiceAccount: OAuthClient by "<namespace>/<name>" of
	// the ServiceAccount it authenticates as, and of those whose tokens it
	// may exchange.
	indexClientServiceAccount = "oauth.gatehouse.dev/client-serviceaccount"
	// indexScopeServer: Scope by the name of its server (same namespace).
	indexScopeServer = "oauth.gatehouse.dev/scope-server"
	// indexScopeName: Scope by "<server>/<scope string>" (same namespace).
	indexScopeName = "oauth.gatehouse.dev/scope-name"
)

func setupIndexes(ctx context.Context, idx client.FieldIndexer) error {
	if err := idx.IndexField(ctx, &oauthv1.OAuthClient{}, indexClientServer, func(o client.Object) []string {
		oc := o.(*oauthv1.OAuthClient)
		return []string{oc.ServerKey()}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &oauthv1.OAuthClient{}, indexClientScope, func(o client.Object) []string {
		oc := o.(*oauthv1.OAuthClient)
		keys := make([]string, 0, len(oc.Spec.Scopes))
		for _, s := range oc.Spec.Scopes {
			keys = append(keys, oc.ServerKey()+"/"+string(s))
		}
		return keys
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &oauthv1.OAuthClient{}, indexClientAudience, func(o client.Object) []string {
		oc := o.(*oauthv1.OAuthClient)
		auds := oc.Audiences()
		keys := make([]string, 0, len(auds))
		for _, a := range auds {
			keys = append(keys, oc.ServerKey()+"/"+string(a))
		}
		return keys
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &oauthv1.OAuthClient{}, indexClientSecret, func(o client.Object) []string {
		oc := o.(*oauthv1.OAuthClient)
		name := SecretName(oc)
		if !oc.HasSecret() ||
			oc.Status.SecretName == name && meta.IsStatusConditionTrue(oc.Status.Conditions, oauthv1.ConditionReady) {
			return nil
		}
		return []string{name}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &oauthv1.OAuthClient{}, indexClientServiceAccount, func(o client.Object) []string {
		oc := o.(*oauthv1.OAuthClient)
		var keys []string
		if a := oc.Spec.Authentication; a != nil && a.ServiceAccount != nil {
			keys = append(keys, oc.Namespace+"/"+a.ServiceAccount.Name)
		}
		for _, name := range oc.ExchangeServiceAccountNames() {
			if k := oc.Namespace + "/" + name; !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		return keys
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &oauthv1.Scope{}, indexScopeServer, func(o client.Object) []string {
		return []string{o.(*oauthv1.Scope).Spec.ServerRef.Name}
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &oauthv1.Scope{}, indexScopeName, func(o client.Object) []string {
		return []string{scopeNameKey(o.(*oauthv1.Scope))}
	})
}

func scopeNameKey(s *oauthv1.Scope) string {
	return s.Spec.ServerRef.Name + "/" + string(s.Spec.Name)
}
