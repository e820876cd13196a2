package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// Apps that read their client secret from environment variables (envFrom,
// secretKeyRef) never see a rotation: the kubelet resolves those once,
// when the container starts. A workload that opts in, with the annotation
// oauth.gatehouse.dev/restart-on-secret-rotation naming its OAuthClients,
// is rolled the way `kubectl rollout restart` does it, by a change to its
// pod template's annotations, as soon as one of those clients' current
// secret changes: well inside the grace period during which the old secret
// still works. Nothing is touched that did not opt in.

// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;watch;patch

// Event reasons on workloads.
const (
	EventWorkloadRestarted = "RestartedForClientSecret"
	EventWorkloadNoClient  = "OAuthClientNotFound"
)

// indexWorkloadClient: workload metadata by "<namespace>/<client>" for each
// OAuthClient its opt-in annotation names.
const indexWorkloadClient = "oauth.gatehouse.dev/workload-client"

// rolloutKinds are the workloads that may opt in.
var rolloutKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
}

// WorkloadRolloutReconciler rolls the opted-in workloads of one kind when
// the secret of an OAuthClient they name changes. It reads workloads from
// a metadata-only cache trimmed to the two annotations it uses, and
// OAuthClients from the manager's cache; it only ever patches.
type WorkloadRolloutReconciler struct {
	// Client reads OAuthClients (the manager's cache) and patches
	// workloads.
	Client   client.Client
	Recorder events.EventRecorder
	// Kind is the workload kind this reconciler handles.
	Kind      schema.GroupVersionKind
	workloads cache.Cache
}

// workloadCache is a cache of the opt-in workloads' metadata: every
// Deployment, StatefulSet and DaemonSet in the operator's namespaces, of
// which only name, namespace, UID, resourceVersion and the two Gatehouse
// annotations are kept (trimWorkload), a few hundred bytes each.
func workloadCache(mgr ctrl.Manager, namespaces []string) (cache.Cache, error) {
	opts := cache.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), DefaultTransform: trimWorkload}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	c, err := cache.New(mgr.GetConfig(), opts)
	if err != nil {
		return nil, fmt.Errorf("workload cache: %w", err)
	}
	for _, gvk := range rolloutKinds {
		if err := c.IndexField(context.Background(), workloadMetadata(gvk), indexWorkloadClient, func(o client.Object) []string {
			var keys []string
			for _, name := range optedInClients(o) {
				keys = append(keys, o.GetNamespace()+"/"+name)
			}
			return keys
		}); err != nil {
			return nil, fmt.Errorf("workload cache: %w", err)
		}
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("workload cache: %w", err)
	}
	return c, nil
}

// trimWorkload keeps of a workload's metadata what the rollout reads.
func trimWorkload(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	keep := map[string]string{}
	for _, k := range []string{oauthv1.AnnotationRestartOnSecretRotation, oauthv1.AnnotationClientSecretRevision} {
		if v, ok := m.Annotations[k]; ok {
			keep[k] = v
		}
	}
	m.ObjectMeta = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, Annotations: keep}
	return m, nil
}

func workloadMetadata(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
}

// optedInClients are the OAuthClient names a workload's opt-in annotation
// lists (comma-separated), sorted, without repeats or invalid names.
func optedInClients(o client.Object) []string {
	v, ok := o.GetAnnotations()[oauthv1.AnnotationRestartOnSecretRotation]
	if !ok {
		return nil
	}
	var names []string
	for n := range strings.SplitSeq(v, ",") {
		if n = strings.TrimSpace(n); n != "" && len(validation.IsDNS1123Subdomain(n)) == 0 && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// SetupWithManager watches this kind's workloads in the metadata cache and
// the OAuthClients they name.
func (r *WorkloadRolloutReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("rollout-"+strings.ToLower(r.Kind.Kind)).
		WithOptions(opts).
		WatchesRawSource(source.Kind(r.workloads, workloadMetadata(r.Kind),
			&handler.TypedEnqueueRequestForObject[*metav1.PartialObjectMetadata]{})).
		Watches(&oauthv1.OAuthClient{}, handler.EnqueueRequestsFromMapFunc(r.clientToWorkloads)).
		Complete(r)
}

// clientToWorkloads maps an OAuthClient to the workloads of this kind that
// name it.
func (r *WorkloadRolloutReconciler) clientToWorkloads(ctx context.Context, o client.Object) []reconcile.Request {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(r.Kind.GroupVersion().WithKind(r.Kind.Kind + "List"))
	if err := r.workloads.List(ctx, list, client.MatchingFields{indexWorkloadClient: o.GetNamespace() + "/" + o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing workloads that name an OAuthClient", "client", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, w := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: w.Namespace, Name: w.Name}})
	}
	return reqs
}

// Reconcile brings one opted-in workload to the revision of its clients'
// current secrets: if the revision recorded on it differs, its pod
// template (and its own metadata, for the record) get the new one, which
// rolls it.
func (r *WorkloadRolloutReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	w := workloadMetadata(r.Kind)
	if err := r.workloads.Get(ctx, req.NamespacedName, w); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	names := optedInClients(w)
	if len(names) == 0 {
		return ctrl.Result{}, nil
	}
	revision, found, err := r.secretRevision(ctx, w, names)
	if err != nil || revision == "" || w.Annotations[oauthv1.AnnotationClientSecretRevision] == revision {
		return ctrl.Result{}, err
	}
	if err := r.restart(ctx, w, revision); err != nil {
		return ctrl.Result{}, err
	}
	why := "it opted in for OAuthClient " + strings.Join(found, ", ")
	if w.Annotations[oauthv1.AnnotationClientSecretRevision] != "" {
		why = "the current client secret of an OAuthClient it names (" + strings.Join(found, ", ") + ") changed"
	}
	emit(ctx, r.Recorder, w, corev1.EventTypeNormal, EventWorkloadRestarted, "restarting %s %s: %s", r.Kind.Kind, w.Name, why)
	return ctrl.Result{}, nil
}

// secretRevision is the revision of the named clients' current secrets:
// a hash of each found client's current secret hash (never the secret),
// "" when none of them has one yet. found lists the clients that have one.
func (r *WorkloadRolloutReconciler) secretRevision(ctx context.Context, w *metav1.PartialObjectMetadata, names []string) (string, []string, error) {
	h := sha256.New()
	var found []string
	for _, name := range names {
		oc := &oauthv1.OAuthClient{}
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: name}, oc)
		if apierrors.IsNotFound(err) {
			emit(ctx, r.Recorder, w, corev1.EventTypeWarning, EventWorkloadNoClient,
				"annotation %s names OAuthClient %s, which is not in namespace %s", oauthv1.AnnotationRestartOnSecretRotation, name, w.Namespace)
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("getting OAuthClient %s: %w", name, err)
		}
		if current := currentSecretHash(oc); current != "" {
			_, _ = fmt.Fprintf(h, "%s=%s\n", name, current) // a hash's Write never fails
			found = append(found, name)
		}
	}
	if len(found) == 0 {
		return "", nil, nil
	}
	return hex.EncodeToString(h.Sum(nil))[:16], found, nil
}

// currentSecretHash is the hash of the secret the client's Secret holds
// now, "" for a client without one.
func currentSecretHash(oc *oauthv1.OAuthClient) string {
	for _, h := range oc.Status.SecretHashes {
		if h.NotAfter == nil {
			return h.Hash
		}
	}
	return ""
}

// restart writes revision into the workload's pod template annotations,
// which rolls it like `kubectl rollout restart`, and into its own, which
// records what it was rolled for. A merge patch of those two fields only.
func (r *WorkloadRolloutReconciler) restart(ctx context.Context, w *metav1.PartialObjectMetadata, revision string) error {
	ann := map[string]string{oauthv1.AnnotationClientSecretRevision: revision}
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": ann},
		"spec":     map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": ann}}},
	})
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.Kind)
	u.SetNamespace(w.Namespace)
	u.SetName(w.Name)
	if err := r.Client.Patch(ctx, u, client.RawPatch(types.MergePatchType, body)); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("restarting %s %s: %w", r.Kind.Kind, w.Name, err))
	}
	return nil
}
