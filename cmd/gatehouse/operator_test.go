package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestOperatorFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"operator", "--server-image", "x", "--concurrency", "0"}, "--concurrency must be between 1 and 100"},
		{[]string{"operator", "--server-image", "x", "--namespaces", "ok,Not_OK"}, `"Not_OK" is not a namespace name`},
		{[]string{"operator", "--server-image", ""}, "--server-image (or $GATEHOUSE_IMAGE) is required"},
		{[]string{"operator", "--server-image", "x", "stray"}, `unexpected argument "stray"`},
		{[]string{"operator", "--server-image", "x", "--kube-api-qps", "0"}, "must be positive"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestOperatorCommand runs `gatehouse operator` against a test API server:
// leader election, probes, metrics (with the gatehouse_* counters), JSON
// logs, and an OAuthClient reaching Ready.
func TestOperatorCommand(t *testing.T) {
	cp := testenv.Get(t)
	c := cp.Client
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "op-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}

	metrics, health := freeAddr(t), freeAddr(t)
	runCtx, cancel := context.WithCancel(ctx)
	logs := &testenv.LogBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"operator", "--kubeconfig", cp.Kubeconfig, "--namespaces", ns.Name,
			"--server-image", "gatehouse:test", "--metrics-listen", metrics, "--health-listen", health,
			"--leader-election-namespace", ns.Name, "--concurrency", "2"}, io.Discard, logs)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("operator exited %d; logs:\n%s", code, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("operator did not stop")
		}
	}()

	applyServerAndClient(t, c, ns.Name, logs)
	for _, path := range []string{"/healthz", "/readyz"} {
		testenv.Eventually(t, 10*time.Second, func() error {
			_, err := httpGet("http://" + health + path)
			return err
		})
	}
	var body string
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		body, err = httpGet("http://" + metrics + "/metrics")
		if err == nil && !strings.Contains(body, `gatehouse_client_secrets_total{event="generated"}`) {
			err = fmt.Errorf("no generated-secret counter yet")
		}
		// The Ready client, counted from the operator's cache.
		if err == nil && !strings.Contains(body, `gatehouse_oauthclients{reason="Ready",status="True"} 1`) {
			err = fmt.Errorf("the Ready client is not counted yet")
		}
		return err
	})
	for _, want := range []string{"controller_runtime_reconcile_total", "gatehouse_signing_keys_rotated_total", "leader_election_master_status"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"starting the Gatehouse operator"`) {
		t.Errorf("logs are not structured JSON:\n%.2000s", logs.String())
	}
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), nil
}

// applyServerAndClient applies an AuthorizationServer "auth" and an
// OAuthClient "app" in ns and waits until a running operator has made
// the client Ready; logs are the operator's, shown when it does not.
func applyServerAndClient(t *testing.T, c client.Client, ns string, logs *testenv.LogBuffer) {
	t.Helper()
	ctx := t.Context()
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://127.0.0.1:8443"}}
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "auth"},
			RedirectURIs: []oauthv1.RedirectURI{"https://app.test/cb"}}}
	for _, o := range []client.Object{srv, oc} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(oc), oc); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(oc.Status.Conditions, oauthv1.ConditionReady) {
			return fmt.Errorf("OAuthClient not Ready: %+v; operator logs:\n%s", oc.Status.Conditions, logs.String())
		}
		return nil
	})
}
