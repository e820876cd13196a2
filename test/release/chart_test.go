package release_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/kubescheme"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// helm is the binary make helm builds ($HELM, else the newest bin/helm-*).
func helm(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HELM"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	matches, _ := filepath.Glob(filepath.Join(repoRoot(t), "bin", "helm-*"))
	if len(matches) == 0 {
		testenv.MissingDependency(t, fmt.Errorf("no helm in bin/: run `make helm`"))
	}
	slices.Sort(matches)
	return matches[len(matches)-1]
}

func runHelm(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// packageChart runs hack/release/chart.sh (make release-chart) for version
// and returns the package's path.
func packageChart(t *testing.T, version string) string {
	t.Helper()
	pkg := script(t, []string{"VERSION=" + version, "HELM=" + helm(t), "OUT=" + t.TempDir()}, "hack/release/chart.sh")
	if _, err := os.Stat(pkg); err != nil {
		t.Fatalf("chart.sh printed %q: %v", pkg, err)
	}
	return pkg
}

// operatorImage is the image of the operator Deployment a chart renders,
// and its GATEHOUSE_IMAGE (the token servers' default image).
func operatorImage(t *testing.T, manifest string) (image, serverImage string) {
	t.Helper()
	for doc := range strings.SplitSeq(manifest, "\n---") {
		var obj struct {
			Kind string `json:"kind"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Image string `json:"image"`
							Env   []struct {
								Name  string `json:"name"`
								Value string `json:"value"`
							} `json:"env"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if yaml.Unmarshal([]byte(doc), &obj) != nil || obj.Kind != "Deployment" {
			continue
		}
		c := obj.Spec.Template.Spec.Containers[0]
		for _, e := range c.Env {
			if e.Name == "GATEHOUSE_IMAGE" {
				serverImage = e.Value
			}
		}
		return c.Image, serverImage
	}
	t.Fatal("the chart renders no Deployment")
	return "", ""
}

// TestReleaseChart packages the chart as the release workflow does and
// checks that its version is the tag without "v", its appVersion the tag,
// and its default image (operator and token servers) the image the
// workflow pushes, with runbook links to the tag's docs. A version that
// is not a release tag is refused.
func TestReleaseChart(t *testing.T) {
	const tag = "v1.2.3-rc.1"
	pkg := packageChart(t, tag)
	if filepath.Base(pkg) != "gatehouse-1.2.3-rc.1.tgz" {
		t.Errorf("package %s", filepath.Base(pkg))
	}
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal([]byte(runHelm(t, "show", "chart", pkg)), &chart); err != nil {
		t.Fatal(err)
	}
	if chart.Version != "1.2.3-rc.1" || chart.AppVersion != tag {
		t.Errorf("version %q, appVersion %q; want 1.2.3-rc.1 and %s", chart.Version, chart.AppVersion, tag)
	}
	image, serverImage := operatorImage(t, runHelm(t, "template", "gatehouse", pkg, "--namespace", "gatehouse-system"))
	if want := "ghcr.io/gatehouse-dev/gatehouse:" + tag; image != want || serverImage != want {
		t.Errorf("operator image %q, token servers' %q; want %q", image, serverImage, want)
	}
	rules := runHelm(t, "template", "gatehouse", pkg, "--set", "alerts.enabled=true", "--show-only", "templates/prometheusrule.yaml")
	if !strings.Contains(rules, "https://github.com/gatehouse-dev/gatehouse/blob/"+tag+"/docs/runbooks/GatehouseTokenReplay.md") {
		t.Error("the released chart's runbook links do not point at the tag's docs")
	}
	for _, bad := range []string{"1.2", "latest", "v1.2.3/x"} {
		cmd := exec.Command(filepath.Join(repoRoot(t), "hack/release/chart.sh"))
		cmd.Env = append(os.Environ(), "VERSION="+bad, "HELM="+helm(t), "OUT="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "is not a release tag") {
			t.Errorf("VERSION=%s: %v\n%s", bad, err, out)
		}
	}
}

// Environment of make test-cluster.
const kubeconfigEnv = "GATEHOUSE_CLUSTER_KUBECONFIG"

// TestReleaseChartInstalls installs the packaged chart of a release on
// the local cluster (make cluster, then make test-cluster, which runs this
// after its own release is uninstalled) with nothing overridden but the
// namespaces the operator watches: the operator and a token server run
// from the release image, loaded as the tag the chart defaults to.
func TestReleaseChartInstalls(t *testing.T) {
	kubeconfig := os.Getenv(kubeconfigEnv)
	if kubeconfig == "" {
		t.Skipf("no cluster: %s is unset (make cluster, then make test-cluster)", kubeconfigEnv)
	}
	const tag, release, releaseNS, ns = "v0.0.0-clustertest", "gatehouse-release", "gatehouse-release", "release-test"
	root := repoRoot(t)
	script(t, []string{"VERSION=" + tag, "OUT=" + filepath.Join(root, "bin", "release-test")}, "hack/release/image.sh")
	script(t, nil, "hack/cluster/cluster.sh", "load", filepath.Join(root, "bin", "release-test", "image.tar"))
	pkg := packageChart(t, tag)

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	scheme, err := kubescheme.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	helmArgs := []string{"--kubeconfig", kubeconfig}
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gatehouse"}})
		_, _ = exec.Command(helm(t), append(helmArgs, "uninstall", release, "-n", releaseNS, "--wait")...).CombinedOutput()
		for _, n := range []string{ns, releaseNS} {
			_ = c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
		}
	})
	began := time.Now()
	runHelm(t, append(helmArgs, "install", release, pkg, "-n", releaseNS, "--create-namespace", "--wait", "--timeout", "5m",
		"--set", "operator.watchNamespaces={"+ns+"}")...)
	t.Logf("helm install %s (chart %s, image ghcr.io/gatehouse-dev/gatehouse:%s) in %s", release, filepath.Base(pkg), tag, time.Since(began).Round(time.Second))

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gatehouse"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "http://127.0.0.1:30099"}}
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "job"}, Spec: oauthv1.OAuthClientSpec{
		ServerRef: oauthv1.ServerReference{Name: "gatehouse"}, GrantTypes: []oauthv1.GrantType{oauthv1.GrantClientCredentials}}}
	for _, o := range []client.Object{srv, oc} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	began = time.Now()
	testenv.Eventually(t, 5*time.Minute, func() error {
		for _, o := range []client.Object{srv, oc} {
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
				return err
			}
		}
		if !meta.IsStatusConditionTrue(srv.Status.Conditions, oauthv1.ConditionReady) {
			return fmt.Errorf("AuthorizationServer not Ready: %v", srv.Status.Conditions)
		}
		if !meta.IsStatusConditionTrue(oc.Status.Conditions, oauthv1.ConditionReady) {
			return fmt.Errorf("OAuthClient not Ready: %v", oc.Status.Conditions)
		}
		return nil
	})
	t.Logf("the release's operator made the token server Ready (its Deployment available, from the release image) in %s",
		time.Since(began).Round(time.Second))
}
