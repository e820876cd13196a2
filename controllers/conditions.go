package controllers

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/operatormetrics"
)

// Condition reasons. Each names what a user can look at or fix.
const (
	ReasonReady               = "Ready"
	ReasonServerNotFound      = "ServerNotFound"
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	ReasonUnknownScope        = "UnknownScope"
	ReasonWeakSecret          = "WeakSecret"
	ReasonSecretConflict      = "SecretConflict"
	ReasonConflict            = "Conflict"
	ReasonKeysReady           = "KeysReady"
	ReasonInvalidKeys         = "InvalidKeys"
	ReasonUnsupportedReplicas = "UnsupportedReplicas"
	ReasonAvailable           = "Available"
	ReasonProgressing         = "Progressing"
	ReasonScaledToZero        = "ScaledToZero"
	ReasonDeploymentFailed    = "DeploymentFailed"
)

// ConditionKeysReady is True when an AuthorizationServer has an active
// signing key and the JWKS publishes it.
const ConditionKeysReady = "KeysReady"

func setCondition(conds *[]metav1.Condition, generation int64, typ string, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

// notReady sets Ready=False and counts the reason, so that alerts can watch
// for problems users must act on.
func notReady(conds *[]metav1.Condition, generation int64, kind, reason, message string) {
	setCondition(conds, generation, oauthv1.ConditionReady, false, reason, message)
	operatormetrics.ReconcileErrors.WithLabelValues(kind, reason).Inc()
}

// mergeFrom is a merge patch that fails on a concurrent change rather
// than overwrite it.
func mergeFrom(before client.Object) client.Patch {
	return client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
}

// countError counts a reconcile that failed, by the API status reason of
// its error (Conflict, Forbidden, ...), or ReconcileError.
func countError(kind string, err error) {
	if err == nil {
		return
	}
	reason := string(apierrors.ReasonForError(err))
	if reason == "" {
		reason = "ReconcileError"
	}
	operatormetrics.ReconcileErrors.WithLabelValues(kind, reason).Inc()
}
