package v1alpha1_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// kubectl runs kubectl against the test control plane.
func kubectl(t *testing.T, cp *testenv.ControlPlane, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(cp.Kubectl(t), append([]string{"--kubeconfig", cp.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestKubectl is what a platform engineer does first: apply the samples,
// look at them, read the docs, and get a bad object refused.
func TestKubectl(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	samples := filepath.Join(root, "config", "samples")

	t.Run("apply samples", func(t *testing.T) {
		out, err := kubectl(t, cp, "", "apply", "-n", ns, "-k", samples)
		if err != nil {
			t.Fatalf("kubectl apply -k config/samples: %v\n%s", err, out)
		}
		for _, want := range []string{
			"authorizationserver.oauth.gatehouse.dev/gatehouse created",
			"scope.oauth.gatehouse.dev/orders-read created",
			"oauthclient.oauth.gatehouse.dev/storefront created",
			"oauthclient.oauth.gatehouse.dev/orders-cli created",
			"oauthclient.oauth.gatehouse.dev/inventory-sync created",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl apply output lacks %q:\n%s", want, out)
			}
		}
		out, err = kubectl(t, cp, "", "apply", "-n", ns, "-k", samples)
		if err != nil || strings.Contains(out, "configured") || strings.Contains(out, "created") {
			t.Errorf("a second apply should leave everything unchanged (defaults must not fight the samples): %v\n%s", err, out)
		}
	})

	t.Run("get by category, short names and columns", func(t *testing.T) {
		out, err := kubectl(t, cp, "", "get", "gatehouse", "-n", ns)
		if err != nil {
			t.Fatalf("kubectl get gatehouse: %v\n%s", err, out)
		}
		t.Logf("kubectl get gatehouse:\n%s", out)
		for _, want := range []string{"authorizationserver.oauth.gatehouse.dev/gatehouse", "oauthclient.oauth.gatehouse.dev/storefront", "scope.oauth.gatehouse.dev/inventory-sync"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl get gatehouse lacks %s:\n%s", want, out)
			}
		}
		for short, column := range map[string]string{
			"as":     "ISSUER",
			"oac":    "CLIENT ID",
			"oscope": "SCOPE",
		} {
			out, err := kubectl(t, cp, "", "get", short, "-n", ns)
			if err != nil {
				t.Fatalf("kubectl get %s: %v\n%s", short, err, out)
			}
			header := strings.SplitN(out, "\n", 2)[0]
			if !strings.Contains(header, column) || !strings.Contains(header, "READY") || !strings.Contains(header, "AGE") {
				t.Errorf("kubectl get %s header %q lacks %s, READY or AGE", short, header, column)
			}
		}
		out, _ = kubectl(t, cp, "", "get", "oscope", "-n", ns)
		if !strings.Contains(out, "orders:read") || !strings.Contains(out, "inventory.sync") {
			t.Errorf("kubectl get scopes does not show the scope strings:\n%s", out)
		}
		out, _ = kubectl(t, cp, "", "get", "as", "-n", ns, "-o", "wide")
		if !strings.Contains(out, "https://auth.example.com") || !strings.Contains(out, "Memory") {
			t.Errorf("kubectl get as -o wide does not show issuer and storage:\n%s", out)
		}
	})

	t.Run("explain", func(t *testing.T) {
		// The API server publishes a new CRD's OpenAPI shortly after it is
		// established, so give it a few seconds.
		var out string
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err = kubectl(t, cp, "", "explain", "authorizationservers.spec.signing.rotationInterval")
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("kubectl explain: %v\n%s", err, out)
		}
		if !strings.Contains(out, "RotationInterval is how long a key signs before the next one") {
			t.Errorf("kubectl explain does not show the field's doc comment:\n%s", out)
		}
		out, err = kubectl(t, cp, "", "explain", "oauthclients.spec.clientType")
		if err != nil || !strings.Contains(out, "confidential (default") {
			t.Errorf("kubectl explain oauthclients.spec.clientType: %v\n%s", err, out)
		}
	})

	t.Run("apply rejects a bad object", func(t *testing.T) {
		bad := `
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: leaky-spa}
spec:
  serverRef: {name: gatehouse}
  clientType: public
  grantTypes: [client_credentials]
`
		out, err := kubectl(t, cp, bad, "apply", "-n", ns, "-f", "-")
		if err == nil {
			t.Fatalf("kubectl apply accepted a public client_credentials client:\n%s", out)
		}
		if !strings.Contains(out, "a public client cannot use client_credentials") {
			t.Errorf("kubectl apply error does not explain the rule:\n%s", out)
		}
		if out, err := kubectl(t, cp, "", "get", "oac", "leaky-spa", "-n", ns); err == nil {
			t.Errorf("the rejected object exists:\n%s", out)
		}
	})
}

// The workload-identity tutorial's manifests (examples/workload/k8s) are
// accepted by kubectl and the CRDs as they are written, without warnings,
// and applying them twice changes nothing.
func TestKubectlWorkloadIdentityManifests(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "examples", "workload", "k8s")
	for range 2 {
		out, err := kubectl(t, cp, "", "apply", "-n", ns, "-f", filepath.Join(dir, "server.yaml"), "-f", filepath.Join(dir, "client.yaml"),
			"-f", filepath.Join(dir, "orders-api.yaml"), "-f", filepath.Join(dir, "workload.yaml"))
		if err != nil || strings.Contains(out, "Warning") {
			t.Fatalf("kubectl apply -f examples/workload/k8s: %v\n%s", err, out)
		}
	}
	out, err := kubectl(t, cp, "", "get", "oauthclient", "orders-worker", "-n", ns, "-o", "jsonpath={.spec.authentication.serviceAccount.name}")
	if err != nil || out != "orders-worker" {
		t.Errorf("the client's ServiceAccount: %q %v", out, err)
	}
}
