package controllers

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

const kindScope = "Scope"

// +kubebuilder:rbac:groups=oauth.gatehouse.dev,resources=scopes,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.gatehouse.dev,resources=scopes/status,verbs=get;update;patch

// ScopeReconciler checks that a Scope's server exists and that no other
// Scope of that server claims the same scope string. The API schema has
// already validated the string itself (RFC 6749 §3.3 scope-token).
type ScopeReconciler struct {
	client.Client
	Recorder events.EventRecorder
}

// SetupWithManager watches Scopes, and requeues a server's Scopes when the
// server appears or goes, and the Scopes sharing a name when one of them
// changes, so a conflict resolves when its winner is deleted.
func (r *ScopeReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&oauthv1.Scope{}).
		Named("scope").
		WithOptions(opts).
		Watches(&oauthv1.Scope{}, handler.EnqueueRequestsFromMapFunc(r.sameName)).
		Watches(&oauthv1.AuthorizationServer{}, handler.EnqueueRequestsFromMapFunc(r.serverScopes)).
		Complete(tracing.Reconciler("Scope", r))
}

func (r *ScopeReconciler) sameName(ctx context.Context, o client.Object) []reconcile.Request {
	return scopesMatching(ctx, r.Client, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{indexScopeName: scopeNameKey(o.(*oauthv1.Scope))})
}

func (r *ScopeReconciler) serverScopes(ctx context.Context, o client.Object) []reconcile.Request {
	return scopesMatching(ctx, r.Client, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexScopeServer: o.GetName()})
}

// Reconcile sets the Scope's Ready condition.
func (r *ScopeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	defer func() { countError(kindScope, retErr) }()
	s := &oauthv1.Scope{}
	if err := r.Get(ctx, req.NamespacedName, s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := s.DeepCopy()
	defer func() {
		s.Status.ObservedGeneration = s.Generation
		_, err := patchStatus(ctx, r.Client, s, orig, orig.Status, s.Status)
		retErr = errors.Join(retErr, err)
	}()
	return ctrl.Result{}, r.reconcile(ctx, s)
}

func (r *ScopeReconciler) reconcile(ctx context.Context, s *oauthv1.Scope) error {
	srv := &oauthv1.AuthorizationServer{}
	key := types.NamespacedName{Namespace: s.Namespace, Name: s.Spec.ServerRef.Name}
	if err := r.Get(ctx, key, srv); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("getting AuthorizationServer %s: %w", key, err)
		}
		failed(s, &s.Status.Conditions, oauthv1.ConditionReady, oauthv1.ReasonServerNotFound,
			fmt.Sprintf("AuthorizationServer %s not found", key))
		return nil
	}
	if oidc.IsBuiltin(string(s.Spec.Name)) {
		msg := fmt.Sprintf("%q is an OpenID Connect scope built into every AuthorizationServer, with its own description and claims; this Scope is ignored (delete it)", s.Spec.Name)
		failedWarn(ctx, r.Recorder, s, &s.Status.Conditions, oauthv1.ConditionReady, oauthv1.ReasonBuiltinScope, msg)
		return nil
	}
	var same oauthv1.ScopeList
	if err := r.List(ctx, &same, client.InNamespace(s.Namespace), client.MatchingFields{indexScopeName: scopeNameKey(s)}); err != nil {
		return fmt.Errorf("listing Scopes: %w", err)
	}
	if owner := oauthv1.ScopeOwner(same.Items); owner != nil && owner.Name != s.Name {
		msg := fmt.Sprintf("Scope %s already defines %q for AuthorizationServer %s; this Scope is ignored until that one is deleted or renamed",
			owner.Name, s.Spec.Name, key.Name)
		failedWarn(ctx, r.Recorder, s, &s.Status.Conditions, oauthv1.ConditionReady, oauthv1.ReasonConflict, msg)
		return nil
	}
	setCondition(&s.Status.Conditions, s.Generation, oauthv1.ConditionReady, true, oauthv1.ReasonReady,
		fmt.Sprintf("AuthorizationServer %s offers scope %q", key.Name, s.Spec.Name))
	return nil
}
