package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testjaeger"
)

// TestOperatorTracesReachJaeger: `gatehouse operator` with
// OTEL_EXPORTER_OTLP_ENDPOINT pointing at a real Jaeger (v1.75.0) sends
// its reconciles there as service gatehouse-operator: a "reconcile
// AuthorizationServer" and a "reconcile OAuthClient" trace, each with the
// API calls the reconcile made as its client spans (children, carrying
// traceparent to the API server). The token server it runs gets the same
// OTLP endpoint. The token server's own export, one code flow as one
// trace and the incoming traceparent honoured, is TestTracesReachJaeger
// (server package).
func TestOperatorTracesReachJaeger(t *testing.T) {
	jaeger := testjaeger.Start(t)
	cp := testenv.Get(t)
	c := cp.Client
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "optrace-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + jaeger.OTLP
	args, err := json.Marshal([]string{"operator", "--kubeconfig", cp.Kubeconfig, "--namespaces", ns.Name,
		"--server-image", "gatehouse:test", "--metrics-listen", freeAddr(t), "--health-listen", freeAddr(t),
		"--leader-elect=false"})
	if err != nil {
		t.Fatal(err)
	}
	// The operator process: this test binary as `gatehouse operator`
	// (TestMain), its OTEL_* settings from its environment as in a Pod.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+string(args), "OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint,
		"OTEL_BSP_SCHEDULE_DELAY=200") // ms: spans leave while the test waits
	logs := &testenv.LogBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("operator: %v; logs:\n%s", err, logs.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("operator did not stop; logs:\n%s", logs.String())
		}
	}
	defer stop()

	applyServerAndClient(t, c, ns.Name, logs)
	testenv.Eventually(t, 30*time.Second, func() error { return serverGetsEndpoint(ctx, c, ns.Name, endpoint) })
	stop() // exports what is pending

	for _, kind := range []string{"AuthorizationServer", "OAuthClient"} {
		spans := jaeger.Operation(t, "gatehouse-operator", "reconcile "+kind)
		checkReconcileTrace(t, spans, kind)
	}
}

// checkReconcileTrace checks that some "reconcile <kind>" span of the
// operator's has an API call as its child, and that every span of the
// traces is the operator's.
func checkReconcileTrace(t *testing.T, spans []testjaeger.Span, kind string) {
	t.Helper()
	reconciles := map[string]bool{}
	for _, s := range spans {
		if s.Service != "gatehouse-operator" {
			t.Errorf("span %s is from service %q", s.OperationName, s.Service)
		}
		if s.OperationName == "reconcile "+kind {
			reconciles[s.SpanID] = true
		}
	}
	var calls []string
	for _, s := range spans {
		method, _, _ := strings.Cut(s.OperationName, " ")
		if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, method) {
			continue
		}
		for id := range reconciles {
			if s.ChildOf(id) {
				calls = append(calls, s.OperationName)
				break
			}
		}
	}
	if len(calls) == 0 {
		t.Errorf("no reconcile %s span has an API call as its child: %v", kind, testjaeger.Names(spans))
		return
	}
	t.Logf("reconcile %s: %d spans, API calls under a reconcile: %d (e.g. %s)", kind, len(spans), len(calls), calls[0])
}

// serverGetsEndpoint: the token server's Deployment exports to endpoint.
func serverGetsEndpoint(ctx context.Context, c client.Client, ns, endpoint string) error {
	var deps appsv1.DeploymentList
	if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, d := range deps.Items {
		for _, ctr := range d.Spec.Template.Spec.Containers {
			for _, e := range ctr.Env {
				if e.Name == "OTEL_EXPORTER_OTLP_ENDPOINT" && e.Value == endpoint {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("no token-server Deployment in %s has OTEL_EXPORTER_OTLP_ENDPOINT=%s (%d Deployments)", ns, endpoint, len(deps.Items))
}
