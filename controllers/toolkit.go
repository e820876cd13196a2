package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// The controller toolkit: how every reconciler patches status, finalizers
// and metadata, and finds the objects an event concerns. One way each, so
// that a fix to one (a lost update, a stale read) fixes all three kinds.

// mergeFrom is a merge patch that fails on a concurrent change rather
// than overwrite it. For status it also guards against the informer
// cache: a reconcile that started from a copy older than the operator's
// own last write fails and is retried from a fresh one, instead of acting
// (and publishing hashes) on stale state. Every patch the operator sends
// to an object it does not wholly own (custom resources' status and
// finalizers, app Secrets) is of this kind.
func mergeFrom(before client.Object) client.Patch {
	return client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
}

// patchStatus writes obj's status when it differs from what the reconcile
// started from (orig), and says whether it wrote. Unchanged status costs
// no request: an idle operator, or one restarted over thousands of
// objects, sends nothing. Unchanged means unchanged on the wire: a time
// recomputed with sub-second precision is not a change when the API
// stores seconds, and sending it would be a patch of nothing but the
// resourceVersion.
func patchStatus(ctx context.Context, c client.Client, obj, orig client.Object, before, after any) (bool, error) {
	if sameJSON(before, after) {
		return false, nil
	}
	err := c.Status().Patch(ctx, obj, mergeFrom(orig))
	if apierrors.IsConflict(err) && !sameJSON(before, struct{}{}) {
		err = patchStatusIfUnchanged(ctx, c, obj, before, after)
	}
	if err != nil {
		return false, fmt.Errorf("patching status: %w", err)
	}
	return true, nil
}

// patchStatusIfUnchanged writes the status after a conflict, if the status
// is still the one the reconcile started from: the conflict then came from
// a change to the object's metadata or spec (an annotation, a label, an
// edit), which its own watch event answers, and dropping the status would
// lose what the reconcile did elsewhere. A client's Secret rotated just as
// someone annotated the client would hold a secret no status hash vouches
// for, and the next reconcile would take it for an outside change. A JSON
// patch tests and replaces the status in one step (RFC 6902 §4.6); if the
// status moved, the test fails, the reconcile started from a stale copy,
// and it is retried from a fresh one as before. (A JSON patch cannot test
// that there is no status yet; a first status is not retried, and a
// client's first secret needs no hash to be recognised as its own.)
func patchStatusIfUnchanged(ctx context.Context, c client.Client, obj client.Object, before, after any) error {
	ops, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/status", "value": before},
		{"op": "replace", "path": "/status", "value": after},
	})
	if err != nil {
		return err
	}
	return c.Status().Patch(ctx, obj, client.RawPatch(types.JSONPatchType, ops))
}

// sameJSON says whether a and b serialize alike; cheap when they are
// semantically equal already.
func sameJSON(a, b any) bool {
	if equality.Semantic.DeepEqual(a, b) {
		return true
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// addFinalizer adds name to obj's finalizers, if missing, and says whether
// it wrote.
func addFinalizer(ctx context.Context, c client.Client, obj client.Object, name string) (bool, error) {
	if controllerutil.ContainsFinalizer(obj, name) {
		return false, nil
	}
	before := obj.DeepCopyObject().(client.Object)
	controllerutil.AddFinalizer(obj, name)
	if err := c.Patch(ctx, obj, mergeFrom(before)); err != nil {
		return false, fmt.Errorf("adding finalizer: %w", err)
	}
	return true, nil
}

// removeFinalizer takes name out of obj's finalizers; an object already
// gone is fine.
func removeFinalizer(ctx context.Context, c client.Client, obj client.Object, name string) error {
	if !controllerutil.ContainsFinalizer(obj, name) {
		return nil
	}
	before := obj.DeepCopyObject().(client.Object)
	controllerutil.RemoveFinalizer(obj, name)
	if err := c.Patch(ctx, obj, mergeFrom(before)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("removing finalizer: %w", err)
	}
	return nil
}

// setAnnotation sets one annotation on a copy of o's map, so that a
// "before" copy sharing the map stays as it was.
func setAnnotation(o metav1.Object, k, v string) {
	o.SetAnnotations(withEntry(o.GetAnnotations(), k, v))
}

// setLabel is setAnnotation for labels.
func setLabel(o metav1.Object, k, v string) {
	o.SetLabels(withEntry(o.GetLabels(), k, v))
}

func withEntry(m map[string]string, k, v string) map[string]string {
	m = maps.Clone(m)
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// serverLabels adds the labels of objects the operator makes for a server.
func serverLabels(srv *oauthv1.AuthorizationServer, l map[string]string) map[string]string {
	if l == nil {
		l = map[string]string{}
	}
	l[oauthv1.LabelManagedBy] = oauthv1.LabelManagedByValue
	l[oauthv1.LabelServer] = srv.Name
	return l
}

// requeueAt turns the earliest of times into a RequeueAfter.
func requeueAt(now time.Time, times ...time.Time) ctrl.Result {
	var earliest time.Time
	for _, t := range times {
		if !t.IsZero() && (earliest.IsZero() || t.Before(earliest)) {
			earliest = t
		}
	}
	if earliest.IsZero() {
		return ctrl.Result{}
	}
	d := earliest.Sub(now)
	if d <= 0 {
		d = time.Second
	}
	return ctrl.Result{RequeueAfter: d}
}

// listOf is a list type whose items a mapping function turns into
// requests: OAuthClientList, ScopeList.
type listOf[T any] interface {
	client.ObjectList
	*T
}

// requestsFor lists objects from the cache (with field indexes) and makes
// a reconcile request of each one keep: the objects an event concerns.
// A failed list is logged, as a map function cannot return an error.
func requestsFor[L any, PL listOf[L], I any](ctx context.Context, c client.Reader, items func(PL) []I, key func(*I) client.ObjectKey,
	keep func(*I) bool, opts ...client.ListOption) []reconcile.Request {
	list := PL(new(L))
	if err := c.List(ctx, list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing objects to requeue", "kind", fmt.Sprintf("%T", list))
		return nil
	}
	all := items(list)
	reqs := make([]reconcile.Request, 0, len(all))
	for i := range all {
		if keep == nil || keep(&all[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: key(&all[i])})
		}
	}
	return reqs
}

// clientsMatching lists the OAuthClients an event concerns; keep (if not
// nil) narrows them to those whose outcome the event can change.
func clientsMatching(ctx context.Context, c client.Reader, keep func(*oauthv1.OAuthClient) bool, opts ...client.ListOption) []reconcile.Request {
	return requestsFor(ctx, c, func(l *oauthv1.OAuthClientList) []oauthv1.OAuthClient { return l.Items },
		func(o *oauthv1.OAuthClient) client.ObjectKey { return client.ObjectKeyFromObject(o) }, keep, opts...)
}

// scopesMatching lists the Scopes an event concerns.
func scopesMatching(ctx context.Context, c client.Reader, opts ...client.ListOption) []reconcile.Request {
	return requestsFor(ctx, c, func(l *oauthv1.ScopeList) []oauthv1.Scope { return l.Items },
		func(o *oauthv1.Scope) client.ObjectKey { return client.ObjectKeyFromObject(o) }, nil, opts...)
}
