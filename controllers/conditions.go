package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/operatormetrics"
)

// serverParts are the conditions Ready requires, in the order a user
// should look at them: the first one that is not True explains Ready.
var serverParts = []string{oauthv1.ConditionAccepted, oauthv1.ConditionKeysReady, oauthv1.ConditionAvailable}

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
			setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionReady, false, oauthv1.ReasonReconciling,
				fmt.Sprintf("%s is not known yet", typ))
			return
		case c.Status != metav1.ConditionTrue:
			setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionReady, false, c.Reason, c.Message)
			return
		}
		available = c
	}
	if c := brokenIdentityProvider(srv); c != nil {
		setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionReady, false, c.Reason, conditionAbout(c.Type)+c.Message)
		return
	}
	setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionReady, true, available.Reason, available.Message)
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

// failed sets condition typ of obj False for reason, with message, and
// counts the reason (gatehouse_reconcile_errors_total{kind,reason}), so
// that alerts can watch for what users must fix. It reports whether the
// failure is news: the condition was not already False for this reason.
func failed(obj client.Object, conds *[]metav1.Condition, typ, reason, message string) bool {
	prev := meta.FindStatusCondition(*conds, typ)
	news := prev == nil || prev.Status != metav1.ConditionFalse || prev.Reason != reason
	setCondition(conds, obj.GetGeneration(), typ, false, reason, message)
	operatormetrics.ReconcileErrors.WithLabelValues(kindOf(obj), reason).Inc()
	return news
}

// failedWarn is failed, and a Warning Event of the reason when the failure
// is news: a broken object warns once, not on every reconcile or recheck.
func failedWarn(ctx context.Context, rec events.EventRecorder, obj client.Object, conds *[]metav1.Condition, typ, reason, message string) {
	if failed(obj, conds, typ, reason, message) {
		emit(ctx, rec, obj, corev1.EventTypeWarning, reason, "%s%s", conditionAbout(typ), message)
	}
}

// conditionAbout starts a message of condition typ where it stands on its
// own (Ready's summary, an Event): the identity provider it is about, or
// nothing.
func conditionAbout(typ string) string {
	if name, ok := strings.CutPrefix(typ, oauthv1.ConditionIdentityProviderPrefix); ok {
		return "identity provider " + name + ": "
	}
	return ""
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *oauthv1.AuthorizationServer:
		return kindServer
	case *oauthv1.OAuthClient:
		return kindOAuthClient
	case *oauthv1.Scope:
		return kindScope
	}
	return fmt.Sprintf("%T", obj)
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
