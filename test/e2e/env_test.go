package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/kubescheme"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Environment variables of real-cluster mode (see the package doc).
const (
	kubeconfigEnv = "GATEHOUSE_E2E_KUBECONFIG"
	issuerEnv     = "GATEHOUSE_E2E_ISSUER"
	namespaceEnv  = "GATEHOUSE_E2E_NAMESPACE"
	chromiumEnv   = "GATEHOUSE_E2E_CHROMIUM"
)

// What the samples name, and what the overlay adds.
const (
	serverName       = "gatehouse"
	webClient        = "storefront"
	webClientSecret  = "storefront-oauth"
	machineClient    = "inventory-sync"
	ordersAudience   = "https://orders.example.com"
	inventoryAudienc = "https://inventory.example.com"
	usersSecret      = "e2e-users"
	username         = "alice"
)

// suite is the running system, shared by the scenarios.
type suite struct {
	local      bool
	ns         string
	issuer     string
	kubeconfig string
	kubectl    string
	c          client.Client
	password   string
	logDir     string
	// Local mode only: the control plane, the gatehouse binary, and the
	// metrics addresses of the operator and the token server.
	cp              *testenv.ControlPlane
	gatehouse       string
	operatorMetrics string
	serverMetrics   string

	callback  *callbackServer
	orders    string // orders-api, audience ordersAudience
	inventory string // orders-api, audience inventoryAudienc

	stops []func()
}

var (
	shared   *suite
	setupErr error
	// missing is set when setupErr is a missing dependency.
	missing bool
)

func TestMain(m *testing.M) {
	began := time.Now()
	shared, setupErr = setup()
	var md missingDependency
	missing = errors.As(setupErr, &md)
	if setupErr == nil {
		progress("system up in %s", time.Since(began).Round(100*time.Millisecond))
	} else {
		progress("setup failed: %v", setupErr)
	}
	// Every secret the suite's HTTP requests and their answers carry is
	// recorded, for checkLogsCarryNoSecrets.
	http.DefaultTransport = recordingTransport{next: http.DefaultTransport}
	code := m.Run()
	if shared != nil {
		// Whatever the scenarios' results: what they handled must not be
		// in the logs either way.
		if err := shared.checkLogsCarryNoSecrets(); err != nil {
			progress("FAIL: %v", err)
			code = 1
		}
	}
	if shared != nil {
		if code != 0 {
			shared.dumpLogs()
		}
		shared.stop()
	}
	progress("done in %s", time.Since(began).Round(100*time.Millisecond))
	os.Exit(code)
}

// get returns the running system or ends the test.
func get(t *testing.T) *suite {
	t.Helper()
	switch {
	case shared != nil:
		return shared
	case missing:
		testenv.MissingDependency(t, setupErr)
	default:
		t.Fatalf("end-to-end setup failed: %v", setupErr)
	}
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

type missingDependency struct{ error }

func setup() (_ *suite, err error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	s := &suite{}
	defer func() {
		if err != nil {
			s.dumpLogs()
			s.stop()
		}
	}()
	if s.logDir, err = os.MkdirTemp("", "gatehouse-e2e-"); err != nil {
		return nil, err
	}
	s.stops = append(s.stops, func() { _ = os.RemoveAll(s.logDir) })
	progress("logs in %s", s.logDir)

	bin := filepath.Join(s.logDir, "bin")
	progress("building gatehouse and orders-api…")
	for _, pkg := range []string{"./cmd/gatehouse", "./examples/orders-api"} {
		cmd := exec.Command("go", "build", "-o", bin+"/", pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	gatehouse := filepath.Join(bin, "gatehouse")

	s.callback, err = newCallbackServer()
	if err != nil {
		return nil, err
	}
	s.stops = append(s.stops, s.callback.close)

	if kc := os.Getenv(kubeconfigEnv); kc != "" {
		// Real-cluster mode.
		s.kubeconfig, s.issuer = kc, os.Getenv(issuerEnv)
		if s.issuer == "" {
			return nil, fmt.Errorf("%s is set, so %s must name the issuer URL that reaches the deployed token server", kubeconfigEnv, issuerEnv)
		}
		s.ns = os.Getenv(namespaceEnv)
		if s.ns == "" {
			s.ns = "gatehouse-e2e"
		}
		if s.kubectl, err = exec.LookPath("kubectl"); err != nil {
			return nil, missingDependency{errors.New("no kubectl on PATH")}
		}
		progress("real-cluster mode: kubeconfig %s, issuer %s, namespace %s", s.kubeconfig, s.issuer, s.ns)
	} else {
		s.local = true
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.issuer = fmt.Sprintf("http://127.0.0.1:%d", port)
		s.ns = "shop"
		progress("starting kube-apiserver and etcd…")
		cp, err := testenv.Start()
		if err != nil {
			var m *testenv.MissingAssetsError
			if errors.As(err, &m) {
				return nil, missingDependency{err}
			}
			return nil, err
		}
		s.stops = append(s.stops, func() { _ = cp.Stop() })
		s.cp, s.gatehouse = cp, gatehouse
		s.kubeconfig = cp.Kubeconfig
		s.kubectl = filepath.Join(cp.AssetsDir, "kubectl")
		if _, err := os.Stat(s.kubectl); err != nil {
			if s.kubectl, err = exec.LookPath("kubectl"); err != nil {
				return nil, missingDependency{fmt.Errorf("no kubectl in %s or on PATH: run `make envtest`", cp.AssetsDir)}
			}
		}
		progress("starting gatehouse operator…")
		metrics, err := freePort()
		if err != nil {
			return nil, err
		}
		s.operatorMetrics = fmt.Sprintf("127.0.0.1:%d", metrics)
		if err := s.start("operator", gatehouse, "operator", "--kubeconfig", s.kubeconfig, "--server-image", "gatehouse:e2e",
			"--leader-elect=false", "--metrics-listen", s.operatorMetrics, "--health-listen", "0",
			"--audit-log", filepath.Join(s.logDir, "audit-operator.log")); err != nil {
			return nil, err
		}
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		return nil, err
	}
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}
	if s.c, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}

	progress("applying config/samples with kubectl (overlay: issuer %s, callback %s)…", s.issuer, s.callback.url)
	if err := s.applySamples(root); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: serverName}}
	if s.local {
		if err := waitCondition(ctx, s.c, srv, "KeysReady"); err != nil {
			return nil, err
		}
		progress("signing keys ready; starting gatehouse server on %s…", s.issuer)
		metrics, err := freePort()
		if err != nil {
			return nil, err
		}
		s.serverMetrics = fmt.Sprintf("127.0.0.1:%d", metrics)
		if err := s.start("server", gatehouse, "server", "--authorization-server", s.ns+"/"+serverName,
			"--listen", strings.TrimPrefix(s.issuer, "http://"), "--metrics-listen", s.serverMetrics,
			"--audit-log", filepath.Join(s.logDir, "audit-server.log")); err != nil {
			return nil, err
		}
		if err := waitHTTP(ctx, "http://"+s.serverMetrics+"/readyz"); err != nil {
			return nil, fmt.Errorf("gatehouse server: %w", err)
		}
	} else {
		if err := waitCondition(ctx, s.c, srv, oauthv1.ConditionReady); err != nil {
			return nil, err
		}
		// Ready means the Deployment is available; the route from this
		// machine (a Service's kube-proxy rules, an Ingress) may follow a
		// moment later, and orders-api exits if the issuer does not answer.
		if err := waitHTTP(ctx, s.issuer+"/.well-known/oauth-authorization-server"); err != nil {
			return nil, fmt.Errorf("the issuer does not answer from this machine: %w", err)
		}
	}
	for _, name := range []string{webClient, machineClient, "orders-cli"} {
		if err := waitCondition(ctx, s.c, &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name}}, oauthv1.ConditionReady); err != nil {
			return nil, err
		}
	}

	progress("starting orders-api twice (audiences %s and %s)…", ordersAudience, inventoryAudienc)
	for _, aud := range []string{ordersAudience, inventoryAudienc} {
		addr, err := s.startOrdersAPI(ctx, filepath.Join(bin, "orders-api"), aud)
		if err != nil {
			return nil, err
		}
		if aud == ordersAudience {
			s.orders = "http://" + addr
		} else {
			s.inventory = "http://" + addr
		}
	}
	return s, nil
}

// applySamples applies config/samples through an overlay that changes what
// must differ here, plus a users Secret with a freshly hashed password.
func (s *suite) applySamples(root string) error {
	dir := filepath.Join(s.logDir, "overlay")
	if err := os.CopyFS(filepath.Join(dir, "samples"), os.DirFS(filepath.Join(root, "config", "samples"))); err != nil {
		return err
	}
	pw := make([]byte, 12)
	if _, err := randRead(pw); err != nil {
		return err
	}
	s.password = fmt.Sprintf("pw-%x", pw)
	hash, err := bcrypt.GenerateFromPassword([]byte(s.password), 10)
	if err != nil {
		return err
	}
	files := map[string]string{
		"users.yaml": fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %s
stringData:
  users.yaml: |
    users:
    - username: %s
      passwordHash: %q
      email: alice@example.com
      name: Alice Example
`, usersSecret, username, hash),
		"kustomization.yaml": fmt.Sprintf(`resources:
- samples
- users.yaml
patches:
- target: {kind: AuthorizationServer, name: %[1]s}
  patch: |
    - {op: replace, path: /spec/issuer, value: %[2]q}
    - {op: replace, path: /spec/signing/prepublishPeriod, value: 1m}
    - {op: add, path: /spec/users, value: {secretRef: {name: %[3]s}}}
- target: {kind: OAuthClient, name: %[4]s}
  patch: |
    - {op: replace, path: /spec/redirectURIs, value: [%[5]q]}
`, serverName, s.issuer, usersSecret, webClient, s.callback.url),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	if _, err := s.run("create", "namespace", s.ns); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		return err
	}
	out, err := s.run("apply", "-n", s.ns, "-k", dir)
	if err != nil {
		return err
	}
	progress("kubectl apply -k:\n%s", strings.TrimSpace(out))
	return nil
}

// run runs kubectl against the cluster.
func (s *suite) run(args ...string) (string, error) {
	return testenv.Kubectl(s.kubectl, s.kubeconfig, args...)
}

// kubectlT runs kubectl or fails the test.
func (s *suite) kubectlT(t *testing.T, args ...string) {
	t.Helper()
	testenv.KubectlT(t, s.kubectl, s.kubeconfig, args...)
}

// applyYAML pipes a manifest to kubectl apply.
func (s *suite) applyYAML(t *testing.T, manifest string) {
	t.Helper()
	if err := s.applyManifest(manifest); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) applyManifest(manifest string) error {
	cmd := exec.Command(s.kubectl, "--kubeconfig", s.kubeconfig, "apply", "-n", s.ns, "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %v\n%s", err, out)
	}
	return nil
}

// start runs a child process that gets SIGKILL if the test binary dies.
func (s *suite) start(name, path string, args ...string) error {
	log, err := os.Create(filepath.Join(s.logDir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = log.Close() // nothing was written through it
		return fmt.Errorf("starting %s: %w", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.stops = append(s.stops, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = log.Close() // the process wrote through its own descriptor
	})
	return nil
}

// startOrdersAPI runs examples/orders-api and reads its address from its
// first log line.
func (s *suite) startOrdersAPI(ctx context.Context, path, audience string) (string, error) {
	name := "orders-api-" + strings.TrimSuffix(strings.TrimPrefix(audience, "https://"), ".example.com")
	if err := s.start(name, path, "--issuer", s.issuer, "--audience", audience, "--listen", "127.0.0.1:0"); err != nil {
		return "", err
	}
	logPath := filepath.Join(s.logDir, name+".log")
	for ctx.Err() == nil {
		if log, err := os.ReadFile(logPath); err == nil {
			for l := range bytes.Lines(log) {
				var line struct{ Msg, Addr string }
				if json.Unmarshal(l, &line) == nil && line.Msg == "listening" && line.Addr != "" {
					return line.Addr, nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("%s did not start; its log:\n%s", name, tail(logPath, 20))
}

func (s *suite) stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

func (s *suite) dumpLogs() {
	if s == nil || s.logDir == "" {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(s.logDir, "*.log"))
	for _, l := range logs {
		fmt.Fprintf(os.Stderr, "--- last lines of %s ---\n%s\n", filepath.Base(l), tail(l, 30))
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitCondition waits until obj's condition typ is True for its current
// generation.
func waitCondition(ctx context.Context, c client.Client, obj client.Object, typ string) error {
	last := "not found"
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err == nil {
			var conds []metav1.Condition
			switch o := obj.(type) {
			case *oauthv1.AuthorizationServer:
				conds = o.Status.Conditions
			case *oauthv1.OAuthClient:
				conds = o.Status.Conditions
			}
			cond := meta.FindStatusCondition(conds, typ)
			if cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == obj.GetGeneration() {
				return nil
			}
			if cond != nil {
				last = fmt.Sprintf("%s=%s %s: %s", typ, cond.Status, cond.Reason, cond.Message)
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%T %s/%s: %s never became True: %s", obj, obj.GetNamespace(), obj.GetName(), typ, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func waitHTTP(ctx context.Context, url string) error {
	var last error
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: %v", url, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// appSecret reads an OAuthClient's Secret, as an app that mounts it would.
func (s *suite) appSecret(t *testing.T, name string) map[string]string {
	t.Helper()
	sec := &corev1.Secret{}
	if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: name}, sec); err != nil {
		t.Fatalf("reading Secret %s: %v", name, err)
	}
	out := map[string]string{}
	for k, v := range sec.Data {
		out[k] = string(v)
	}
	return out
}

// freePort is a TCP port on 127.0.0.1 that nothing listens on now.
var freePort = devenv.FreePort
