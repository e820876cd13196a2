package config

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/intern"
)

// leanClient is the informer's transform for OAuthClients: it keeps only
// what compileClient and the cache's keys read, so that the cache holds a
// few hundred bytes per client rather than the whole object (managedFields,
// the last-applied annotation, condition messages, status the server does
// not use). Strings that thousands of clients repeat (namespaces, scope
// names, audiences, grant types) are interned. Anything else passes
// through.
func leanClient(obj any) (any, error) {
	oc, ok := obj.(*oauthv1.OAuthClient)
	if !ok {
		return obj, nil
	}
	lean := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{
		Namespace:         intern.String(oc.Namespace),
		Name:              oc.Name,
		UID:               oc.UID,
		ResourceVersion:   oc.ResourceVersion,
		Generation:        oc.Generation,
		DeletionTimestamp: oc.DeletionTimestamp,
	}}
	sp := &oc.Spec
	lean.Spec = oauthv1.OAuthClientSpec{
		ServerRef:                oauthv1.ServerReference{Name: intern.String(sp.ServerRef.Name), Namespace: intern.String(sp.ServerRef.Namespace)},
		DisplayName:              sp.DisplayName,
		ClientType:               intern.String(sp.ClientType),
		TokenEndpointAuthMethod:  intern.String(sp.TokenEndpointAuthMethod),
		RedirectURIs:             sp.RedirectURIs,
		PostLogoutRedirectURIs:   sp.PostLogoutRedirectURIs,
		GrantTypes:               intern.Strings(sp.GrantTypes),
		Scopes:                   intern.Strings(sp.Scopes),
		Audience:                 intern.Strings(sp.Audience),
		RequirePKCE:              sp.RequirePKCE,
		SkipConsent:              sp.SkipConsent,
		IDTokenSignedResponseAlg: intern.String(sp.IDTokenSignedResponseAlg),
		Authentication:           sp.Authentication,
		TokenExchange:            sp.TokenExchange,
		BackchannelLogout:        sp.BackchannelLogout,

		RequirePushedAuthorizationRequests: sp.RequirePushedAuthorizationRequests,
		TokenLifetimes:                     sp.TokenLifetimes,
		AllowedCORSOrigins:                 sp.AllowedCORSOrigins,
		LogoURI:                            sp.LogoURI,
		PolicyURI:                          sp.PolicyURI,
		TOSURI:                             sp.TOSURI,
		ClaimMapping:                       sp.ClaimMapping,
	}
	lean.Status.ClientID = oc.Status.ClientID
	lean.Status.SecretHashes = oc.Status.SecretHashes
	lean.Status.ServiceAccountUID = oc.Status.ServiceAccountUID
	lean.Status.ExchangeServiceAccounts = oc.Status.ExchangeServiceAccounts
	lean.Status.PublicKeys = oc.Status.PublicKeys
	// Only whether it is Ready; reason, message and times are for people.
	if c := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady); c != nil {
		lean.Status.Conditions = []metav1.Condition{{Type: oauthv1.ConditionReady, Status: intern.String(c.Status)}}
	}
	return lean, nil
}
