package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
)

// ConfigMapName is the ConfigMap with the connection data of a client
// without a secret: spec.configMapName, by default "<name>-oauth-client".
func ConfigMapName(oc *oauthv1.OAuthClient) string {
	if oc.Spec.ConfigMapName != "" {
		return oc.Spec.ConfigMapName
	}
	return oc.Name + "-oauth-client"
}

// connectionData is what an app needs to use a client without a secret,
// under RFC 8414 and RFC 7591 names: exactly what this client may use.
// The authorization endpoint and the discovery document are there only
// for a client that may use the code flow, the device endpoint only for
// one that may use the device grant, and the audience its projected token
// needs only for a ServiceAccount. What it may ask for (grant types,
// scopes, resources, token types to exchange) is connectionFor's, as in a
// client's Secret.
func connectionData(oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer, resources []string) map[string]string {
	ep := endpoints.For(srv.Spec.Issuer)
	d := connectionFor(oc, resources)
	maps.Copy(d, map[string]string{
		oauthv1.SecretKeyClientID:                    oc.Status.ClientID,
		oauthv1.SecretKeyIssuer:                      srv.Spec.Issuer,
		oauthv1.SecretKeyTokenEndpoint:               ep.Token,
		oauthv1.SecretKeyJWKSURI:                     ep.JWKS,
		oauthv1.ConnectionKeyIntrospectionEndpoint:   ep.Introspection,
		oauthv1.ConnectionKeyRevocationEndpoint:      ep.Revocation,
		oauthv1.ConnectionKeyTokenEndpointAuthMethod: string(oc.AuthMethod()),
		oauthv1.ConnectionKeyClientAssertionType:     oauthv1.ClientAssertionTypeJWTBearer,
	})
	grants := oc.Spec.GrantTypes
	if len(grants) == 0 {
		grants = []oauthv1.GrantType{oauthv1.GrantAuthorizationCode}
	}
	if slices.Contains(grants, oauthv1.GrantAuthorizationCode) {
		d[oauthv1.SecretKeyAuthorizationEndpoint] = ep.Authorization
		d[oauthv1.SecretKeyOIDCDiscoveryURL] = ep.OpenIDConfiguration
	}
	if slices.Contains(grants, oauthv1.GrantDeviceCode) {
		d[oauthv1.ConnectionKeyDeviceAuthorizationEndpoint] = ep.DeviceAuthorization
	}
	if oc.Spec.Authentication.ServiceAccount != nil {
		d[oauthv1.ConnectionKeyServiceAccountTokenAudience] = srv.Spec.Issuer
	}
	return d
}

// reachableResources are the APIs the client may get a token for: what a
// resource indicator (RFC 8707) at /authorize and /token, or an audience
// or resource of a token exchange (RFC 8693 §2.1), may select. They are
// its spec.audience and the audiences of the Scopes it may request, the
// token server's rule (reachableAudiences); the client is Ready only when
// each of those Scopes, and a Scope for each spec.audience, admits it.
// spec.audience comes first, in its order, then the Scopes' audiences
// sorted, so the data change only when the APIs do.
func (r *OAuthClientReconciler) reachableResources(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer) ([]string, error) {
	out := make([]string, 0, len(oc.Spec.Audience))
	for _, a := range oc.Spec.Audience {
		if !slices.Contains(out, string(a)) {
			out = append(out, string(a))
		}
	}
	if len(oc.Spec.Scopes) == 0 {
		return out, nil
	}
	var scopes oauthv1.ScopeList
	if err := r.List(ctx, &scopes, client.InNamespace(srv.Namespace), client.MatchingFields{indexScopeServer: srv.Name}); err != nil {
		return nil, fmt.Errorf("listing Scopes: %w", err)
	}
	var fromScopes []string
	for _, sc := range scopes.Items {
		if a := string(sc.Spec.Audience); a != "" && slices.Contains(oc.Spec.Scopes, sc.Spec.Name) && !slices.Contains(out, a) {
			fromScopes = append(fromScopes, a)
		}
	}
	slices.Sort(fromScopes)
	return append(out, slices.Compact(fromScopes)...), nil
}

// writeConnectionConfigMap keeps the client's ConfigMap: created with the
// client as controlling owner (deleted with it), updated when the data
// change, and moved when spec.configMapName does. A ConfigMap of that name
// the operator did not create for this client is never touched: the
// client is not Ready (ConfigMapConflict) until it goes or is renamed.
func (r *OAuthClientReconciler) writeConnectionConfigMap(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer) (*problem, error) {
	name := ConfigMapName(oc)
	if prev := oc.Status.ConfigMapName; prev != "" && prev != name {
		if err := r.releaseConfigMap(ctx, oc, prev); err != nil {
			return nil, err
		}
		oc.Status.ConfigMapName = ""
	}
	resources, err := r.reachableResources(ctx, oc, srv)
	if err != nil {
		return nil, err
	}
	cm := &corev1.ConfigMap{}
	key := types.NamespacedName{Namespace: oc.Namespace, Name: name}
	err = r.Get(ctx, key, cm)
	if apierrors.IsNotFound(err) {
		// The cache holds only labelled ConfigMaps: someone else's may
		// still be there.
		err = r.APIReader.Get(ctx, key, cm)
	}
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: oc.Namespace, Name: name}}
		r.labelConnectionConfigMap(oc, cm, connectionData(oc, srv, resources))
		if err := controllerutil.SetControllerReference(oc, cm, r.Scheme()); err != nil {
			return nil, err
		}
		if err := r.Create(ctx, cm); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return &problem{oauthv1.ReasonConfigMapConflict, fmt.Sprintf("ConfigMap %s/%s appeared while it was being created; looking again", oc.Namespace, name)}, nil
			}
			return nil, fmt.Errorf("creating ConfigMap %s: %w", name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("getting ConfigMap %s: %w", name, err)
	case !metav1.IsControlledBy(cm, oc):
		return &problem{oauthv1.ReasonConfigMapConflict, fmt.Sprintf(
			"ConfigMap %s/%s exists and was not created by the operator for this client; it is left untouched: delete or rename it, or set spec.configMapName",
			oc.Namespace, name)}, nil
	default:
		before := cm.DeepCopy()
		r.labelConnectionConfigMap(oc, cm, connectionData(oc, srv, resources))
		if !maps.Equal(before.Data, cm.Data) || !maps.Equal(before.Labels, cm.Labels) {
			if err := r.Patch(ctx, cm, client.MergeFrom(before)); err != nil {
				return nil, fmt.Errorf("updating ConfigMap %s: %w", name, err)
			}
		}
	}
	oc.Status.ConfigMapName = name
	return nil, nil
}

func (r *OAuthClientReconciler) labelConnectionConfigMap(oc *oauthv1.OAuthClient, cm *corev1.ConfigMap, data map[string]string) {
	cm.Data = data
	setLabel(cm, oauthv1.LabelManagedBy, oauthv1.LabelManagedByValue)
	setLabel(cm, oauthv1.LabelClient, oc.Name)
}

// releaseConfigMap deletes the connection ConfigMap the operator created
// for this client, when the client no longer uses it; any other ConfigMap
// is left alone.
func (r *OAuthClientReconciler) releaseConfigMap(ctx context.Context, oc *oauthv1.OAuthClient, name string) error {
	if name == "" {
		return nil
	}
	cm := &corev1.ConfigMap{}
	err := r.Get(ctx, types.NamespacedName{Namespace: oc.Namespace, Name: name}, cm)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("getting ConfigMap %s: %w", name, err)
	case !metav1.IsControlledBy(cm, oc):
		return nil
	}
	if err := r.Delete(ctx, cm, client.Preconditions{UID: &cm.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting ConfigMap %s: %w", name, err)
	}
	return nil
}
