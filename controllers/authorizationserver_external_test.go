package controllers_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// With token servers outside the cluster (gatehouse dev), the operator runs
// no Deployment, and Ready follows the external server's readiness both
// ways, without any change to the AuthorizationServer.
func TestExternalServerReadiness(t *testing.T) {
	cp := testenv.Get(t)
	ns := newNamespace(t, nil)
	var down atomic.Bool
	down.Store(true)
	probe := func(_ context.Context, srv *oauthv1.AuthorizationServer) error {
		if down.Load() {
			return errors.New("http://127.0.0.1:1/readyz: connection refused")
		}
		return nil
	}
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 cp.Scheme,
		Cache:                  controllers.CacheOptions([]string{ns}),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 zap.New(zap.WriteTo(&testenv.LogBuffer{})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{ServerImage: "gatehouse:test", SkipNameValidation: true, ExternalServer: probe}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	})

	srv := server(ns, "dev")
	create(t, srv)
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonExternalServerNotReady)
	if msg := readyCondition(srv).Message; !strings.Contains(msg, "connection refused") {
		t.Errorf("Ready message %q does not say why the external server is not ready", msg)
	}
	waitCondition(t, srv, oauthv1.ConditionKeysReady, metav1.ConditionTrue, oauthv1.ReasonKeysReady)

	down.Store(false)
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonExternalServerReady)
	if srv.Status.ActiveKeyID == "" || srv.Status.JWKSURI == "" {
		t.Errorf("status lacks the key id or JWKS URI: %+v", srv.Status)
	}
	for name, obj := range map[string]client.Object{
		"Deployment":     &appsv1.Deployment{},
		"Service":        &corev1.Service{},
		"ServiceAccount": &corev1.ServiceAccount{},
	} {
		err := cp.Client.Get(context.Background(), objKey(ns, controllers.ServerObjectName(srv)), obj)
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s %s: got err=%v, want NotFound: nothing runs in the cluster in external mode", name, controllers.ServerObjectName(srv), err)
		}
	}

	down.Store(true)
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonExternalServerNotReady)

	// Ready summarizes every part: a server that answers, with keys the
	// operator cannot read, is not Ready (it was, before Ready became a
	// summary: the probe overwrote the keys' verdict in the same reconcile).
	down.Store(false)
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonExternalServerReady)
	keys := &corev1.Secret{}
	if err := cp.Client.Get(context.Background(), objKey(ns, keyset.SecretName("dev")), keys); err != nil {
		t.Fatal(err)
	}
	keys.Data[keyset.SecretDataKey] = []byte("{not a key set")
	if err := cp.Client.Update(context.Background(), keys); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonInvalidKeys)
	waitCondition(t, srv, oauthv1.ConditionAvailable, metav1.ConditionTrue, oauthv1.ReasonExternalServerReady)
	poke(t, srv) // a later reconcile does not flip it back either
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonInvalidKeys)
}
