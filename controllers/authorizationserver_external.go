package controllers

import (
	"context"
	"fmt"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// How often an external token server is probed again, so that Ready
// follows it when it stops or starts: nothing else would trigger a
// reconcile, as no Deployment reports the change.
const (
	externalProbeReady    = 10 * time.Second
	externalProbeNotReady = 2 * time.Second
)

// ExternalServerProbe says whether the token server of srv, which runs
// outside the cluster, is ready to serve: nil when it is, otherwise an
// error saying why not (no server for it, not started, waiting for its
// keys, ...).
type ExternalServerProbe func(ctx context.Context, srv *oauthv1.AuthorizationServer) error

// reconcileExternal replaces reconcileRuntime when token servers run
// outside the cluster (Options.ExternalServer; `gatehouse dev`). No
// kubelet would run a Deployment there, so the operator creates no
// ServiceAccount, RBAC, Deployment or Service, and Available reports what
// really serves the issuer: the out-of-cluster server's own readiness
// (its /readyz), probed again periodically. The keys, the JWKS ConfigMap
// and the rest of the status are reconciled as in a cluster.
func (r *AuthorizationServerReconciler) reconcileExternal(ctx context.Context, srv *oauthv1.AuthorizationServer) time.Duration {
	if err := r.ExternalServer(ctx, srv); err != nil {
		setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionAvailable, false, oauthv1.ReasonExternalServerNotReady,
			fmt.Sprintf("token server outside the cluster is not ready: %v", err))
		return externalProbeNotReady
	}
	setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionAvailable, true, oauthv1.ReasonExternalServerReady,
		"token server outside the cluster is ready")
	return externalProbeReady
}
