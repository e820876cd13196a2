package controllers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// The operator's audit lines (package audit). Shared phases write them,
// so that no reconciler step has to remember to:
//   - every Event the operator records goes through auditRecorder, which
//     writes a line for the Events an auditor needs: a signing key
//     published, rotated, removed or lost;
//   - the secret decision's outcome, once written (secretWritten): a
//     client secret generated, adopted or rotated, including a new
//     client's first secret, which gets no Event (auditSecret);
//   - the OAuthClient reconciler's status write (auditAdmission): a
//     client admitted (Ready) or refused (Ready=False and why), once
//     each time the verdict changes.

// auditedReasons are the Event reasons that are audit events.
var auditedReasons = map[string]string{
	EventKeyPublished: audit.EventSigningKey,
	EventKeyRotated:   audit.EventSigningKey,
	EventKeyRemoved:   audit.EventSigningKey,
	EventKeysLost:     audit.EventSigningKey,
}

// auditingRecorder records Events and writes the audited ones to the
// audit log.
type auditingRecorder struct {
	events.EventRecorder
	log *audit.Log
}

// auditRecorder wraps rec so that audited Events are also audit lines;
// rec itself when there is no audit log.
func auditRecorder(rec events.EventRecorder, log *audit.Log) events.EventRecorder {
	if log == nil {
		return rec
	}
	return auditingRecorder{EventRecorder: rec, log: log}
}

// Eventf records the Event, then its audit line. Notes never carry a
// secret (emit), so neither does the line.
func (r auditingRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
	ev, ok := auditedReasons[reason]
	if !ok {
		return
	}
	e := auditEventFor(regarding)
	e.Event, e.Reason, e.Message = ev, reason, fmt.Sprintf(note, args...)
	e.Failure = eventtype == corev1.EventTypeWarning
	r.log.Record(&e)
}

// auditEventFor fills in what a line says of the object it is about.
func auditEventFor(obj runtime.Object) audit.Event {
	e := audit.Event{}
	m, err := meta.Accessor(obj)
	if err != nil {
		return e
	}
	ref := &audit.ObjectRef{Namespace: m.GetNamespace(), Name: m.GetName(),
		APIGroup: oauthv1.GroupVersion.Group, APIVersion: oauthv1.GroupVersion.Version}
	switch o := obj.(type) {
	case *oauthv1.OAuthClient:
		ref.Resource = "oauthclients"
		e.ClientID = ClientID(o)
	case *oauthv1.AuthorizationServer:
		ref.Resource = "authorizationservers"
		e.Issuer = o.Spec.Issuer
	case *oauthv1.Scope:
		ref.Resource = "scopes"
	default:
		ref.APIGroup, ref.APIVersion = "", ""
	}
	e.Object = ref
	return e
}

// auditSecret writes the line of one outcome of the secret decision
// (e.reason, or only e.counted for a new client's first secret).
func auditSecret(log *audit.Log, oc *oauthv1.OAuthClient, e secretEvent) {
	if log == nil || (e.reason == "" && e.counted == "") {
		return
	}
	l := auditEventFor(oc)
	l.Event, l.Reason, l.Message = audit.EventClientSecret, e.reason, e.note
	if l.Reason == "" {
		l.Reason, l.Message = EventGenerated, "generated the client's first secret into Secret "+SecretName(oc)
	}
	l.Failure = e.typ == corev1.EventTypeWarning
	log.Record(&l)
}

// auditAdmission writes a line when a status write changed whether the
// client is served: admitted (Ready=True) or refused (Ready=False, with
// the reason). A status written again with the same verdict is no news.
func auditAdmission(log *audit.Log, before, after *oauthv1.OAuthClient) {
	if log == nil {
		return
	}
	now := meta.FindStatusCondition(after.Status.Conditions, oauthv1.ConditionReady)
	if now == nil {
		return
	}
	if was := meta.FindStatusCondition(before.Status.Conditions, oauthv1.ConditionReady); was != nil &&
		was.Status == now.Status && was.Reason == now.Reason {
		return
	}
	e := auditEventFor(after)
	e.Event, e.Reason, e.Message = audit.EventClientAdmission, now.Reason, now.Message
	e.Failure = now.Status != metav1.ConditionTrue
	log.Record(&e)
}
