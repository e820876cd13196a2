package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

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
// needs only for a ServiceAccount.
func connectionData(oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer) map[string]string {
	ep := endpoints.For(srv.Spec.Issuer)
	grants := oc.Spec.GrantTypes
	if len(grants) == 0 {
		grants = []oauthv1.GrantType{oauthv1.GrantAuthorizationCode}
	}
	names := make([]string, len(grants))
	for i, g := range grants {
		names[i] = string(g)
	}
	scopes := make([]string, len(oc.Spec.Scopes))
	for i, s := range oc.Spec.Scopes {
		scopes[i] = string(s)
	}
	d := map[string]string{
		oauthv1.SecretKeyClientID:                    oc.Status.ClientID,
		oauthv1.SecretKeyIssuer:                      srv.Spec.Issuer,
		oauthv1.SecretKeyTokenEndpoint:               ep.Token,
		oauthv1.SecretKeyJWKSURI:                     ep.JWKS,
		oauthv1.ConnectionKeyIntrospectionEndpoint:   ep.Introspection,
		oauthv1.ConnectionKeyRevocationEndpoint:      ep.Revocation,
		oauthv1.ConnectionKeyTokenEndpointAuthMethod: string(oc.AuthMethod()),
		oauthv1.ConnectionKeyClientAssertionType:     oauthv1.ClientAssertionTypeJWTBearer,
		oauthv1.ConnectionKeyGrantTypes:              strings.Join(names, " "),
		oauthv1.ConnectionKeyScope:                   strings.Join(scopes, " "),
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
	cm := &corev1.ConfigMap{}
	key := types.NamespacedName{Namespace: oc.Namespace, Name: name}
	err := r.Get(ctx, key, cm)
	if apierrors.IsNotFound(err) {
		// The cache holds only labelled ConfigMaps: someone else's may
		// still be there.
		err = r.APIReader.Get(ctx, key, cm)
	}
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: oc.Namespace, Name: name}}
		r.labelConnectionConfigMap(oc, cm, connectionData(oc, srv))
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
		r.labelConnectionConfigMap(oc, cm, connectionData(oc, srv))
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
