package controllers_test

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// TestKubectlWaitForReady is how people and scripts wait for Gatehouse
// objects: `kubectl wait --for=condition=Ready` works for all three kinds.
func TestKubectlWaitForReady(t *testing.T) {
	cp := testenv.Get(t)
	kubectl := cp.Kubectl(t)
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	srv := server(ns, "auth")
	yaml := `
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: AuthorizationServer
metadata: {name: auth}
spec: {issuer: "https://127.0.0.1:8443"}
---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: Scope
metadata: {name: orders-read}
spec: {serverRef: {name: auth}, name: "orders:read", description: "Read your orders"}
---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: shop}
spec:
  serverRef: {name: auth}
  redirectURIs: ["https://shop.test/callback"]
  scopes: ["orders:read"]
`
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", cp.Kubeconfig, "-n", ns}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	run(yaml, "apply", "-f", "-")
	out := run("", "wait", "--for=condition=Ready", "--timeout=30s", "oauthclient/shop", "scope/orders-read")
	if !strings.Contains(out, "oauthclient.oauth.gatehouse.dev/shop condition met") {
		t.Errorf("kubectl wait said: %s", out)
	}
	// The server is Ready when its Deployment is available; no pods run
	// here, so play the Deployment controller.
	get(t, srv)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controllers.ServerObjectName(srv)}}
	testenv.Eventually(t, 10*time.Second, func() error { return cp.Client.Get(context.Background(), objKey(ns, dep.Name), dep) })
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
	if err := cp.Client.Status().Update(context.Background(), dep); err != nil {
		t.Fatal(err)
	}
	run("", "wait", "--for=condition=Ready", "--timeout=30s", "authorizationserver/auth")
	run("", "wait", "--for=condition=KeysReady", "--timeout=30s", "authorizationserver/auth")
}
