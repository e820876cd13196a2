// Package install_test checks the two ways platform teams install
// Gatehouse, the Helm chart and kustomize's config/default, against a real
// API server: they render, the API server accepts what they render, the
// chart's CRDs are the generated ones, and the operator's RBAC is enough to
// run the operator.
package install_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// helm returns the helm binary `make helm` builds ($HELM, else bin/helm-*).
func helm(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("HELM"); path != "" {
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	matches, _ := filepath.Glob(filepath.Join(repoRoot(t), "bin", "helm-*"))
	if len(matches) == 0 {
		testenv.MissingDependency(t, errors.New("no helm binary in bin/: run `make helm`"))
	}
	slices.Sort(matches)
	return matches[len(matches)-1]
}

func run(t *testing.T, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot(t)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func decode(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		var raw map[string]any
		if err := d.Decode(&raw); err != nil {
			if err.Error() == "EOF" {
				return objs
			}
			t.Fatalf("decoding rendered manifest: %v", err)
		}
		if raw != nil {
			objs = append(objs, &unstructured.Unstructured{Object: raw})
		}
	}
}

func encode(t *testing.T, objs []*unstructured.Unstructured) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out.Bytes()
}

func newNamespace(t *testing.T, cp *testenv.ControlPlane) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "install-"}}
	if err := cp.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// dryRunApply sends objects to the API server with server-side apply in
// dry-run mode: full validation and admission, nothing persisted. ns is the
// namespace of namespaced objects that name none; "" keeps their own.
func dryRunApply(t *testing.T, cp *testenv.ControlPlane, ns string, objs []*unstructured.Unstructured) {
	t.Helper()
	args := []string{"--kubeconfig", cp.Kubeconfig, "apply", "--server-side", "--dry-run=server", "--field-manager=install-test", "-f", "-"}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	out, err := run(t, encode(t, objs), cp.Kubectl(t), args...)
	if err != nil {
		t.Fatalf("the API server refused the rendered objects: %v", err)
	}
	if got := strings.Count(out, "(server dry run)"); got != len(objs) {
		t.Errorf("%d of %d objects applied:\n%s", got, len(objs), out)
	}
}

func TestHelmLint(t *testing.T) {
	if out, err := run(t, nil, helm(t), "lint", "--strict", "charts/gatehouse"); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
}

// TestHelmTemplate renders the chart for a small table of values and sends
// what it renders to the API server.
func TestHelmTemplate(t *testing.T) {
	cp := testenv.Get(t)
	cases := []struct {
		name   string
		values string
		check  func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		{name: "defaults", check: func(t *testing.T, objs []*unstructured.Unstructured) {
			dep := find(t, objs, "Deployment", "")
			container := nested(t, dep, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
			if got := container["image"]; got != "ghcr.io/gatehouse-dev/gatehouse:0.1.0" {
				t.Errorf("image %v, want the chart's appVersion as the tag", got)
			}
			sc := container["securityContext"].(map[string]any)
			if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false ||
				fmt.Sprint(nested(t, dep, "spec", "template", "spec", "securityContext", "seccompProfile", "type")) != "RuntimeDefault" ||
				fmt.Sprint(sc["capabilities"]) != "map[drop:[ALL]]" || nested(t, dep, "spec", "template", "spec", "securityContext", "runAsNonRoot") != true {
				t.Errorf("the operator's security context is not locked down: %v", sc)
			}
			if container["resources"].(map[string]any)["requests"] == nil {
				t.Error("no resource requests")
			}
			checkWritableTmp(t, dep)
			if kinds(objs)["ServiceMonitor"] || kinds(objs)["AuthorizationServer"] || kinds(objs)["PrometheusRule"] || kinds(objs)["ConfigMap"] {
				t.Errorf("optional objects rendered by default: %v", kinds(objs))
			}
		}},
		{name: "everything on", values: `
image: {repository: registry.example.com/gatehouse, tag: v9.9.9}
operator:
  replicas: 2
  watchNamespaces: [auth, shop]
  logLevel: debug
serviceAccount: {name: gh-op, annotations: {team: platform}}
metrics: {serviceMonitor: {enabled: true, labels: {release: prom}}}
alerts: {enabled: true, labels: {release: prom}, ruleLabels: {team: identity}}
dashboards: {enabled: true, namespace: monitoring}
authorizationServer:
  create: true
  name: main
  spec:
    issuer: https://auth.example.com
    users: {secretRef: {name: gatehouse-users}}
`, check: func(t *testing.T, objs []*unstructured.Unstructured) {
			dep := find(t, objs, "Deployment", "")
			container := nested(t, dep, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
			args := fmt.Sprint(container["args"])
			for _, want := range []string{"--namespaces=auth,shop", "--zap-log-level=debug", "--leader-elect=true"} {
				if !strings.Contains(args, want) {
					t.Errorf("args %s lack %s", args, want)
				}
			}
			if container["image"] != "registry.example.com/gatehouse:v9.9.9" || !strings.Contains(fmt.Sprint(container["env"]), "registry.example.com/gatehouse:v9.9.9") {
				t.Errorf("image and GATEHOUSE_IMAGE do not follow image.tag: %v %v", container["image"], container["env"])
			}
			if find(t, objs, "ServiceAccount", "gh-op") == nil || find(t, objs, "AuthorizationServer", "main") == nil {
				t.Error("service account name or AuthorizationServer missing")
			}
			sm := find(t, objs, "ServiceMonitor", "")
			if fmt.Sprint(nested(t, sm, "metadata", "labels", "release")) != "prom" {
				t.Errorf("ServiceMonitor labels: %v", sm.GetLabels())
			}
			// The token servers' ServiceMonitor looks where the operator
			// watches.
			servers := find(t, objs, "ServiceMonitor", "gh-gatehouse-token-servers")
			if got := fmt.Sprint(nested(t, servers, "spec", "namespaceSelector", "matchNames")); got != "[auth shop]" {
				t.Errorf("token-server ServiceMonitor namespaces %s, want [auth shop]", got)
			}
			rule := find(t, objs, "PrometheusRule", "")
			if fmt.Sprint(nested(t, rule, "metadata", "labels", "release")) != "prom" || !strings.Contains(fmt.Sprint(rule.Object["spec"]), "team:identity") {
				t.Errorf("PrometheusRule labels %v or its rules' labels", rule.GetLabels())
			}
			if cm := find(t, objs, "ConfigMap", "gh-gatehouse-dashboards"); cm.GetNamespace() != "monitoring" || cm.GetLabels()["grafana_dashboard"] != "1" {
				t.Errorf("dashboard ConfigMap %s/%s labels %v", cm.GetNamespace(), cm.GetName(), cm.GetLabels())
			}
		}},
		{name: "no metrics service, existing service account", values: `
serviceAccount: {create: false, name: existing-sa}
metrics: {service: {enabled: false}}
`, check: func(t *testing.T, objs []*unstructured.Unstructured) {
			if kinds(objs)["Service"] || kinds(objs)["ServiceAccount"] {
				t.Errorf("rendered objects switched off: %v", kinds(objs))
			}
			binding := find(t, objs, "ClusterRoleBinding", "")
			if !strings.Contains(fmt.Sprint(binding.Object["subjects"]), "existing-sa") {
				t.Errorf("binding subjects %v do not name the existing service account", binding.Object["subjects"])
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t, cp)
			objs := render(t, ns, tc.values)
			tc.check(t, objs)
			// The API server has no prometheus-operator CRDs; everything
			// else must pass its validation. The dashboard's namespace is
			// not the test's.
			objs = slices.DeleteFunc(objs, func(o *unstructured.Unstructured) bool {
				return o.GetKind() == "ServiceMonitor" || o.GetKind() == "PrometheusRule" || o.GetKind() == "ConfigMap"
			})
			dryRunApply(t, cp, ns, objs)
		})
	}
}

// TestHelmRejectsBadValues: values.schema.json turns a typo or a bad value
// into a clear install-time error.
func TestHelmRejectsBadValues(t *testing.T) {
	for _, tc := range []struct{ values, want string }{
		{`operatr: {replicas: 2}`, "additional properties 'operatr' not allowed"},
		{`operator: {replicas: -1}`, "at '/operator/replicas': minimum: got -1, want 0"},
		{`image: {pullPolicy: Sometimes}`, "pullPolicy"},
		{`operator: {logLevel: verbose}`, "logLevel"},
		{`operator: {watchNamespaces: [Bad_NS]}`, "watchNamespaces"},
		{`authorizationServer: {create: true, spec: {}}`, "issuer"},
		{`serviceAccount: {create: false}`, "serviceAccount.name is required when serviceAccount.create is false"},
		{`metrics: {service: {enabled: false}, serviceMonitor: {enabled: true}}`, "metrics.serviceMonitor.enabled needs metrics.service.enabled"},
	} {
		out, err := run(t, nil, helm(t), "template", "bad", "charts/gatehouse", "-f", valuesFile(t, tc.values))
		if err == nil {
			t.Errorf("values %q rendered; want an error mentioning %q", tc.values, tc.want)
			continue
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("values %q: error does not mention %q:\n%s", tc.values, tc.want, out)
		}
	}
}

// TestChartCRDsAreTheGeneratedOnes: the chart installs exactly the CRDs in
// config/crd/bases (`make manifests` copies them; this catches a stale copy
// even where `make verify` is not run).
func TestChartCRDsAreTheGeneratedOnes(t *testing.T) {
	root := repoRoot(t)
	generated, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	inChart, _ := filepath.Glob(filepath.Join(root, "charts", "gatehouse", "crds", "*.yaml"))
	if len(generated) == 0 || len(generated) != len(inChart) {
		t.Fatalf("config/crd/bases has %d CRDs, the chart %d", len(generated), len(inChart))
	}
	for _, g := range generated {
		want, _ := os.ReadFile(g)
		got, err := os.ReadFile(filepath.Join(root, "charts", "gatehouse", "crds", filepath.Base(g)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("charts/gatehouse/crds/%s differs from config/crd/bases (run `make manifests`)", filepath.Base(g))
		}
	}
}

func TestKustomizeDefault(t *testing.T) {
	cp := testenv.Get(t)
	out, err := run(t, nil, cp.Kubectl(t), "kustomize", "config/default")
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, out)
	k := kinds(objs)
	for _, want := range []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"} {
		if !k[want] {
			t.Errorf("config/default renders no %s", want)
		}
	}
	binding := find(t, objs, "ClusterRoleBinding", "gatehouse-operator")
	if !strings.Contains(fmt.Sprint(binding.Object["subjects"]), "namespace:gatehouse-system") {
		t.Errorf("the binding's subject is not in gatehouse-system: %v", binding.Object["subjects"])
	}
	// The namespace must exist for a dry run of the objects in it.
	if err := cp.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-system"}}); err != nil {
		t.Fatal(err)
	}
	objs = slices.DeleteFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "Namespace" })
	// The same RBAC as the chart: both come from controller-gen's output.
	chartRole := find(t, render(t, "default", ""), "ClusterRole", "")
	if fmt.Sprint(chartRole.Object["rules"]) != fmt.Sprint(find(t, objs, "ClusterRole", "gatehouse-operator").Object["rules"]) {
		t.Error("the chart's ClusterRole rules differ from config/rbac/role.yaml")
	}
	checkWritableTmp(t, find(t, objs, "Deployment", "gatehouse-operator"))
	dryRunApply(t, cp, "", objs)
}

// checkWritableTmp: the root filesystem is read-only, and the binary's
// package init (controller-runtime's envtest, linked in for gatehouse dev)
// creates a directory in /tmp and panics if it cannot, so the pod must
// mount an emptyDir there; a real kubelet showed it crash-looping without.
func checkWritableTmp(t *testing.T, dep *unstructured.Unstructured) {
	t.Helper()
	spec := nested(t, dep, "spec", "template", "spec").(map[string]any)
	container := spec["containers"].([]any)[0].(map[string]any)
	var volume string
	mounts, _ := container["volumeMounts"].([]any)
	for _, m := range mounts {
		if m := m.(map[string]any); m["mountPath"] == "/tmp" {
			volume = fmt.Sprint(m["name"])
		}
	}
	volumes, _ := spec["volumes"].([]any)
	for _, v := range volumes {
		if v := v.(map[string]any); v["name"] == volume && v["emptyDir"] != nil {
			return
		}
	}
	t.Errorf("Deployment %s mounts no emptyDir at /tmp (mounts %v, volumes %v)", dep.GetName(), mounts, volumes)
}

// TestOperatorRunsWithTheChartsPermissions installs the chart's
// ServiceAccount and RBAC for real, then runs the operator as that
// ServiceAccount (impersonation) and checks that it does its whole job:
// client Secret, status, keys, JWKS and the token server's runtime. A
// missing rule shows up as a Forbidden error and a reconcile that never
// finishes.
func TestOperatorRunsWithTheChartsPermissions(t *testing.T) {
	cp := testenv.Get(t)
	ctx := context.Background()
	ns := newNamespace(t, cp)
	var rbacObjs []*unstructured.Unstructured
	for _, o := range render(t, ns, "") {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			rbacObjs = append(rbacObjs, o)
		}
	}
	if out, err := run(t, encode(t, rbacObjs), cp.Kubectl(t), "--kubeconfig", cp.Kubeconfig, "apply", "-n", ns, "--server-side", "-f", "-"); err != nil {
		t.Fatalf("installing the chart's RBAC: %v\n%s", err, out)
	}
	sa := find(t, rbacObjs, "ServiceAccount", "")

	asOperator := rest.CopyConfig(cp.Config)
	asOperator.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa.GetName())}
	// client-go's own logging (leader election, events) goes to the same
	// buffer, so that its RBAC denials are caught too.
	logs := &testenv.LogBuffer{}
	logger := zap.New(zap.WriteTo(logs))
	klog.SetLogger(logger)
	defer klog.ClearLogger()
	mgr, err := ctrl.NewManager(asOperator, ctrl.Options{
		Scheme:                  cp.Scheme,
		Cache:                   controllers.CacheOptions(nil),
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		LeaderElection:          true,
		LeaderElectionID:        "gatehouse-operator",
		LeaderElectionNamespace: ns,
		Logger:                  logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{ServerImage: "gatehouse:test", SkipNameValidation: true}); err != nil {
		t.Fatal(err)
	}
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	}()

	app := newNamespace(t, cp)
	two := int32(2)
	objs := []client.Object{
		&oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"}, Spec: oauthv1.AuthorizationServerSpec{
			Issuer:         "https://auth.example.com",
			AllowedClients: oauthv1.AllowedClients{Namespaces: oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromAll}},
			// Two replicas and a NetworkPolicy: the PodDisruptionBudget,
			// the NetworkPolicy and the API server's EndpointSlice need
			// permissions of their own.
			Replicas: &two,
			Storage: oauthv1.StorageSpec{Type: oauthv1.StoragePostgres, Postgres: &oauthv1.PostgresStorage{
				URLSecretRef: oauthv1.SecretKeyReference{Name: "db", Key: "url"},
			}},
			Network: oauthv1.NetworkSpec{Policy: &oauthv1.NetworkPolicySpec{}},
		}},
		&oauthv1.Scope{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "read"}, Spec: oauthv1.ScopeSpec{
			ServerRef: oauthv1.LocalObjectReference{Name: "auth"}, Name: "orders:read", Description: "Read orders",
			AllowedClients: oauthv1.AllowedClients{Namespaces: oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromAll}},
		}},
		&oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "shop"}, Spec: oauthv1.OAuthClientSpec{
			ServerRef:    oauthv1.ServerReference{Name: "auth", Namespace: ns},
			RedirectURIs: []oauthv1.RedirectURI{"https://shop.example.com/cb"},
			Scopes:       []oauthv1.ScopeName{"orders:read"},
		}},
	}
	for _, o := range objs {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		err := operatorDone(ctx, cp.Client, ns, app)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the operator did not finish with the chart's permissions: %v\noperator log (forbidden lines):\n%s", err, grep(logs.String(), "forbidden"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if forbidden := grep(logs.String(), "forbidden"); forbidden != "" {
		t.Errorf("the operator hit RBAC denials:\n%s", forbidden)
	}
}

// operatorDone reports what the operator has not done yet.
func operatorDone(ctx context.Context, c client.Client, ns, app string) error {
	var oc oauthv1.OAuthClient
	if err := c.Get(ctx, client.ObjectKey{Namespace: app, Name: "shop"}, &oc); err != nil {
		return err
	}
	if !meta.IsStatusConditionTrue(oc.Status.Conditions, oauthv1.ConditionReady) || len(oc.Status.SecretHashes) == 0 {
		return fmt.Errorf("OAuthClient not Ready: %+v", oc.Status.Conditions)
	}
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: app, Name: oc.Status.SecretName}, &secret); err != nil {
		return fmt.Errorf("app Secret: %w", err)
	}
	var scope oauthv1.Scope
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "read"}, &scope); err != nil {
		return err
	}
	if !meta.IsStatusConditionTrue(scope.Status.Conditions, oauthv1.ConditionReady) {
		return fmt.Errorf("Scope not Ready: %+v", scope.Status.Conditions)
	}
	var srv oauthv1.AuthorizationServer
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "auth"}, &srv); err != nil {
		return err
	}
	if srv.Status.ActiveKeyID == "" {
		return fmt.Errorf("no active key yet: %+v", srv.Status.Conditions)
	}
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: keyset.SecretName("auth")}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: keyset.JWKSConfigMapName("auth")}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: controllers.ServerObjectName(&srv)}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: controllers.ServerObjectName(&srv)}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: controllers.ServerObjectName(&srv)}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: controllers.ServerObjectName(&srv)}},
	} {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.GetName()}, o); err != nil {
			return fmt.Errorf("%T %s: %w", o, o.GetName(), err)
		}
	}
	var deployments unstructured.UnstructuredList
	deployments.SetAPIVersion("apps/v1")
	deployments.SetKind("DeploymentList")
	if err := c.List(ctx, &deployments, client.InNamespace(ns)); err != nil {
		return err
	}
	if len(deployments.Items) == 0 {
		return errors.New("no token server Deployment yet")
	}
	return nil
}

func render(t *testing.T, ns, values string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "gh", "charts/gatehouse", "--namespace", ns}
	if values != "" {
		args = append(args, "-f", valuesFile(t, values))
	}
	out, err := run(t, nil, helm(t), args...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return decode(t, out)
}

// valuesFile writes values to a file whose path has no comma (helm splits
// -f on commas, and subtest names carry them).
func valuesFile(t *testing.T, values string) string {
	t.Helper()
	f, err := os.CreateTemp("", "values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(f.Name()) })
	if _, err := f.WriteString(values); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func kinds(objs []*unstructured.Unstructured) map[string]bool {
	k := map[string]bool{}
	for _, o := range objs {
		k[o.GetKind()] = true
	}
	return k
}

// find returns the object of a kind (and name, when given), failing the test
// when there is none.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o
		}
	}
	t.Fatalf("no %s %q among the rendered objects", kind, name)
	return nil
}

func nested(t *testing.T, o *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, found, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil || !found {
		t.Fatalf("%s %s has no %s", o.GetKind(), o.GetName(), strings.Join(path, "."))
	}
	return v
}

func grep(text, word string) string {
	var lines []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(strings.ToLower(line), word) {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}
