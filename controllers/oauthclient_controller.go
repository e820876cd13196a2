package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
)

const (
	// clientFinalizer lets the operator clean up what owner references
	// cannot: the keys it added to an adopted Secret it does not own.
	clientFinalizer = "oauth.gatehouse.dev/oauthclient"
	kindOAuthClient = "OAuthClient"
)

// +kubebuilder:rbac:groups=oauth.gatehouse.dev,resources=oauthclients,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=oauth.gatehouse.dev,resources=oauthclients/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=oauth.gatehouse.dev,resources=oauthclients/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// OAuthClientReconciler assigns client IDs and keeps client secrets: the
// plaintext in the app's Secret, only its hash in status.
type OAuthClientReconciler struct {
	client.Client
	// APIReader reads Secrets the cache does not hold: a Secret to adopt
	// carries none of the operator's labels yet.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     Clock

	// fresh, when set (Setup does), serves reads from the cache unless it
	// may be older than the operator's own writes; otherwise every read
	// goes to APIReader.
	fresh *freshReader
}

// ClientID is the client_id of an OAuthClient: "<namespace>.<name>".
//
// It is derived, not stored, so it is stable across re-reconciles and
// operator restarts and needs no coordination. It is unique per server
// because a namespace and a name identify one object. A namespace is a DNS
// label, which has no '.', so the first '.' splits it back unambiguously;
// neither part can contain ':', so the ID is safe as the user-id of HTTP
// Basic authentication (RFC 7617 §2), where ':' ends the user-id.
func ClientID(oc *oauthv1.OAuthClient) string {
	return oc.Namespace + "." + oc.Name
}

// SetupWithManager watches OAuthClients and everything their readiness
// depends on: their Secrets, their server, the Scopes they request (via a
// field index) and their namespace's labels (for Selector policies).
func (r *OAuthClientReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&oauthv1.OAuthClient{}).
		Named("oauthclient").
		WithOptions(opts).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.secretToClients)).
		Watches(&oauthv1.AuthorizationServer{}, handler.EnqueueRequestsFromMapFunc(r.serverToClients),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&oauthv1.Scope{}, handler.EnqueueRequestsFromMapFunc(r.scopeToClients)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.namespaceToClients),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Complete(r)
}

// secretToClients maps a Secret to the client it belongs to and to any
// client that wants that Secret name (one waiting on a SecretConflict).
func (r *OAuthClientReconciler) secretToClients(ctx context.Context, o client.Object) []reconcile.Request {
	reqs := r.clientsMatching(ctx, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexClientSecret: o.GetName()})
	if name := o.GetLabels()[oauthv1.LabelClient]; name != "" {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}})
	}
	return reqs
}

func (r *OAuthClientReconciler) serverToClients(ctx context.Context, o client.Object) []reconcile.Request {
	return r.clientsMatching(ctx, client.MatchingFields{indexClientServer: o.GetNamespace() + "/" + o.GetName()})
}

func (r *OAuthClientReconciler) scopeToClients(ctx context.Context, o client.Object) []reconcile.Request {
	s := o.(*oauthv1.Scope)
	server := s.Namespace + "/" + s.Spec.ServerRef.Name
	reqs := r.clientsMatching(ctx, client.MatchingFields{indexClientScope: server + "/" + string(s.Spec.Name)})
	if s.Spec.Audience != "" {
		reqs = append(reqs, r.clientsMatching(ctx, client.MatchingFields{indexClientAudience: server + "/" + string(s.Spec.Audience)})...)
	}
	return reqs
}

func (r *OAuthClientReconciler) namespaceToClients(ctx context.Context, o client.Object) []reconcile.Request {
	return r.clientsMatching(ctx, client.InNamespace(o.GetName()))
}

func (r *OAuthClientReconciler) clientsMatching(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var list oauthv1.OAuthClientList
	if err := r.List(ctx, &list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing OAuthClients to requeue")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, oc := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&oc)})
	}
	return reqs
}

// Reconcile follows the cluster-api skeleton: fetch, finalizer, deferred
// status patch, then reconcileDelete or reconcile.
func (r *OAuthClientReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	defer func() { countError(kindOAuthClient, retErr) }()
	// Never from a cached copy older than the operator's own last write:
	// secret decisions compare the Secret with status.secretHashes, and a
	// stale status would look like an outside change (see freshReader).
	oc := &oauthv1.OAuthClient{}
	if err := r.read(ctx, req.NamespacedName, oc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !oc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, oc)
	}
	if !controllerutil.ContainsFinalizer(oc, clientFinalizer) {
		before := oc.DeepCopy()
		controllerutil.AddFinalizer(oc, clientFinalizer)
		if err := r.Patch(ctx, oc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
		r.wrote(oc)
	}

	orig := oc.DeepCopy()
	defer func() {
		oc.Status.ObservedGeneration = oc.Generation
		if equality.Semantic.DeepEqual(orig.Status, oc.Status) {
			return
		}
		if err := r.Status().Patch(ctx, oc, mergeFrom(orig)); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("patching status: %w", err))
			return
		}
		r.wrote(oc)
	}()
	return r.reconcile(ctx, oc)
}

// read gets an object from the cache when that is as new as the
// operator's last write of it, otherwise from the API server.
func (r *OAuthClientReconciler) read(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	if r.fresh == nil {
		return r.APIReader.Get(ctx, key, obj)
	}
	return r.fresh.Get(ctx, key, obj)
}

// deleted makes reads of a deleted object skip the cache until it, too,
// has seen the deletion.
func (r *OAuthClientReconciler) deleted(obj client.Object) {
	if r.fresh != nil {
		obj.SetResourceVersion("")
		r.fresh.remember(obj)
	}
}

// wrote records the version a write returned; see freshReader.
func (r *OAuthClientReconciler) wrote(obj client.Object) {
	if r.fresh != nil {
		r.fresh.remember(obj)
	}
}

func (r *OAuthClientReconciler) reconcile(ctx context.Context, oc *oauthv1.OAuthClient) (ctrl.Result, error) {
	oc.Status.ClientID = ClientID(oc)
	srv, problem, err := r.resolve(ctx, oc)
	if err != nil {
		return ctrl.Result{}, err
	}
	if problem != nil {
		// The watches on servers, Scopes and namespaces bring the client
		// back when the culprit changes: no requeue.
		notReady(&oc.Status.Conditions, oc.Generation, kindOAuthClient, problem.reason, problem.message)
		return ctrl.Result{}, nil
	}
	if oc.Spec.ClientType == oauthv1.ClientPublic {
		oc.Status.SecretName = ""
		oc.Status.SecretHashes = nil
		setCondition(&oc.Status.Conditions, oc.Generation, oauthv1.ConditionReady, true, ReasonReady,
			fmt.Sprintf("public client %s is registered with AuthorizationServer %s", oc.Status.ClientID, serverKeyOf(oc)))
		return ctrl.Result{}, nil
	}
	if p := secretNameProblem(oc); p != nil {
		// Only objects from before the CRD's rule get here; retrying
		// cannot help, so no error and no requeue.
		notReady(&oc.Status.Conditions, oc.Generation, kindOAuthClient, p.reason, p.message)
		return ctrl.Result{}, nil
	}
	return r.reconcileSecret(ctx, oc, srv)
}

// secretNameProblem says why the client's Secret name is not one the API
// server would accept, or nil.
func secretNameProblem(oc *oauthv1.OAuthClient) *problem {
	name := SecretName(oc)
	errs := validation.IsDNS1123Subdomain(name)
	if len(errs) == 0 {
		return nil
	}
	return &problem{ReasonInvalidSecretName, fmt.Sprintf("the Secret name %q is not valid (%s): set spec.secretName, or use a shorter client name",
		name, strings.Join(errs, "; "))}
}

// problem is a reason the client cannot be Ready that the user must fix.
type problem struct{ reason, message string }

// resolve checks the client's references: the server exists, admits the
// client's namespace, and defines every requested scope, and each of those
// Scopes admits the client's namespace.
func (r *OAuthClientReconciler) resolve(ctx context.Context, oc *oauthv1.OAuthClient) (*oauthv1.AuthorizationServer, *problem, error) {
	srv := &oauthv1.AuthorizationServer{}
	key := types.NamespacedName{Namespace: serverNamespace(oc), Name: oc.Spec.ServerRef.Name}
	if err := r.Get(ctx, key, srv); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &problem{ReasonServerNotFound, fmt.Sprintf("AuthorizationServer %s not found", key)}, nil
		}
		return nil, nil, fmt.Errorf("getting AuthorizationServer %s: %w", key, err)
	}
	if p, err := r.admits(ctx, srv, oc.Namespace); p != nil || err != nil {
		return nil, p, err
	}
	var missing, refused []string
	for _, s := range oc.Spec.Scopes {
		if oidc.IsBuiltin(string(s)) {
			continue // every server defines openid, profile, email, groups and offline_access
		}
		var scopes oauthv1.ScopeList
		if err := r.List(ctx, &scopes, client.InNamespace(srv.Namespace),
			client.MatchingFields{indexScopeName: srv.Name + "/" + string(s)}); err != nil {
			return nil, nil, fmt.Errorf("listing Scopes: %w", err)
		}
		if len(scopes.Items) == 0 {
			missing = append(missing, fmt.Sprintf("%q", s))
			continue
		}
		for _, sc := range scopes.Items {
			why, err := r.admitsNamespace(ctx, sc.Spec.AllowedClients.Namespaces, sc.Namespace, oc.Namespace)
			if err != nil {
				return nil, nil, err
			}
			if why != "" {
				refused = append(refused, fmt.Sprintf("%q (Scope %s: %s)", s, sc.Name, why))
			}
		}
	}
	if len(missing) > 0 {
		return nil, &problem{ReasonUnknownScope, fmt.Sprintf("AuthorizationServer %s defines no Scope for %s",
			key, strings.Join(missing, ", "))}, nil
	}
	if len(refused) > 0 {
		return nil, &problem{ReasonScopeNotAllowed, fmt.Sprintf("namespace %q may not request %s; ask the Scope's owner to admit it in spec.allowedClients, or remove the scope",
			oc.Namespace, strings.Join(refused, ", "))}, nil
	}
	if p, err := r.checkAudiences(ctx, oc, srv); p != nil || err != nil {
		return nil, p, err
	}
	return srv, nil, nil
}

// checkAudiences lets a client name in spec.audience only APIs that have
// opened themselves to its namespace: the audience of a Scope of its
// server whose allowedClients admits it. Otherwise any team could mint
// tokens for any API by naming it, the Scopes' policies notwithstanding.
func (r *OAuthClientReconciler) checkAudiences(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer) (*problem, error) {
	if len(oc.Spec.Audience) == 0 {
		return nil, nil
	}
	var scopes oauthv1.ScopeList
	if err := r.List(ctx, &scopes, client.InNamespace(srv.Namespace), client.MatchingFields{indexScopeServer: srv.Name}); err != nil {
		return nil, fmt.Errorf("listing Scopes: %w", err)
	}
	var refused []string
next:
	for _, aud := range oc.Spec.Audience {
		for _, sc := range scopes.Items {
			if sc.Spec.Audience != aud {
				continue
			}
			why, err := r.admitsNamespace(ctx, sc.Spec.AllowedClients.Namespaces, sc.Namespace, oc.Namespace)
			if err != nil {
				return nil, err
			}
			if why == "" {
				continue next
			}
		}
		refused = append(refused, fmt.Sprintf("%q", aud))
	}
	if len(refused) == 0 {
		return nil, nil
	}
	return &problem{ReasonAudienceNotAllowed, fmt.Sprintf(
		"no Scope of AuthorizationServer %s/%s with audience %s admits namespace %q; an audience is allowed when a Scope for that API admits the client in spec.allowedClients",
		srv.Namespace, srv.Name, strings.Join(refused, ", "), oc.Namespace)}, nil
}

// admits applies the server's allowedClients policy to a namespace.
func (r *OAuthClientReconciler) admits(ctx context.Context, srv *oauthv1.AuthorizationServer, namespace string) (*problem, error) {
	why, err := r.admitsNamespace(ctx, srv.Spec.AllowedClients.Namespaces, srv.Namespace, namespace)
	if why == "" || err != nil {
		return nil, err
	}
	return &problem{ReasonNamespaceNotAllowed, fmt.Sprintf("AuthorizationServer %s/%s does not admit clients from namespace %q: %s",
		srv.Namespace, srv.Name, namespace, why)}, nil
}

// admitsNamespace applies an allowedClients policy of an object in home to
// a client's namespace: "" when admitted, otherwise why not.
func (r *OAuthClientReconciler) admitsNamespace(ctx context.Context, policy oauthv1.ClientNamespaces, home, namespace string) (string, error) {
	switch policy.From {
	case oauthv1.NamespacesFromAll:
		return "", nil
	case oauthv1.NamespacesFromSelector:
		if policy.Selector == nil {
			return "allowedClients.namespaces.selector is not set", nil
		}
		sel, err := metav1.LabelSelectorAsSelector(policy.Selector)
		if err != nil {
			return fmt.Sprintf("its namespace selector is invalid: %v", err), nil
		}
		ns := &corev1.Namespace{}
		if err := r.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
			return "", fmt.Errorf("getting namespace %s: %w", namespace, err)
		}
		if !sel.Matches(labels.Set(ns.Labels)) {
			return fmt.Sprintf("the namespace's labels do not match the selector %s", sel), nil
		}
		return "", nil
	default: // Same
		if namespace != home {
			return "it admits only its own namespace (allowedClients.namespaces.from is Same)", nil
		}
		return "", nil
	}
}

// reconcileDelete removes what owner references cannot: on a Secret the
// operator does not own, the keys and labels it added (an adopted
// client_secret stays). A Secret it created is deleted explicitly, so
// nothing waits for the garbage collector.
func (r *OAuthClientReconciler) reconcileDelete(ctx context.Context, oc *oauthv1.OAuthClient) error {
	if !controllerutil.ContainsFinalizer(oc, clientFinalizer) {
		return nil
	}
	if err := r.releaseSecret(ctx, oc, oc.Status.SecretName); err != nil {
		return err
	}
	before := oc.DeepCopy()
	controllerutil.RemoveFinalizer(oc, clientFinalizer)
	if err := r.Patch(ctx, oc, client.MergeFrom(before)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("removing finalizer: %w", err)
	}
	if r.fresh != nil {
		r.fresh.forget(oc, client.ObjectKeyFromObject(oc)) // gone now; keep the map to live objects
	}
	return nil
}

// releaseSecret lets go of a Secret the client no longer uses (it was
// deleted, or its spec.secretName changed): a Secret the operator created
// is deleted; from anyone else's, only the keys, labels and annotations the
// operator added are removed. A Secret it never wrote to is not touched.
func (r *OAuthClientReconciler) releaseSecret(ctx context.Context, oc *oauthv1.OAuthClient, name string) error {
	if name == "" {
		return nil
	}
	sec := &corev1.Secret{}
	err := r.read(ctx, types.NamespacedName{Namespace: oc.Namespace, Name: name}, sec)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("getting Secret %s: %w", name, err)
	case metav1.IsControlledBy(sec, oc):
		if err := r.Delete(ctx, sec); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting Secret %s: %w", name, err)
		}
		r.deleted(sec)
	case sec.Labels[oauthv1.LabelClient] == oc.Name:
		// Not the operator's Secret: take out exactly what it put in.
		before := sec.DeepCopy()
		for k := range writtenKeys(sec, oc) {
			delete(sec.Data, k)
		}
		if _, ok := sec.Annotations[annotationWrittenKeys]; !ok && sec.Labels[oauthv1.LabelManagedBy] == oauthv1.LabelManagedByValue {
			delete(sec.Labels, oauthv1.LabelManagedBy) // added by operators before written-keys
		}
		delete(sec.Labels, oauthv1.LabelClient)
		delete(sec.Annotations, annotationRotateSecretHandled)
		delete(sec.Annotations, annotationWrittenKeys)
		if err := r.Patch(ctx, sec, mergeFrom(before)); err != nil {
			return fmt.Errorf("releasing Secret %s: %w", name, err)
		}
		r.wrote(sec)
	}
	return nil
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
