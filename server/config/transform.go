package config

import (
	"unique"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gatehousev1alpha1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// leanClient is the informer's transform for OAuthClients: it keeps only
// what compileClient and the cache's keys read, so that the cache holds a
// few hundred bytes per client rather than the whole object (managedFields,
// the last-applied annotation, condition messages, status the server does
// not use). Strings that thousands of clients repeat (namespaces, scope
// names, audiences, grant types) are interned. Anything else passes
// through.
func leanClient(obj any) (any, error) {
	oc, ok := obj.(*gatehousev1alpha1.OAuthClient)
	if !ok {
		return obj, nil
	}
	lean := &gatehousev1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{
		Namespace:         intern(oc.Namespace),
		Name:              oc.Name,
		ResourceVersion:   oc.ResourceVersion,
		Generation:        oc.Generation,
		DeletionTimestamp: oc.DeletionTimestamp,
	}}
	sp := &oc.Spec
	lean.Spec = gatehousev1alpha1.OAuthClientSpec{
		ServerRef:                gatehousev1alpha1.ServerReference{Name: intern(sp.ServerRef.Name), Namespace: intern(sp.ServerRef.Namespace)},
		DisplayName:              sp.DisplayName,
		ClientType:               intern(sp.ClientType),
		TokenEndpointAuthMethod:  intern(sp.TokenEndpointAuthMethod),
		RedirectURIs:             sp.RedirectURIs,
		PostLogoutRedirectURIs:   sp.PostLogoutRedirectURIs,
		GrantTypes:               internAll(sp.GrantTypes),
		Scopes:                   internAll(sp.Scopes),
		Audience:                 internAll(sp.Audience),
		RequirePKCE:              sp.RequirePKCE,
		SkipConsent:              sp.SkipConsent,
		IDTokenSignedResponseAlg: intern(sp.IDTokenSignedResponseAlg),
	}
	lean.Status.ClientID = oc.Status.ClientID
	lean.Status.SecretHashes = oc.Status.SecretHashes
	// Only whether it is Ready; reason, message and times are for people.
	if c := meta.FindStatusCondition(oc.Status.Conditions, gatehousev1alpha1.ConditionReady); c != nil {
		lean.Status.Conditions = []metav1.Condition{{Type: gatehousev1alpha1.ConditionReady, Status: intern(c.Status)}}
	}
	return lean, nil
}

// intern returns the process's canonical copy of s, so that equal strings
// decoded from thousands of objects share one allocation.
func intern[S ~string](s S) S {
	if s == "" {
		return s
	}
	return S(unique.Make(string(s)).Value())
}

func internAll[S ~string](in []S) []S {
	if len(in) == 0 {
		return nil
	}
	out := make([]S, len(in))
	for i, s := range in {
		out[i] = intern(s)
	}
	return out
}
