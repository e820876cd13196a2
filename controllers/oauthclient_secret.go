package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	ctrlresult "sigs.k8s.io/controller-runtime/pkg/reconcile"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/operatormetrics"
)

const (
	// annotationRotateSecretHandled, on the app's Secret, records the value
	// of the OAuthClient's rotate-secret annotation last acted on, so that a
	// restart does not rotate again.
	annotationRotateSecretHandled = "oauth.gatehouse.dev/rotate-secret-handled"

	// defaultGracePeriod applies when spec.secretRotation is unset.
	defaultGracePeriod = 24 * time.Hour

	// maxSecretHashes is status.secretHashes' MaxItems.
	maxSecretHashes = 16
)

// Event reasons for client secrets.
const (
	EventGenerated        = "Generated"
	EventAdopted          = "Adopted"
	EventRotated          = "Rotated"
	EventWeakSecret       = "WeakSecret"
	EventRotationExternal = "RotationSkipped"
)

// metadataKeys are the Secret keys the operator writes besides
// client_secret; on an adopted Secret they are all it writes.
var metadataKeys = []string{
	oauthv1.SecretKeyClientID,
	oauthv1.SecretKeyIssuer,
	oauthv1.SecretKeyAuthorizationEndpoint,
	oauthv1.SecretKeyTokenEndpoint,
	oauthv1.SecretKeyJWKSURI,
}

// SecretName is the app Secret of a confidential client.
func SecretName(oc *oauthv1.OAuthClient) string {
	if oc.Spec.SecretName != "" {
		return oc.Spec.SecretName
	}
	return oc.Name + "-oauth-client"
}

func gracePeriod(oc *oauthv1.OAuthClient) time.Duration {
	if r := oc.Spec.SecretRotation; r != nil && r.GracePeriod != nil {
		return r.GracePeriod.Duration
	}
	return defaultGracePeriod
}

func currentHash(hashes []oauthv1.SecretHash) string {
	for _, h := range hashes {
		if h.NotAfter == nil {
			return h.Hash
		}
	}
	return ""
}

// replaceCurrent makes hash the current secret. The previous current one
// stays valid until graceUntil, or is dropped at once when graceUntil is
// zero.
func replaceCurrent(oc *oauthv1.OAuthClient, hash string, graceUntil time.Time) {
	var kept []oauthv1.SecretHash
	for _, h := range oc.Status.SecretHashes {
		if h.Hash == hash {
			continue
		}
		if h.NotAfter == nil {
			if graceUntil.IsZero() {
				continue
			}
			h.NotAfter = &metav1.Time{Time: graceUntil}
		}
		kept = append(kept, h)
	}
	oc.Status.SecretHashes = append(kept, oauthv1.SecretHash{Hash: hash})
}

// pruneHashes drops hashes past their not-after time and, beyond
// MaxItems, the ones that expire first.
func pruneHashes(oc *oauthv1.OAuthClient, now time.Time) {
	hashes := slices.DeleteFunc(oc.Status.SecretHashes, func(h oauthv1.SecretHash) bool {
		return h.NotAfter != nil && !now.Before(h.NotAfter.Time)
	})
	for len(hashes) > maxSecretHashes {
		oldest := -1
		for i, h := range hashes {
			if h.NotAfter != nil && (oldest < 0 || h.NotAfter.Before(hashes[oldest].NotAfter)) {
				oldest = i
			}
		}
		hashes = slices.Delete(hashes, oldest, oldest+1)
	}
	if len(hashes) == 0 {
		hashes = nil
	}
	oc.Status.SecretHashes = hashes
}

// reconcileSecret keeps the app's Secret and status.secretHashes
// consistent, by the rules in the OAuthClient type's documentation:
//
//   - no Secret: generate one (if a hash was published before, the Secret
//     was deleted: every earlier hash is dropped at once);
//   - a Secret without client_secret: generate into it, likewise;
//   - a client_secret whose hash is not the current one: someone else put
//     it there (adoption, an edit, an external rotation). A strong one is
//     adopted and the previous secret keeps working for the grace period;
//     a weak one is refused with WeakSecret and nothing changes;
//   - a Secret the operator generated rotates on the interval or when the
//     rotate-secret annotation changes; an adopted one is rotated at its
//     source, never overwritten.
func (r *OAuthClientReconciler) reconcileSecret(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer) (ctrlresult.Result, error) {
	now := r.Clock.Now()
	name := SecretName(oc)
	grace := gracePeriod(oc)
	rotateWanted := oc.Annotations[oauthv1.AnnotationRotateSecret]

	sec := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: oc.Namespace, Name: name}, sec)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrlresult.Result{}, fmt.Errorf("getting Secret %s: %w", name, err)
	}
	if exists {
		if msg := secretConflict(sec, oc); msg != "" {
			notReady(&oc.Status.Conditions, oc.Generation, kindOAuthClient, ReasonSecretConflict, msg+"; choose another spec.secretName")
			return ctrlresult.Result{}, nil
		}
	}
	if previous := oc.Status.SecretName; previous != "" && previous != name {
		// spec.secretName changed: the old Secret goes like a deleted one,
		// and so does its secret (the new Secret gets a new one, or adopts).
		if err := r.releaseSecret(ctx, oc, previous); err != nil {
			return ctrlresult.Result{}, err
		}
		oc.Status.SecretHashes = nil
	}
	oc.Status.SecretName = name
	if !exists {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: oc.Namespace, Name: name}}
	}
	before := sec.DeepCopy()
	owned := !exists || metav1.IsControlledBy(sec, oc) || (metav1.GetControllerOf(sec) == nil && len(sec.Data[oauthv1.SecretKeyClientSecret]) == 0)
	current := currentHash(oc.Status.SecretHashes)
	value := string(sec.Data[oauthv1.SecretKeyClientSecret])

	var plaintext string
	switch {
	case value == "":
		var err error
		if plaintext, err = clientsecret.Generate(); err != nil {
			return ctrlresult.Result{}, err
		}
		// Any earlier secret was deleted with its Secret (or its key):
		// deletion revokes it, and those still in their grace period, at once.
		oc.Status.SecretHashes = []oauthv1.SecretHash{{Hash: clientsecret.Hash(plaintext)}}
		oc.Status.LastRotationTime = &metav1.Time{Time: now}
		setAnnotation(sec, annotationRotateSecretHandled, rotateWanted)
		note := "generated a client secret in Secret %s"
		if current != "" {
			note = "the client secret in Secret %s was deleted: generated a new one and revoked the old one"
		}
		r.event(ctx, oc, corev1.EventTypeNormal, EventGenerated, note, name)
		operatormetrics.ClientSecrets.WithLabelValues(operatormetrics.SecretGenerated).Inc()
	case clientsecret.Hash(value) == current:
		plaintext = value
	case current == "" && metav1.IsControlledBy(sec, oc):
		// The operator wrote this secret but its status update was lost:
		// take it back without a strength check (it generated it).
		plaintext = value
		replaceCurrent(oc, clientsecret.Hash(value), time.Time{})
		if oc.Status.LastRotationTime == nil {
			oc.Status.LastRotationTime = &metav1.Time{Time: now}
		}
	default:
		if err := clientsecret.CheckAdoptable(value); err != nil {
			msg := fmt.Sprintf("Secret %s: %v", name, err)
			if c := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady); c == nil || c.Reason != ReasonWeakSecret {
				r.event(ctx, oc, corev1.EventTypeWarning, EventWeakSecret, "%s", msg)
			}
			notReady(&oc.Status.Conditions, oc.Generation, kindOAuthClient, ReasonWeakSecret, msg)
			// Label the Secret so that a fix to it brings us back.
			if !hasLabels(sec, oc) {
				setLabels(sec, oc)
				if err := r.Patch(ctx, sec, mergeFrom(before)); err != nil {
					return ctrlresult.Result{}, fmt.Errorf("labelling Secret %s: %w", name, err)
				}
			}
			return ctrlresult.Result{}, nil
		}
		plaintext = value
		graceUntil := time.Time{}
		if current != "" {
			graceUntil = now.Add(grace)
		}
		replaceCurrent(oc, clientsecret.Hash(value), graceUntil)
		oc.Status.LastRotationTime = &metav1.Time{Time: now}
		setAnnotation(sec, annotationRotateSecretHandled, rotateWanted)
		note := "adopted the client secret found in Secret %s"
		if current != "" {
			note = "the client secret in Secret %s changed outside the operator: adopted it; the previous one is accepted for the grace period"
		}
		r.event(ctx, oc, corev1.EventTypeNormal, EventAdopted, note, name)
		operatormetrics.ClientSecrets.WithLabelValues(operatormetrics.SecretAdopted).Inc()
	}

	// Rotation.
	var nextRotation time.Time
	handled, recorded := sec.Annotations[annotationRotateSecretHandled]
	onDemand := rotateWanted != "" && (!recorded || handled != rotateWanted)
	if owned {
		if r := oc.Spec.SecretRotation; r != nil && r.Interval != nil && oc.Status.LastRotationTime != nil {
			nextRotation = oc.Status.LastRotationTime.Add(r.Interval.Duration)
		}
		due := !nextRotation.IsZero() && !now.Before(nextRotation)
		if (onDemand && recorded) || due {
			var err error
			if plaintext, err = clientsecret.Generate(); err != nil {
				return ctrlresult.Result{}, err
			}
			replaceCurrent(oc, clientsecret.Hash(plaintext), now.Add(grace))
			oc.Status.LastRotationTime = &metav1.Time{Time: now}
			if !nextRotation.IsZero() {
				nextRotation = now.Add(oc.Spec.SecretRotation.Interval.Duration)
			}
			r.event(ctx, oc, corev1.EventTypeNormal, EventRotated,
				"rotated the client secret in Secret %s; the previous one is accepted for %s", name, grace)
			operatormetrics.ClientSecrets.WithLabelValues(operatormetrics.SecretRotated).Inc()
		}
	} else if onDemand && recorded {
		r.event(ctx, oc, corev1.EventTypeWarning, EventRotationExternal,
			"the client secret in Secret %s is adopted: rotate it where it comes from; the operator never overwrites it", name)
	}
	setAnnotation(sec, annotationRotateSecretHandled, rotateWanted)

	// Write the Secret.
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	ep := endpoints.For(srv.Spec.Issuer)
	sec.Data[oauthv1.SecretKeyClientID] = []byte(oc.Status.ClientID)
	sec.Data[oauthv1.SecretKeyIssuer] = []byte(srv.Spec.Issuer)
	sec.Data[oauthv1.SecretKeyAuthorizationEndpoint] = []byte(ep.Authorization)
	sec.Data[oauthv1.SecretKeyTokenEndpoint] = []byte(ep.Token)
	sec.Data[oauthv1.SecretKeyJWKSURI] = []byte(ep.JWKS)
	if owned {
		sec.Data[oauthv1.SecretKeyClientSecret] = []byte(plaintext)
		if !exists {
			sec.Type = corev1.SecretTypeOpaque // immutable once created
		}
		if metav1.GetControllerOf(sec) == nil {
			if err := controllerutil.SetControllerReference(oc, sec, r.Scheme()); err != nil {
				return ctrlresult.Result{}, err
			}
		}
	}
	setLabels(sec, oc)
	switch {
	case !exists:
		if err := r.Create(ctx, sec); err != nil {
			return ctrlresult.Result{}, fmt.Errorf("creating Secret %s: %w", name, err)
		}
	case !equality.Semantic.DeepEqual(before, sec):
		if err := r.Patch(ctx, sec, mergeFrom(before)); err != nil {
			return ctrlresult.Result{}, fmt.Errorf("updating Secret %s: %w", name, err)
		}
	}

	pruneHashes(oc, now)
	setCondition(&oc.Status.Conditions, oc.Generation, oauthv1.ConditionReady, true, ReasonReady,
		fmt.Sprintf("client %s is registered with AuthorizationServer %s; its credentials are in Secret %s",
			oc.Status.ClientID, serverKeyOf(oc), name))
	var expiries []time.Time
	for _, h := range oc.Status.SecretHashes {
		if h.NotAfter != nil {
			expiries = append(expiries, h.NotAfter.Time)
		}
	}
	return requeueAt(now, append(expiries, nextRotation)...), nil
}

func (r *OAuthClientReconciler) event(ctx context.Context, oc *oauthv1.OAuthClient, typ, reason, note string, args ...any) {
	emit(ctx, r.Recorder, oc, typ, reason, note, args...)
}

func setAnnotation(o metav1.Object, k, v string) {
	a := maps.Clone(o.GetAnnotations())
	if a == nil {
		a = map[string]string{}
	}
	a[k] = v
	o.SetAnnotations(a)
}

func setLabels(sec *corev1.Secret, oc *oauthv1.OAuthClient) {
	if sec.Labels == nil {
		sec.Labels = map[string]string{}
	}
	sec.Labels[oauthv1.LabelManagedBy] = oauthv1.LabelManagedByValue
	sec.Labels[oauthv1.LabelClient] = oc.Name
}

func hasLabels(sec *corev1.Secret, oc *oauthv1.OAuthClient) bool {
	return sec.Labels[oauthv1.LabelManagedBy] == oauthv1.LabelManagedByValue && sec.Labels[oauthv1.LabelClient] == oc.Name
}

// secretConflict says why a Secret cannot hold this client's credentials,
// or "": it belongs to another OAuthClient (two clients would share, and
// fight over, one secret), or to another controller and has no
// client_secret to adopt.
func secretConflict(sec *corev1.Secret, oc *oauthv1.OAuthClient) string {
	if other := sec.Labels[oauthv1.LabelClient]; other != "" && other != oc.Name {
		return fmt.Sprintf("Secret %s holds the credentials of OAuthClient %s", sec.Name, other)
	}
	ctl := metav1.GetControllerOf(sec)
	if ctl == nil || ctl.UID == oc.UID {
		return ""
	}
	if ctl.Kind == kindOAuthClient && ctl.APIVersion == oauthv1.GroupVersion.String() {
		return fmt.Sprintf("Secret %s holds the credentials of OAuthClient %s", sec.Name, ctl.Name)
	}
	if len(sec.Data[oauthv1.SecretKeyClientSecret]) == 0 {
		return fmt.Sprintf("Secret %s belongs to %s %s and holds no client_secret to adopt", sec.Name, ctl.Kind, ctl.Name)
	}
	return ""
}
