package controllers

import (
	"context"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers/internal/queue"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

// SetupWithManager watches OAuthClients and everything their readiness
// depends on: their Secrets, their server, the Scopes they request (via a
// field index) and their namespace's labels (for Selector policies).
//
// A change elsewhere re-queues only the clients whose outcome it can
// change, behind the clients somebody just created or edited (see the
// priorities in package queue).
func (r *OAuthClientReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("oauthclient").
		WithOptions(opts).
		Watches(&oauthv1.OAuthClient{}, clientEvents{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.secretToClients)).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.configMapToClients)).
		Watches(&oauthv1.AuthorizationServer{}, queue.FanOut[client.Object]{MapFn: r.serverToClients, Changed: r.serverChanged}).
		Watches(&oauthv1.Scope{}, queue.FanOut[client.Object]{MapFn: r.scopeToClients, Changed: r.scopeChanged}).
		Watches(&corev1.Namespace{}, queue.FanOut[client.Object]{MapFn: r.namespaceToClients, Changed: r.namespaceChanged})
	if r.saCache != nil {
		// A ServiceAccount created, deleted or re-created (a new UID)
		// changes the clients that authenticate as it, at once.
		b = b.WatchesRawSource(source.Kind(r.saCache, serviceAccountMetadata(),
			handler.TypedEnqueueRequestsFromMapFunc(r.serviceAccountToClients)))
	}
	return b.Complete(tracing.Reconciler("OAuthClient", r))
}

// serviceAccountMetadata is an empty ServiceAccount of which only the
// metadata is read.
func serviceAccountMetadata() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}}
}

// serviceAccountToClients maps a ServiceAccount to the clients that
// authenticate as it.
func (r *OAuthClientReconciler) serviceAccountToClients(ctx context.Context, sa *metav1.PartialObjectMetadata) []reconcile.Request {
	return clientsMatching(ctx, r.Client, nil, client.MatchingFields{indexClientServiceAccount: sa.Namespace + "/" + sa.Name})
}

// configMapToClients maps a connection ConfigMap to its client (its client
// label: the cache holds only ConfigMaps the operator labelled).
func (r *OAuthClientReconciler) configMapToClients(_ context.Context, o client.Object) []reconcile.Request {
	if name := o.GetLabels()[oauthv1.LabelClient]; name != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
	}
	return nil
}

// clientEvents queues an OAuthClient itself: at queue.PriorityUser when a person
// made, changed or deleted it, at queue.PriorityFanOut for the initial list,
// resyncs and the echoes of the operator's own status writes.
type clientEvents struct{}

func (clientEvents) Create(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	p := queue.PriorityUser
	if e.IsInInitialList {
		p = queue.PriorityFanOut
	}
	queue.Add(q, p, requestOf(e.Object))
}

func (clientEvents) Update(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	p := queue.PriorityFanOut
	o, n := e.ObjectOld, e.ObjectNew
	if o.GetResourceVersion() != n.GetResourceVersion() && (o.GetGeneration() != n.GetGeneration() ||
		!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) || !maps.Equal(o.GetAnnotations(), n.GetAnnotations()) ||
		!slices.Equal(o.GetFinalizers(), n.GetFinalizers())) {
		p = queue.PriorityUser
	}
	queue.Add(q, p, requestOf(n))
}

// Delete: the operator deletes the client's own Secret now (cleanupDeleted),
// ahead of any fan-out, so that its plaintext does not outlive it long.
func (clientEvents) Delete(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	queue.Add(q, queue.PriorityUser, requestOf(e.Object))
}

func (clientEvents) Generic(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	queue.Add(q, queue.PriorityFanOut, requestOf(e.Object))
}

func requestOf(o client.Object) reconcile.Request {
	return reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}
}

// secretToClients maps a Secret to the client it belongs to (its client
// label: the cache holds only Secrets the operator labelled) and to any
// client waiting for that Secret name (one with a SecretConflict).
func (r *OAuthClientReconciler) secretToClients(ctx context.Context, o client.Object) []reconcile.Request {
	reqs := clientsMatching(ctx, r.Client, nil, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexClientSecret: o.GetName()})
	if name := o.GetLabels()[oauthv1.LabelClient]; name != "" {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}})
	}
	return reqs
}

func (r *OAuthClientReconciler) serverToClients(ctx context.Context, o client.Object) []reconcile.Request {
	return r.serverClients(ctx, o.(*oauthv1.AuthorizationServer), nil)
}

func (r *OAuthClientReconciler) serverClients(ctx context.Context, srv *oauthv1.AuthorizationServer, keep func(*oauthv1.OAuthClient) bool) []reconcile.Request {
	return clientsMatching(ctx, r.Client, keep, client.MatchingFields{indexClientServer: srv.ServerKey()})
}

// serverChanged: of a server, clients depend on its issuer (the Secret's
// metadata) and its allowedClients policy (Ready), nothing else; a policy
// change concerns only the namespaces whose admission it changes.
func (r *OAuthClientReconciler) serverChanged(ctx context.Context, o, n client.Object) []reconcile.Request {
	old, srv := o.(*oauthv1.AuthorizationServer), n.(*oauthv1.AuthorizationServer)
	switch {
	case old.Spec.Issuer != srv.Spec.Issuer || !old.DeletionTimestamp.Equal(srv.DeletionTimestamp):
		return r.serverClients(ctx, srv, nil)
	case !equality.Semantic.DeepEqual(old.Spec.WorkloadIdentity.TrustedIssuers, srv.Spec.WorkloadIdentity.TrustedIssuers):
		// Which issuers exist and whom they admit: only clients bound to one.
		return r.serverClients(ctx, srv, func(oc *oauthv1.OAuthClient) bool {
			return oc.Spec.Authentication != nil && oc.Spec.Authentication.Federated != nil
		})
	case !equality.Semantic.DeepEqual(old.Spec.AllowedClients, srv.Spec.AllowedClients):
		return r.serverClients(ctx, srv, r.admissionChanged(ctx, old.Spec.AllowedClients.Namespaces, srv.Spec.AllowedClients.Namespaces, srv.Namespace))
	}
	return nil
}

// scopeToClients maps a Scope to the clients that request its name or
// name its audience.
func (r *OAuthClientReconciler) scopeToClients(ctx context.Context, o client.Object) []reconcile.Request {
	return r.scopeClients(ctx, o.(*oauthv1.Scope), nil)
}

func (r *OAuthClientReconciler) scopeClients(ctx context.Context, s *oauthv1.Scope, keep func(*oauthv1.OAuthClient) bool) []reconcile.Request {
	server := s.Namespace + "/" + s.Spec.ServerRef.Name
	reqs := clientsMatching(ctx, r.Client, keep, client.MatchingFields{indexClientScope: server + "/" + string(s.Spec.Name)})
	if s.Spec.Audience != "" {
		reqs = append(reqs, clientsMatching(ctx, r.Client, keep, client.MatchingFields{indexClientAudience: server + "/" + string(s.Spec.Audience)})...)
	}
	return reqs
}

// scopeChanged: a client's outcome depends on a Scope's name, audience
// and allowedClients policy, not on its description or consent setting
// (the token server reads those itself). A policy change concerns only the
// namespaces whose admission it changes.
func (r *OAuthClientReconciler) scopeChanged(ctx context.Context, o, n client.Object) []reconcile.Request {
	old, s := o.(*oauthv1.Scope), n.(*oauthv1.Scope)
	switch {
	case old.Spec.Name != s.Spec.Name || old.Spec.Audience != s.Spec.Audience || old.Spec.ServerRef != s.Spec.ServerRef ||
		!old.DeletionTimestamp.Equal(s.DeletionTimestamp):
		return append(r.scopeClients(ctx, old, nil), r.scopeClients(ctx, s, nil)...)
	case !equality.Semantic.DeepEqual(old.Spec.AllowedClients, s.Spec.AllowedClients):
		return r.scopeClients(ctx, s, r.admissionChanged(ctx, old.Spec.AllowedClients.Namespaces, s.Spec.AllowedClients.Namespaces, s.Namespace))
	}
	return nil
}

// admissionChanged keeps the clients whose namespace one of the two
// policies admits and the other does not. Each namespace is decided once.
func (r *OAuthClientReconciler) admissionChanged(ctx context.Context, old, new oauthv1.ClientNamespaces, home string) func(*oauthv1.OAuthClient) bool {
	decided := map[string]bool{}
	return func(oc *oauthv1.OAuthClient) bool {
		changed, ok := decided[oc.Namespace]
		if !ok {
			before, errB := r.admitsNamespace(ctx, old, home, oc.Namespace)
			after, errA := r.admitsNamespace(ctx, new, home, oc.Namespace)
			changed = errB != nil || errA != nil || (before == "") != (after == "")
			decided[oc.Namespace] = changed
		}
		return changed
	}
}

// namespaceChanged: only labels matter, to Selector policies.
func (r *OAuthClientReconciler) namespaceChanged(ctx context.Context, o, n client.Object) []reconcile.Request {
	if maps.Equal(o.GetLabels(), n.GetLabels()) {
		return nil
	}
	return r.namespaceToClients(ctx, n)
}

func (r *OAuthClientReconciler) namespaceToClients(ctx context.Context, o client.Object) []reconcile.Request {
	return clientsMatching(ctx, r.Client, nil, client.InNamespace(o.GetName()))
}
