package cluster

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// TestEnvSecretAppRolledOnRotation runs an app that reads its credentials
// from environment variables once, at start (envFrom the OAuthClient's
// Secret, under the names secretKeyAliases gives them), as apps such as
// oauth2-proxy and Grafana do. Its Deployment opts in with
// oauth.gatehouse.dev/restart-on-secret-rotation; a bystander Deployment
// reading the same Secret does not. After a rotation the operator rolls
// the app, long before the 10-minute grace period ends: the new pod gets
// tokens with the new secret, and no pod ever had a failed request. The
// bystander keeps its pod (and the old secret, until the grace period
// ends).
func TestEnvSecretAppRolledOnRotation(t *testing.T) {
	s := get(t)
	const appPort = 30086
	s.buildImage(t, "localhost/gatehouse-testapp:1", "./test/cluster/cmd/testapp")
	app := func(name, annotations string) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  annotations: {%[2]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532}
      containers:
      - name: app
        image: localhost/gatehouse-testapp:1
        imagePullPolicy: Never
        args: [--token-url, http://%[3]s-server.%[4]s.svc.cluster.local/token, --scope, %[5]s,
               --env-client-id, APP_CLIENT_ID, --env-client-secret, APP_CLIENT_SECRET]
        envFrom: [{secretRef: {name: env-app-oauth-client}}]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 2}
`, name, annotations, serverName, ns, machineScope)
	}
	s.applyT(t, ns, fmt.Sprintf(`apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: env-app}
spec:
  serverRef: {name: %[1]s}
  grantTypes: [client_credentials]
  scopes: [%[2]s]
  secretRotation: {gracePeriod: 10m}
  secretKeyAliases:
  - {name: APP_CLIENT_ID, from: client_id}
  - {name: APP_CLIENT_SECRET, from: client_secret}
`, serverName, machineScope))
	s.kubectlT(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "oauthclient/env-app")
	s.applyT(t, ns, app("env-app", oauthv1.AnnotationRestartOnSecretRotation+": env-app")+"---\n"+app("env-bystander", "")+fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: env-app}
spec:
  type: NodePort
  selector: {app: env-app}
  ports: [{name: http, port: 80, targetPort: http, nodePort: %d}]
`, appPort))
	for _, d := range []string{"env-app", "env-bystander"} {
		s.kubectlT(t, "rollout", "status", "-n", ns, "deployment/"+d, "--timeout=3m")
	}
	statsURL := fmt.Sprintf("http://127.0.0.1:%d/stats", appPort)
	// Opting in rolled the app once; wait for that to settle.
	testenv.Eventually(t, time.Minute, func() error {
		if rev := s.deployment(t, "env-app").Spec.Template.Annotations[oauthv1.AnnotationClientSecretRevision]; rev == "" {
			return fmt.Errorf("the opted-in Deployment has no revision yet")
		}
		return nil
	})
	s.kubectlT(t, "rollout", "status", "-n", ns, "deployment/env-app", "--timeout=3m")
	bystanderPods := podNames(s.pods(t, "env-bystander"))

	var st *appStats
	testenv.Eventually(t, time.Minute, func() error {
		var err error
		if st, err = appStatsFrom(t.Context(), statsURL); err != nil {
			return err
		}
		if st.OK < 5 {
			return fmt.Errorf("the app has %d good token requests, %d failed: %v", st.OK, st.Failed, st.Errors)
		}
		return nil
	})
	if st.Failed > 0 {
		t.Fatalf("the app had %d failed token requests before the rotation: %v", st.Failed, st.Errors)
	}
	oldPod, oldHash := st.Pod, st.Secret
	if got := secretHash(s.secret(t, ns, "env-app-oauth-client")["APP_CLIENT_SECRET"]); got != oldHash {
		t.Fatalf("the app's secret %s is not the Secret's alias %s", oldHash, got)
	}
	oldRev := s.deployment(t, "env-app").Spec.Template.Annotations[oauthv1.AnnotationClientSecretRevision]

	// Rotate.
	var oc oauthv1.OAuthClient
	if err := s.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "env-app"}, &oc); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(oc.DeepCopy())
	oc.Annotations = map[string]string{oauthv1.AnnotationRotateSecret: time.Now().Format(time.RFC3339Nano)}
	if err := s.c.Patch(t.Context(), &oc, patch); err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	var rolled time.Duration
	testenv.Eventually(t, time.Minute, func() error {
		if s.deployment(t, "env-app").Spec.Template.Annotations[oauthv1.AnnotationClientSecretRevision] == oldRev {
			return fmt.Errorf("the Deployment has not been restarted")
		}
		rolled = time.Since(rotated)
		return nil
	})
	t.Logf("the operator restarted the opted-in Deployment %s after the rotation", rolled.Round(time.Millisecond))
	s.kubectlT(t, "rollout", "status", "-n", ns, "deployment/env-app", "--timeout=3m")
	newHash := secretHash(s.secret(t, ns, "env-app-oauth-client")["APP_CLIENT_SECRET"])
	if newHash == oldHash {
		t.Fatal("the rotation did not change the alias")
	}
	testenv.Eventually(t, 2*time.Minute, func() error {
		var err error
		if st, err = appStatsFrom(t.Context(), statsURL); err != nil {
			return err
		}
		if st.Pod == oldPod || st.OKBySecret[newHash] < 3 {
			return fmt.Errorf("pod %s: %d good requests with the new secret %s (its secret: %s)", st.Pod, st.OKBySecret[newHash], newHash, st.Secret)
		}
		return nil
	})
	if st.Failed > 0 {
		t.Fatalf("the restarted app had %d failed token requests: %v", st.Failed, st.Errors)
	}
	inUse := time.Since(rotated)
	if inUse > 5*time.Minute {
		t.Errorf("the new secret was in use %s after the rotation: not well inside the 10m grace period", inUse)
	}
	t.Logf("a new pod %s uses the new secret %s after the rotation (grace period 10m), 0 failed requests", st.Pod, inUse.Round(time.Second))
	if got := podNames(s.pods(t, "env-bystander")); fmt.Sprint(got) != fmt.Sprint(bystanderPods) {
		t.Errorf("a Deployment that did not opt in was restarted: pods %v, were %v", got, bystanderPods)
	}
	if rev := s.deployment(t, "env-bystander").Spec.Template.Annotations[oauthv1.AnnotationClientSecretRevision]; rev != "" {
		t.Errorf("a Deployment that did not opt in was annotated %s", rev)
	}
	s.kubectlT(t, "delete", "-n", ns, "deployment/env-app", "deployment/env-bystander", "service/env-app", "oauthclient/env-app")
}

// pods are the running pods of app (label app=<app>) in ns.
func (s *suite) pods(t *testing.T, app string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	if err := s.c.List(t.Context(), &list, client.InNamespace(ns), client.MatchingLabels{"app": app}); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}
