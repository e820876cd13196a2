package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

const (
	// serverFinalizer lets the operator delete the cluster-scoped RBAC of a
	// server, which a namespaced owner cannot garbage-collect.
	serverFinalizer = "oauth.gatehouse.dev/authorizationserver"
	kindServer      = "AuthorizationServer"
)

// +kubebuilder:rbac:groups=oauth.gatehouse.dev,resources=authorizationservers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=oauth.gatehouse.dev,resources=authorizationservers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=oauth.gatehouse.dev,resources=authorizationservers/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps;serviceaccounts;services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings;clusterroles;clusterrolebindings,verbs=get;list;watch;create;update;patch;delete

// AuthorizationServerReconciler keeps a server's signing keys and JWKS,
// and runs its token server: ServiceAccount, RBAC, Deployment, Service.
type AuthorizationServerReconciler struct {
	client.Client
	// APIReader reads the keys Secret uncached, so that a reconcile never
	// rotates from a stale copy.
	APIReader   client.Reader
	Recorder    events.EventRecorder
	Clock       Clock
	ServerImage string
	// ServerAuditLog is the token servers' --audit-log; their default
	// when empty.
	ServerAuditLog string
	// ServerEnv is added to the token servers' environment (the
	// OpenTelemetry settings).
	ServerEnv []corev1.EnvVar

	// ExternalServer, when set, replaces the Deployment: see
	// reconcileExternal.
	ExternalServer ExternalServerProbe
}

// SetupWithManager watches servers and what they own.
func (r *AuthorizationServerReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&oauthv1.AuthorizationServer{}).
		Named("authorizationserver").
		WithOptions(opts).
		Owns(&corev1.Secret{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&corev1.Service{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&appsv1.Deployment{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.NetworkPolicy{}).
		// A server whose issuer another server also claims waits on the
		// other: when that one goes or changes its issuer, it may serve.
		Watches(&oauthv1.AuthorizationServer{}, handler.EnqueueRequestsFromMapFunc(r.sameIssuer)).
		Complete(tracing.Reconciler("AuthorizationServer", r))
}

// Reconcile follows the cluster-api skeleton: fetch, finalizer, deferred
// status patch, then reconcileDelete or reconcile.
func (r *AuthorizationServerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	defer func() { countError(kindServer, retErr) }()
	srv := &oauthv1.AuthorizationServer{}
	if err := r.Get(ctx, req.NamespacedName, srv); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !srv.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, srv)
	}
	if _, err := addFinalizer(ctx, r.Client, srv, serverFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	orig := srv.DeepCopy()
	defer func() {
		srv.Status.ObservedGeneration = srv.Generation
		summarizeServerReady(srv)
		_, err := patchStatus(ctx, r.Client, srv, orig, orig.Status, srv.Status)
		retErr = errors.Join(retErr, err)
	}()
	return r.reconcile(ctx, srv)
}

func (r *AuthorizationServerReconciler) reconcile(ctx context.Context, srv *oauthv1.AuthorizationServer) (ctrl.Result, error) {
	now := r.Clock.Now()
	if p, err := r.issuerConflict(ctx, srv); p != nil || err != nil {
		if p != nil {
			failed(srv, &srv.Status.Conditions, oauthv1.ConditionAccepted, p.reason, p.message)
		}
		return ctrl.Result{}, err
	}
	setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionAccepted, true, oauthv1.ReasonAccepted,
		fmt.Sprintf("issuer %s is this server's", srv.Spec.Issuer))
	srv.Status.Issuer = srv.Spec.Issuer
	srv.Status.JWKSURI = endpoints.For(srv.Spec.Issuer).JWKS
	checkClaimMapping(ctx, r.Recorder, srv, &srv.Status.Conditions, srv.Spec.ClaimMapping)

	next, err := r.reconcileKeys(ctx, srv, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	recheck := r.reconcileIdentity(ctx, srv, now)
	if r.ExternalServer != nil {
		return requeueAt(now, next, recheck, now.Add(r.reconcileExternal(ctx, srv))), nil
	}
	if err := r.reconcileRuntime(ctx, srv); err != nil {
		return ctrl.Result{}, err
	}
	return requeueAt(now, next, recheck, policiesRecheck(srv, now)), nil
}

// issuerConflict refuses a server whose issuer an older server already
// has. Two servers cannot both answer for one issuer: relying parties find
// keys and endpoints by the issuer alone, so tokens from one would fail,
// or pass, at the other's resource servers. The oldest keeps it (ties
// by namespace/name), so the one that was working stays working. The
// refused one is left exactly as it is: a typo in an issuer should not
// take a running token server down.
func (r *AuthorizationServerReconciler) issuerConflict(ctx context.Context, srv *oauthv1.AuthorizationServer) (*problem, error) {
	others, err := r.serversWithIssuer(ctx, srv)
	if err != nil {
		return nil, err
	}
	for i := range others {
		other := &others[i]
		if !other.DeletionTimestamp.IsZero() || !olderServer(other, srv) {
			continue
		}
		return &problem{oauthv1.ReasonIssuerConflict, fmt.Sprintf(
			"AuthorizationServer %s/%s already has issuer %s; give this one another spec.issuer (until then the operator changes nothing of it: no keys, no Deployment, and a Deployment it already has is left as it is)",
			other.Namespace, other.Name, other.Spec.Issuer)}, nil
	}
	return nil, nil
}

// issuerKey identifies an issuer: "https://a.example/" and
// "https://a.example" are the same one to a relying party that appends
// paths to it, and host names are case-insensitive.
func issuerKey(issuer string) string {
	issuer = strings.TrimRight(issuer, "/")
	scheme, rest, ok := strings.Cut(issuer, "://")
	if !ok {
		return issuer
	}
	host, path, _ := strings.Cut(rest, "/")
	if path != "" {
		path = "/" + path
	}
	return strings.ToLower(scheme) + "://" + strings.ToLower(host) + path
}

func olderServer(a, b *oauthv1.AuthorizationServer) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// sameIssuer maps a server to the other servers with its issuer.
func (r *AuthorizationServerReconciler) sameIssuer(ctx context.Context, o client.Object) []reconcile.Request {
	others, err := r.serversWithIssuer(ctx, o.(*oauthv1.AuthorizationServer))
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing AuthorizationServers to requeue")
		return nil
	}
	var reqs []reconcile.Request
	for _, other := range others {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&other)})
	}
	return reqs
}

// serversWithIssuer lists the other servers with srv's issuer. A cluster
// has a handful of servers, so a list from the cache beats an index.
func (r *AuthorizationServerReconciler) serversWithIssuer(ctx context.Context, srv *oauthv1.AuthorizationServer) ([]oauthv1.AuthorizationServer, error) {
	var list oauthv1.AuthorizationServerList
	if err := r.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing AuthorizationServers: %w", err)
	}
	key := issuerKey(srv.Spec.Issuer)
	return slices.DeleteFunc(list.Items, func(other oauthv1.AuthorizationServer) bool {
		return other.UID == srv.UID || issuerKey(other.Spec.Issuer) != key
	}), nil
}

func (r *AuthorizationServerReconciler) reconcileDelete(ctx context.Context, srv *oauthv1.AuthorizationServer) error {
	if !controllerutil.ContainsFinalizer(srv, serverFinalizer) {
		return nil
	}
	name := clusterRBACName(srv)
	for _, o := range []client.Object{
		&rbacv1.ClusterRoleBinding{ObjectMeta: metaName(name)},
		&rbacv1.ClusterRole{ObjectMeta: metaName(name)},
	} {
		if err := r.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting %T %s: %w", o, name, err)
		}
	}
	return removeFinalizer(ctx, r.Client, srv, serverFinalizer)
}

func (r *AuthorizationServerReconciler) event(ctx context.Context, srv *oauthv1.AuthorizationServer, typ, reason, note string, args ...any) {
	emit(ctx, r.Recorder, srv, typ, reason, note, args...)
}
