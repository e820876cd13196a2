package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/operatormetrics"
)

// ClockSkew is how far the clocks of the token server and of resource
// servers may differ. A retired key stays published for the longest
// lifetime of a token it signed (the server's access-token lifetime, or a
// client's own access- or ID-token lifetime if longer) plus ClockSkew, so
// a token signed just before retirement still validates on a resource
// server whose clock runs late.
const ClockSkew = 5 * time.Minute

// annotationRotateKeysHandled, on the keys Secret, records the value of the
// server's rotate-keys annotation last acted on, so that a restart or a
// re-reconcile does not rotate again.
const annotationRotateKeysHandled = "oauth.gatehouse.dev/rotate-keys-handled"

// Event reasons for signing keys. (Unreadable keys warn with the reason
// of the condition they fail, InvalidKeys: failedWarn.)
const (
	EventKeyPublished = "KeyPublished"
	EventKeyRotated   = "KeyRotated"
	EventKeyRemoved   = "KeyRemoved"
	EventKeysLost     = "SigningKeysLost"
)

// KeyPolicy is the rotation policy of a server at a given rotate-keys
// request state.
func KeyPolicy(srv *oauthv1.AuthorizationServer) keyset.Policy {
	return keyset.Policy{
		Algorithm:        string(srv.SigningAlgorithm()),
		RotationInterval: srv.RotationInterval(),
		PrepublishPeriod: srv.PrepublishPeriod(),
		Retention:        srv.AccessTokenLifetime() + ClockSkew,
		// OpenID Connect Discovery 1.0 §3: ID tokens can always be RS256;
		// a client may choose ES256 (spec.idTokenSignedResponseAlg).
		IDTokenAlgorithms: []string{keyset.RS256, keyset.ES256},
	}
}

// retirementDue reports whether advancing set to now retires a key: a
// next key's time to sign has come. Only then does the retention matter.
func retirementDue(set *keyset.Set, now time.Time) bool {
	for _, k := range set.Keys {
		if k.State == keyset.StateNext && !k.ActivatesAt.After(now) {
			return true
		}
	}
	return false
}

// longestClientLifetime is the longest access- or ID-token lifetime that a
// client of srv sets for itself (spec.tokenLifetimes), zero when none
// does: a retired key stays published that long, so that a client's
// longer-lived token never outlives its key. It is read once per rotation,
// so a scan of the cached clients (without copies) is cheap enough.
func (r *AuthorizationServerReconciler) longestClientLifetime(ctx context.Context, srv *oauthv1.AuthorizationServer) (time.Duration, error) {
	var clients oauthv1.OAuthClientList
	if err := r.List(ctx, &clients, client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("listing OAuthClients for the signing-key retention: %w", err)
	}
	var longest time.Duration
	for i := range clients.Items {
		if oc := &clients.Items[i]; oc.References(srv.Namespace, srv.Name) {
			longest = max(longest, oc.Spec.TokenLifetimes.LongestSigned())
		}
	}
	return longest, nil
}

// reconcileKeys advances the key set to now, stores it, publishes the JWKS
// ConfigMap and reports the next transition, for RequeueAfter.
func (r *AuthorizationServerReconciler) reconcileKeys(ctx context.Context, srv *oauthv1.AuthorizationServer, now time.Time) (time.Time, error) {
	name := keyset.SecretName(srv.Name)
	sec := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: srv.Namespace, Name: name}, sec)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return time.Time{}, fmt.Errorf("getting Secret %s: %w", name, err)
	}
	if !exists {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: name}}
		if srv.Status.ActiveKeyID != "" {
			r.event(ctx, srv, corev1.EventTypeWarning, EventKeysLost,
				"Secret %s was deleted: generating new keys; tokens signed by key %s and earlier keys no longer validate", name, srv.Status.ActiveKeyID)
		}
	}
	before := sec.DeepCopy()

	set := &keyset.Set{}
	if data := sec.Data[keyset.SecretDataKey]; len(data) > 0 {
		if set, err = keyset.Parse(data); err != nil {
			// Never overwrite keys the operator cannot read: tokens they
			// signed may still be in use. A person must repair or delete it.
			msg := fmt.Sprintf("Secret %s: %v; fix or delete it to generate new keys", name, err)
			failedWarn(ctx, r.Recorder, srv, &srv.Status.Conditions, oauthv1.ConditionKeysReady, oauthv1.ReasonInvalidKeys, msg)
			return time.Time{}, nil
		}
	}

	policy, err := r.keyPolicy(ctx, srv, sec, set, now)
	if err != nil {
		return time.Time{}, err
	}
	res, err := keyset.Advance(set, policy, now, keyset.Generate)
	if err != nil {
		return time.Time{}, fmt.Errorf("advancing signing keys: %w", err)
	}
	setAnnotation(sec, annotationRotateKeysHandled, srv.Annotations[oauthv1.AnnotationRotateKeys])

	if res.Changed() || !exists {
		data, err := set.Marshal()
		if err != nil {
			return time.Time{}, fmt.Errorf("encoding key set: %w", err)
		}
		sec.Data = map[string][]byte{keyset.SecretDataKey: data}
	}
	sec.Type = corev1.SecretTypeOpaque
	sec.Labels = serverLabels(srv, sec.Labels)
	if err := controllerutil.SetControllerReference(srv, sec, r.Scheme()); err != nil {
		return time.Time{}, err
	}
	switch {
	case !exists:
		if err := r.Create(ctx, sec); err != nil {
			return time.Time{}, fmt.Errorf("creating Secret %s: %w", name, err)
		}
	case !equality.Semantic.DeepEqual(before, sec):
		if err := r.Patch(ctx, sec, mergeFrom(before)); err != nil {
			return time.Time{}, fmt.Errorf("updating Secret %s: %w", name, err)
		}
	}
	r.keyEvents(ctx, srv, set, res)

	if err := r.publishJWKS(ctx, srv, set); err != nil {
		return time.Time{}, err
	}
	srv.Status.ActiveKeyID = set.ActiveKeyID()
	srv.Status.NextRotationTime = nil
	if t, ok := set.NextRotation(policy.RotationInterval); ok {
		rotation := metav1.NewTime(t).Rfc3339Copy() // what the API stores
		srv.Status.NextRotationTime = &rotation
	}
	setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionKeysReady, true, oauthv1.ReasonKeysReady,
		fmt.Sprintf("key %s signs and %d key(s) are published in ConfigMap %s", srv.Status.ActiveKeyID, len(set.Keys), keyset.JWKSConfigMapName(srv.Name)))
	return res.NextTransition, nil
}

// keyPolicy is the server's rotation policy for this reconcile: retired
// keys stay published as long as the longest token any of its clients may
// hold, and a rotation the user asked for by annotation (and that the key
// Secret does not record as done) happens now.
func (r *AuthorizationServerReconciler) keyPolicy(ctx context.Context, srv *oauthv1.AuthorizationServer, sec *corev1.Secret,
	set *keyset.Set, now time.Time) (keyset.Policy, error) {
	policy := KeyPolicy(srv)
	if retirementDue(set, now) {
		longest, err := r.longestClientLifetime(ctx, srv)
		if err != nil {
			return policy, err
		}
		policy.Retention = max(policy.Retention, longest+ClockSkew)
	}
	wanted := srv.Annotations[oauthv1.AnnotationRotateKeys]
	handled, recorded := sec.Annotations[annotationRotateKeysHandled]
	policy.RotateNow = wanted != "" && recorded && handled != wanted && len(set.Keys) > 0
	return policy, nil
}

func (r *AuthorizationServerReconciler) keyEvents(ctx context.Context, srv *oauthv1.AuthorizationServer, set *keyset.Set, res keyset.Result) {
	activated := map[string]bool{}
	for _, id := range res.Activated {
		activated[id] = true
	}
	for _, k := range set.Keys {
		for _, id := range res.Generated {
			if k.ID == id && !activated[id] {
				r.event(ctx, srv, corev1.EventTypeNormal, EventKeyPublished, "published signing key %s (%s); it signs from %s",
					k.ID, k.Algorithm, k.ActivatesAt.Format(time.RFC3339))
			}
		}
	}
	if len(res.Retired) == 0 {
		for _, id := range res.Activated {
			r.event(ctx, srv, corev1.EventTypeNormal, EventKeyPublished, "generated signing key %s; it signs at once, as there was no key", id)
		}
	}
	if len(res.Retired) > 0 {
		for _, id := range res.Activated {
			operatormetrics.KeysRotated.Inc()
			r.event(ctx, srv, corev1.EventTypeNormal, EventKeyRotated, "signing key %s now signs; retired %s", id, strings.Join(res.Retired, ", "))
		}
	}
	for _, id := range res.Removed {
		r.event(ctx, srv, corev1.EventTypeNormal, EventKeyRemoved, "removed key %s: every token it signed has expired", id)
	}
}

// publishJWKS writes the public keys (RFC 7517 JWK Set) to the server's
// JWKS ConfigMap, for resource servers in the cluster that read it directly.
func (r *AuthorizationServerReconciler) publishJWKS(ctx context.Context, srv *oauthv1.AuthorizationServer, set *keyset.Set) error {
	jwks, err := set.PublicJWKS()
	if err != nil {
		return fmt.Errorf("building JWKS: %w", err)
	}
	data, err := json.Marshal(jwks)
	if err != nil {
		return fmt.Errorf("encoding JWKS: %w", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: keyset.JWKSConfigMapName(srv.Name)}}
	_, err = controllerutil.CreateOrUpdate(ctx, r.Client, cm, func() error {
		cm.Labels = serverLabels(srv, cm.Labels)
		cm.Data = map[string]string{keyset.JWKSDataKey: string(data)}
		return controllerutil.SetControllerReference(srv, cm, r.Scheme())
	})
	if err != nil {
		return fmt.Errorf("writing ConfigMap %s: %w", cm.Name, err)
	}
	return nil
}
