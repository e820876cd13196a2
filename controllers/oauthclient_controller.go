package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers/internal/freshread"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
)

const (
	// clientFinalizer lets the operator clean up what owner references
	// cannot: the keys it added to an adopted Secret it does not own. A
	// client gets it only before the operator first writes into such a
	// Secret; the Secrets the operator creates are deleted after their
	// client (cleanupDeleted, and the garbage collector through their
	// owner reference), which saves every new client a write.
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
// plaintext in the app's Secret, only its hash in status. A client without
// a secret gets its credential checked and published in status, and its
// connection data in a ConfigMap (oauthclient_credentials.go).
type OAuthClientReconciler struct {
	client.Client
	// APIReader reads Secrets the cache does not hold: a Secret to adopt
	// carries none of the operator's labels yet.
	APIReader client.Reader
	// ServiceAccounts reads ServiceAccounts' metadata (Setup: a cache of
	// their metadata, since the manager's holds only the operator's own);
	// APIReader when nil.
	ServiceAccounts client.Reader
	Recorder        events.EventRecorder
	Clock           Clock
	// Audit receives a line when a client is admitted or refused; nil
	// records none.
	Audit *audit.Log
	// saCache, when set (Setup), is the cache behind ServiceAccounts, whose
	// events the controller watches.
	saCache cache.Cache

	// fresh, when set (Setup does), serves reads from the cache unless it
	// may be older than the operator's own writes; otherwise every read
	// goes to APIReader.
	fresh *freshread.Reader
}

func (r *OAuthClientReconciler) serviceAccounts() client.Reader {
	if r.ServiceAccounts != nil {
		return r.ServiceAccounts
	}
	return r.APIReader
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

// Reconcile follows the cluster-api skeleton: fetch, finalizer, deferred
// status patch, then reconcileDelete or reconcile.
func (r *OAuthClientReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	defer func() { countError(kindOAuthClient, retErr) }()
	// Never from a cached copy older than the operator's own last write:
	// secret decisions compare the Secret with status.secretHashes, and a
	// stale status would look like an outside change (see package freshread).
	oc := &oauthv1.OAuthClient{}
	if err := r.read(ctx, req.NamespacedName, oc); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.cleanupDeleted(ctx, req.NamespacedName)
		}
		return staleOr(err)
	}
	if !oc.DeletionTimestamp.IsZero() {
		if err := r.reconcileDelete(ctx, oc); err != nil {
			return staleOr(err)
		}
		return ctrl.Result{}, nil
	}

	orig := oc.DeepCopy()
	res, err := r.reconcile(ctx, oc)
	if errors.Is(err, freshread.ErrStale) || errors.Is(err, errFinalizerAdded) {
		// The Secret in the cache is older than the operator's write, or
		// the client has just changed: change nothing more now, the watch
		// event brings the client back.
		return staleOr(freshread.ErrStale)
	}
	oc.Status.ObservedGeneration = oc.Generation
	wrote, patchErr := patchStatus(ctx, r.Client, oc, orig, orig.Status, oc.Status)
	if wrote {
		r.wrote(oc, true)
		auditAdmission(r.Audit, orig, oc)
	}
	return res, errors.Join(err, patchErr)
}

// staleRecheck is a backstop for freshread.ErrStale: the watch event of the
// operator's own write normally requeues the object long before.
const staleRecheck = 5 * time.Second

// staleOr ends a reconcile that failed: a stale cache waits for its
// event, a deleted object is done, anything else is retried.
func staleOr(err error) (ctrl.Result, error) {
	if errors.Is(err, freshread.ErrStale) {
		return ctrl.Result{RequeueAfter: staleRecheck}, nil
	}
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// read gets an object from the cache when that is as new as the
// operator's last write of it (freshread.ErrStale otherwise); see package freshread.
func (r *OAuthClientReconciler) read(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	if r.fresh == nil {
		return r.APIReader.Get(ctx, key, obj)
	}
	return r.fresh.Get(ctx, key, obj)
}

// readUncached gets an object from the API server.
func (r *OAuthClientReconciler) readUncached(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	if r.fresh == nil {
		return r.APIReader.Get(ctx, key, obj)
	}
	return r.fresh.GetUncached(ctx, key, obj)
}

// deleted makes reads of a deleted object wait until the cache, too, has
// seen the deletion.
func (r *OAuthClientReconciler) deleted(obj client.Object) {
	if r.fresh != nil {
		obj.SetResourceVersion("")
		r.fresh.Remember(obj, true)
	}
}

// wrote records the version a write returned; cached says whether the
// informer cache holds the object (see package freshread).
func (r *OAuthClientReconciler) wrote(obj client.Object, cached bool) {
	if r.fresh != nil {
		r.fresh.Remember(obj, cached)
	}
}

func (r *OAuthClientReconciler) reconcile(ctx context.Context, oc *oauthv1.OAuthClient) (ctrl.Result, error) {
	oc.Status.ClientID = ClientID(oc)
	checkClaimMapping(ctx, r.Recorder, oc, &oc.Status.Conditions, oc.Spec.ClaimMapping)
	srv, problem, err := r.resolve(ctx, oc)
	if err != nil {
		return ctrl.Result{}, err
	}
	if problem != nil {
		// The watches on servers, Scopes and namespaces bring the client
		// back when the culprit changes: no requeue.
		failed(oc, &oc.Status.Conditions, oauthv1.ConditionReady, problem.reason, problem.message)
		return ctrl.Result{}, nil
	}
	if err := r.resolveExchangeServiceAccounts(ctx, oc); err != nil {
		return ctrl.Result{}, err
	}
	if oc.IsPublic() {
		oc.Status.SecretName = ""
		oc.Status.SecretHashes = nil
		setCondition(&oc.Status.Conditions, oc.Generation, oauthv1.ConditionReady, true, oauthv1.ReasonReady,
			fmt.Sprintf("public client %s is registered with AuthorizationServer %s", oc.Status.ClientID, oc.ServerKey()))
		return ctrl.Result{}, nil
	}
	if oc.Spec.Authentication != nil {
		return r.reconcileSecretless(ctx, oc, srv)
	}
	if name := oc.Status.ConfigMapName; name != "" {
		// Back to a secret: the connection ConfigMap goes, the Secret
		// carries the same data.
		if err := r.releaseConfigMap(ctx, oc, name); err != nil {
			return ctrl.Result{}, err
		}
		oc.Status.ConfigMapName = ""
	}
	oc.Status.ServiceAccountUID, oc.Status.PublicKeys = "", nil
	if p := secretNameProblem(oc); p != nil {
		// Only objects from before the CRD's rule get here; retrying
		// cannot help, so no error and no requeue.
		failed(oc, &oc.Status.Conditions, oauthv1.ConditionReady, p.reason, p.message)
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
	return &problem{oauthv1.ReasonInvalidSecretName, fmt.Sprintf("the Secret name %q is not valid (%s): set spec.secretName, or use a shorter client name",
		name, strings.Join(errs, "; "))}
}

// problem is a reason the client cannot be Ready that the user must fix.
type problem struct{ reason, message string }

// resolve checks the client's references: the server exists, admits the
// client's namespace, and defines every requested scope, and each of those
// Scopes admits the client's namespace.
func (r *OAuthClientReconciler) resolve(ctx context.Context, oc *oauthv1.OAuthClient) (*oauthv1.AuthorizationServer, *problem, error) {
	srv := &oauthv1.AuthorizationServer{}
	key := types.NamespacedName{Namespace: oc.ServerNamespace(), Name: oc.Spec.ServerRef.Name}
	if err := r.Get(ctx, key, srv); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &problem{oauthv1.ReasonServerNotFound, fmt.Sprintf("AuthorizationServer %s not found", key)}, nil
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
		return nil, &problem{oauthv1.ReasonUnknownScope, fmt.Sprintf("AuthorizationServer %s defines no Scope for %s",
			key, strings.Join(missing, ", "))}, nil
	}
	if len(refused) > 0 {
		return nil, &problem{oauthv1.ReasonScopeNotAllowed, fmt.Sprintf("namespace %q may not request %s; ask the Scope's owner to admit it in spec.allowedClients, or remove the scope",
			oc.Namespace, strings.Join(refused, ", "))}, nil
	}
	if p, err := r.checkAudiences(ctx, oc, srv); p != nil || err != nil {
		return nil, p, err
	}
	return srv, nil, nil
}

// checkAudiences lets a client name in spec.audience, and in
// spec.tokenExchange as the APIs whose callers' tokens it may exchange,
// only APIs that have opened themselves to its namespace: the audience of
// a Scope of its server whose allowedClients admits it. Otherwise any team
// could mint tokens for any API by naming it, or trade tokens meant for
// it, the Scopes' policies notwithstanding.
func (r *OAuthClientReconciler) checkAudiences(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer) (*problem, error) {
	auds := oc.Audiences()
	if len(auds) == 0 {
		return nil, nil
	}
	var scopes oauthv1.ScopeList
	if err := r.List(ctx, &scopes, client.InNamespace(srv.Namespace), client.MatchingFields{indexScopeServer: srv.Name}); err != nil {
		return nil, fmt.Errorf("listing Scopes: %w", err)
	}
	var refused []string
next:
	for _, aud := range auds {
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
	return &problem{oauthv1.ReasonAudienceNotAllowed, fmt.Sprintf(
		"no Scope of AuthorizationServer %s/%s with audience %s admits namespace %q; an audience is allowed when a Scope for that API admits the client in spec.allowedClients",
		srv.Namespace, srv.Name, strings.Join(refused, ", "), oc.Namespace)}, nil
}

// admits applies the server's allowedClients policy to a namespace.
func (r *OAuthClientReconciler) admits(ctx context.Context, srv *oauthv1.AuthorizationServer, namespace string) (*problem, error) {
	why, err := r.admitsNamespace(ctx, srv.Spec.AllowedClients.Namespaces, srv.Namespace, namespace)
	if why == "" || err != nil {
		return nil, err
	}
	return &problem{oauthv1.ReasonNamespaceNotAllowed, fmt.Sprintf("AuthorizationServer %s/%s does not admit clients from namespace %q: %s",
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

// cleanupDeleted deletes the Secrets the operator created for a client
// that is gone without a finalizer: those in the cache (the operator's own)
// labelled for that name and controlled by an OAuthClient of that name. No
// client of that name exists, so none of them is in use. The garbage
// collector would delete them too, later, and only where one runs.
func (r *OAuthClientReconciler) cleanupDeleted(ctx context.Context, key types.NamespacedName) error {
	var secrets corev1.SecretList
	if err := r.List(ctx, &secrets, client.InNamespace(key.Namespace), client.MatchingLabels{oauthv1.LabelClient: key.Name}); err != nil {
		return fmt.Errorf("listing Secrets of OAuthClient %s: %w", key.Name, err)
	}
	for i := range secrets.Items {
		sec := &secrets.Items[i]
		ctl := metav1.GetControllerOf(sec)
		if ctl == nil || ctl.Kind != kindOAuthClient || ctl.APIVersion != oauthv1.GroupVersion.String() || ctl.Name != key.Name {
			continue
		}
		if err := r.Delete(ctx, sec, client.Preconditions{UID: &sec.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting Secret %s: %w", sec.Name, err)
		}
		r.deleted(sec)
	}
	// The connection ConfigMap of a client without a secret, likewise.
	var cms corev1.ConfigMapList
	if err := r.List(ctx, &cms, client.InNamespace(key.Namespace), client.MatchingLabels{oauthv1.LabelClient: key.Name}); err != nil {
		return fmt.Errorf("listing ConfigMaps of OAuthClient %s: %w", key.Name, err)
	}
	for i := range cms.Items {
		cm := &cms.Items[i]
		ctl := metav1.GetControllerOf(cm)
		if ctl == nil || ctl.Kind != kindOAuthClient || ctl.APIVersion != oauthv1.GroupVersion.String() || ctl.Name != key.Name {
			continue
		}
		if err := r.Delete(ctx, cm, client.Preconditions{UID: &cm.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting ConfigMap %s: %w", cm.Name, err)
		}
	}
	return nil
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
	if err := removeFinalizer(ctx, r.Client, oc, clientFinalizer); err != nil {
		return err
	}
	if r.fresh != nil {
		r.fresh.Forget(oc, client.ObjectKeyFromObject(oc)) // gone now; keep the map to live objects
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
	err := r.readSecret(ctx, oc, name, sec)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("getting Secret %s: %w", name, err)
	case ownsSecret(sec, claimantOf(oc)):
		if err := r.Delete(ctx, sec); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting Secret %s: %w", name, err)
		}
		r.deleted(sec)
	case sec.Labels[oauthv1.LabelClient] == oc.Name:
		// Not the operator's Secret: take out exactly what it put in.
		before := sec.DeepCopy()
		for k := range writtenKeys(sec, oc.Name) {
			delete(sec.Data, k)
		}
		if _, ok := sec.Annotations[oauthv1.AnnotationWrittenKeys]; !ok && sec.Labels[oauthv1.LabelManagedBy] == oauthv1.LabelManagedByValue {
			delete(sec.Labels, oauthv1.LabelManagedBy) // added by operators before written-keys
		}
		delete(sec.Labels, oauthv1.LabelClient)
		delete(sec.Annotations, oauthv1.AnnotationRotateSecretHandled)
		delete(sec.Annotations, oauthv1.AnnotationWrittenKeys)
		if err := r.Patch(ctx, sec, mergeFrom(before)); err != nil {
			return fmt.Errorf("releasing Secret %s: %w", name, err)
		}
		r.wrote(sec, false)
	}
	return nil
}
