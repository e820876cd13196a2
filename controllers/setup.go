// Package controllers is the Gatehouse operator: one reconciler per kind.
//
//   - OAuthClientReconciler turns an OAuthClient into a client_id, a secret
//     in the app's namespace and its hash in status.
//   - ScopeReconciler validates Scopes and detects conflicting names.
//   - AuthorizationServerReconciler keeps the signing keys, the JWKS, and
//     the token server's ServiceAccount, RBAC, Deployment and Service.
//
// Setup registers all three with a manager; the `gatehouse operator`
// subcommand and the tests both start the operator through it.
package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers/internal/cachetrim"
	"github.com/gatehouse-dev/gatehouse/controllers/internal/freshread"
	"github.com/gatehouse-dev/gatehouse/controllers/internal/queue"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// Clock tells the time. The reconcilers never call time.Now themselves, so
// tests drive rotation and grace periods by moving a fake clock. A clock
// that also has AfterFunc (queue.Timers), as the tests' fake one does,
// holds the reconcilers' RequeueAfter too, so that moving it fires the
// rechecks that are due.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Options configure the operator.
type Options struct {
	// Clock defaults to RealClock.
	Clock Clock
	// ServerImage is the token server's image when an AuthorizationServer
	// does not name one: the operator's own image, so that the operator and
	// the servers it runs are one version.
	ServerImage string
	// ServerAuditLog is where the token servers write their audit logs
	// (their --audit-log: stdout, stderr or off); their default when empty.
	ServerAuditLog string
	// ServerEnv is added to the token servers' environment.
	ServerEnv []corev1.EnvVar
	// Audit receives the operator's audit lines (audit.go); nil records
	// none.
	Audit *audit.Log
	// MaxConcurrentReconciles per controller; default DefaultConcurrency.
	MaxConcurrentReconciles int
	// SkipNameValidation lets several managers run in one process (tests).
	SkipNameValidation bool
	// Namespaces restricts the operator to these namespaces, as
	// CacheOptions does for the manager's cache; all when empty.
	Namespaces []string
	// ExternalServer, when set, says token servers run outside the cluster
	// (`gatehouse dev`): the operator runs no Deployment for them and
	// reports Ready from this probe. See reconcileExternal.
	ExternalServer ExternalServerProbe
}

// Defaults of `gatehouse operator`, sized for 10,000 OAuthClients applied
// at once (docs/operations.md): a new client costs two writes (its Secret
// and its status), so 500 requests a second leaves room for
// Ready within a minute, retries and the other kinds. The API server protects
// itself with API Priority and Fairness; the client-side limit only stops
// a runaway loop. Reconciles wait on the API server, not on the CPU, so
// more of them at once than cores keeps the requests flowing.
const (
	DefaultKubeAPIQPS   = 500
	DefaultKubeAPIBurst = 1000
	DefaultConcurrency  = 16
)

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = DefaultConcurrency
	}
}

func (o Options) controllerOptions() controller.Options {
	// controller-runtime's priority queue, so that new and edited objects
	// go ahead of fan-outs and restarts (package queue), behind a guard against
	// its shutdown deadlock.
	opts := controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles, NewQueue: queue.New}
	if timers, ok := o.Clock.(queue.Timers); ok {
		opts.NewQueue = queue.NewWithTimers(timers)
	}
	if o.SkipNameValidation {
		skip := true
		opts.SkipNameValidation = &skip
	}
	return opts
}

// CacheOptions restricts the manager's informer cache: to the given
// namespaces (all when empty) and, for the kinds the operator creates, to
// the objects it labelled.
// Caching every Secret of the cluster would cost memory and put every
// plaintext credential in the operator's heap; Secrets the operator has not
// labelled (one to adopt, or one it may not use) are read through the API
// reader instead, and a client waiting on such a Secret looks again on a
// timer (secretRecheck).
func CacheOptions(namespaces []string) cache.Options {
	managed, err := labels.NewRequirement(oauthv1.LabelManagedBy, selection.Equals, []string{oauthv1.LabelManagedByValue})
	if err != nil {
		panic(err) // constant input
	}
	sel := cache.ByObject{Label: labels.NewSelector().Add(*managed)}
	opts := cache.Options{ByObject: map[client.Object]cache.ByObject{}, DefaultTransform: cachetrim.Transform}
	for _, o := range []client.Object{
		&corev1.Secret{}, &corev1.ConfigMap{}, &corev1.ServiceAccount{}, &corev1.Service{},
		&appsv1.Deployment{}, &rbacv1.Role{}, &rbacv1.RoleBinding{},
		&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{},
		&policyv1.PodDisruptionBudget{}, &networkingv1.NetworkPolicy{},
	} {
		opts.ByObject[o] = sel
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// serviceAccountCache is a cache of ServiceAccounts' metadata, of every
// ServiceAccount (the manager's cache holds only the operator's own): the
// UID of the one a client authenticates as is published in the client's
// status, and its deletion or re-creation must reach the client at once.
// Metadata only: a few hundred bytes each, never a token or a Secret
// reference.
func serviceAccountCache(mgr ctrl.Manager, namespaces []string) (cache.Cache, error) {
	opts := cache.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), DefaultTransform: cachetrim.Transform}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	c, err := cache.New(mgr.GetConfig(), opts)
	if err != nil {
		return nil, fmt.Errorf("ServiceAccount cache: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("ServiceAccount cache: %w", err)
	}
	return c, nil
}

// Setup registers the field indexes and the three reconcilers with mgr.
func Setup(mgr ctrl.Manager, opts Options) error {
	opts.defaults()
	ctx := context.Background()
	if err := setupIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("field indexes: %w", err)
	}
	saCache, err := serviceAccountCache(mgr, opts.Namespaces)
	if err != nil {
		return err
	}
	clients := &OAuthClientReconciler{
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		ServiceAccounts: saCache,
		saCache:         saCache,
		Recorder:        auditRecorder(mgr.GetEventRecorder("gatehouse-oauthclient"), opts.Audit),
		Clock:           opts.Clock,
		Audit:           opts.Audit,
		fresh:           freshread.New(mgr.GetClient(), mgr.GetAPIReader()),
	}
	if err := clients.SetupWithManager(mgr, opts.controllerOptions()); err != nil {
		return fmt.Errorf("setting up the OAuthClient controller: %w", err)
	}
	scopes := &ScopeReconciler{
		Client:   mgr.GetClient(),
		Recorder: auditRecorder(mgr.GetEventRecorder("gatehouse-scope"), opts.Audit),
	}
	if err := scopes.SetupWithManager(mgr, opts.controllerOptions()); err != nil {
		return fmt.Errorf("setting up the Scope controller: %w", err)
	}
	servers := &AuthorizationServerReconciler{
		Client:      mgr.GetClient(),
		APIReader:   mgr.GetAPIReader(),
		Recorder:    auditRecorder(mgr.GetEventRecorder("gatehouse-authorizationserver"), opts.Audit),
		Clock:       opts.Clock,
		ServerImage: opts.ServerImage,

		ServerAuditLog: opts.ServerAuditLog,
		ServerEnv:      opts.ServerEnv,

		ExternalServer: opts.ExternalServer,
	}
	if err := servers.SetupWithManager(mgr, opts.controllerOptions()); err != nil {
		return fmt.Errorf("setting up the AuthorizationServer controller: %w", err)
	}
	workloads, err := workloadCache(mgr, opts.Namespaces)
	if err != nil {
		return err
	}
	for _, kind := range rolloutKinds {
		rollout := &WorkloadRolloutReconciler{
			Client:    mgr.GetClient(),
			Recorder:  mgr.GetEventRecorder("gatehouse-rollout"),
			Kind:      kind,
			workloads: workloads,
		}
		if err := rollout.SetupWithManager(mgr, opts.controllerOptions()); err != nil {
			return fmt.Errorf("setting up the %s rollout controller: %w", kind.Kind, err)
		}
	}
	return nil
}
