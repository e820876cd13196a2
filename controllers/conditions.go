package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/operatormetrics"
)

// Condition reasons. Each names what a user can look at or fix.
const (
	ReasonReady               = "Ready"
	ReasonServerNotFound      = "ServerNotFound"
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	ReasonUnknownScope        = "UnknownScope"
	ReasonScopeNotAllowed     = "ScopeNotAllowed"
	ReasonAudienceNotAllowed  = "AudienceNotAllowed"
	ReasonWeakSecret          = "WeakSecret"
	ReasonSecretConflict      = "SecretConflict"
	ReasonSecretNotAdoptable  = "SecretNotAdoptable"
	ReasonInvalidSecretName   = "InvalidSecretName"
	ReasonIssuerConflict      = "IssuerConflict"
	ReasonAccepted            = "Accepted"
	ReasonConflict            = "Conflict"
	ReasonBuiltinScope        = "BuiltinScope"
	ReasonKeysReady           = "KeysReady"
	ReasonInvalidKeys         = "InvalidKeys"
	ReasonUnsupportedReplicas = "UnsupportedReplicas"
	ReasonAvailable           = "Available"
	ReasonProgressing         = "Progressing"
	ReasonScaledToZero        = "ScaledToZero"
	ReasonDeploymentFailed    = "DeploymentFailed"
)

// The part conditions of an AuthorizationServer; Ready summarizes them
// (summarizeServerReady).
const (
	// ConditionAccepted is False when the server cannot be run at all,
	// e.g. another server already has its issuer.
	ConditionAccepted = "Accepted"
	// ConditionKeysReady is True when the server has an active signing key
	// and the JWKS publishes it.
	ConditionKeysReady = "KeysReady"
	// ConditionAvailable is True when the token server answers: its
	// Deployment is available, or the server outside the cluster is ready.
	ConditionAvailable = "Available"
)

// serverParts are the conditions Ready requires, in the order a user
// should look at them: the first one that is not True explains Ready.
var serverParts = []string{ConditionAccepted, ConditionKeysReady, ConditionAvailable}

// ReasonReconciling: a part has not been decided yet.
const ReasonReconciling = "Reconciling"

// summarizeServerReady computes Ready from the part conditions, once per
// reconcile, so that no step can overwrite another's verdict: Ready is
// True only when every part is, and otherwise carries the first failing
// part's reason and message.
func summarizeServerReady(srv *oauthv1.AuthorizationServer) {
	var available *metav1.Condition
	for _, typ := range serverParts {
		c := meta.FindStatusCondition(srv.Status.Conditions, typ)
		switch {
		case c == nil:
			setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionReady, false, ReasonReconciling,
				fmt.Sprintf("%s is not known yet", typ))
			return
		case c.Status != metav1.ConditionTrue:
			setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionReady, false, c.Reason, c.Message)
			return
		}
		available = c
	}
	if name, c := brokenIdentityProvider(srv); c != nil {
		setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionReady, false, c.Reason, "identity provider "+name+": "+c.Message)
		return
	}
	setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionReady, true, available.Reason, available.Message)
}

// partFailed sets a part condition False and counts the reason, like
// notReady does for Ready.
func partFailed(conds *[]metav1.Condition, generation int64, typ, reason, message string) {
	setCondition(conds, generation, typ, false, reason, message)
	operatormetrics.ReconcileErrors.WithLabelValues(kindServer, reason).Inc()
}

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

// emit records an Event a user can act on, and logs it too. Notes never
// carry secrets: they name Secrets and keys, not their contents.
func emit(ctx context.Context, rec events.EventRecorder, obj runtime.Object, typ, reason, note string, args ...any) {
	msg := fmt.Sprintf(note, args...)
	log := ctrl.LoggerFrom(ctx)
	if typ == corev1.EventTypeWarning {
		log.Info("warning: "+msg, "reason", reason)
	} else {
		log.Info(msg, "reason", reason)
	}
	if rec != nil {
		rec.Eventf(obj, nil, typ, reason, reason, "%s", msg)
	}
}
