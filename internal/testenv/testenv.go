// Package testenv runs the API test tier: a real kube-apiserver and etcd
// (built from Go modules by hack/build-envtest.sh) with Gatehouse's CRDs
// installed from config/crd/bases.
//
// A test package starts one control plane for all its tests:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		cp := testenv.Get(t)
//		...
//	}
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/gatehouse-dev/gatehouse/internal/kubescheme"
)

// RequireAllEnv names the variable that turns a skip for a missing test
// dependency into a failure. CI sets it, so that a tier never silently
// stops running.
const RequireAllEnv = "GATEHOUSE_REQUIRE_ALL"

// ControlPlane is a running test API server with the CRDs installed.
type ControlPlane struct {
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file for the API server, for
	// tools such as kubectl.
	Kubeconfig string
	// AssetsDir holds the control-plane binaries (and kubectl, when built).
	AssetsDir string

	env *envtest.Environment
	dir string
}

var (
	shared   *ControlPlane
	startErr error
)

// Run starts the control plane, runs the package's tests and stops it. It
// returns the exit code for os.Exit. When the binaries are missing the tests
// still run, and each one that calls Get is skipped or failed by Get.
func Run(m *testing.M) int {
	shared, startErr = Start()
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stopping the control plane: %v\n", err)
		}
	}
	return code
}

// Get returns the package's control plane, or ends the test when there is
// none: a loud skip when the binaries are missing, a failure when they are
// missing under GATEHOUSE_REQUIRE_ALL=1 or when the control plane would not
// start.
func Get(t testing.TB) *ControlPlane {
	t.Helper()
	var missing *MissingAssetsError
	switch {
	case shared != nil:
		return shared
	case errors.As(startErr, &missing):
		MissingDependency(t, startErr)
	case startErr != nil:
		t.Fatalf("test control plane did not start: %v", startErr)
	default:
		t.Fatal("testenv.Get called without testenv.Run in TestMain")
	}
	return nil
}

// MissingDependency ends a test that cannot run because something it needs
// is not installed: a skip with a message that says how to get it, or a
// failure when GATEHOUSE_REQUIRE_ALL=1.
func MissingDependency(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(RequireAllEnv) == "1" {
		t.Fatalf("%v (%s=1 makes this a failure)", err, RequireAllEnv)
	}
	t.Skipf("SKIPPED, MISSING DEPENDENCY: %v", err)
}

// MissingAssetsError says that the control-plane binaries are not there.
type MissingAssetsError struct{ Looked string }

func (e *MissingAssetsError) Error() string {
	return fmt.Sprintf("no kube-apiserver and etcd in %s: run `make envtest` or set KUBEBUILDER_ASSETS", e.Looked)
}

// Start starts a control plane with Gatehouse's CRDs installed.
func Start() (*ControlPlane, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := assetsDir(root)
	if err != nil {
		return nil, err
	}

	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: 2 * time.Minute,
		// A graceful stop with clients' watches open (StopAPIServer) takes
		// kube-apiserver longer than envtest's 20 s default.
		ControlPlaneStopTimeout: 90 * time.Second,
	}
	dir, err := os.MkdirTemp("", "gatehouse-testenv-")
	if err != nil {
		return nil, err
	}
	// The API server's certificates in a directory of ours, which envtest
	// leaves alone when the API server stops: StartAPIServer then serves
	// the same certificates on the same port, and every client made
	// before the stop reconnects.
	certs := filepath.Join(dir, "apiserver")
	if err := os.Mkdir(certs, 0o700); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	env.ControlPlane.GetAPIServer().CertDir = certs
	began := time.Now()
	fmt.Fprintf(os.Stderr, "testenv: starting kube-apiserver and etcd from %s\n", assets)
	cfg, err := env.Start()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	cp := &ControlPlane{Config: cfg, Scheme: scheme, AssetsDir: assets, env: env, dir: dir}
	if cp.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	cp.Kubeconfig = filepath.Join(cp.dir, "kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, env.KubeConfig, 0o600); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "testenv: control plane ready in %s (%d CRDs installed)\n",
		time.Since(began).Round(time.Millisecond), len(env.CRDs))
	return cp, nil
}

// Stop stops the control plane and removes its files.
func (cp *ControlPlane) Stop() error {
	err := cp.env.Stop()
	if cp.dir != "" {
		err = errors.Join(err, os.RemoveAll(cp.dir))
	}
	return err
}

// StopAPIServer kills kube-apiserver (SIGKILL, as when its node fails)
// and leaves etcd running: clients' connections are refused until
// StartAPIServer. A graceful stop (SIGTERM) with clients' watches open
// takes kube-apiserver up to its request timeout, a minute.
func (cp *ControlPlane) StopAPIServer() error {
	api := cp.env.ControlPlane.GetAPIServer()
	pid, err := processWithArg("--cert-dir=" + api.CertDir)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing kube-apiserver (pid %d): %w", pid, err)
	}
	return api.Stop() // reaps it
}

// processWithArg finds the process whose command line has arg.
func processWithArg(arg string) (int, error) {
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return 0, err
	}
	for _, path := range cmdlines {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		if slices.Contains(strings.Split(string(b), "\x00"), arg) {
			return strconv.Atoi(filepath.Base(filepath.Dir(path)))
		}
	}
	return 0, fmt.Errorf("no process with %s", arg)
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the
// same etcd, port and certificates, and waits until it is healthy.
func (cp *ControlPlane) StartAPIServer() error {
	return cp.env.ControlPlane.GetAPIServer().Start()
}

// Kubectl returns a kubectl binary: the one built next to the control plane
// (same version as the API server), else one on PATH. It ends the test as a
// missing dependency when there is none.
func (cp *ControlPlane) Kubectl(t testing.TB) string {
	t.Helper()
	if path := filepath.Join(cp.AssetsDir, "kubectl"); isExecutable(path) {
		return path
	}
	path, err := exec.LookPath("kubectl")
	if err != nil {
		MissingDependency(t, fmt.Errorf("no kubectl in %s or on PATH: run `make envtest`", cp.AssetsDir))
	}
	return path
}

// RepoRoot finds the repository root: the nearest directory upwards from the
// working directory whose go.mod declares the gatehouse module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isGatehouseModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no gatehouse go.mod above the working directory; run the tests inside the repository")
		}
		dir = parent
	}
}

// isGatehouseModule reports whether path is the repository's own go.mod, not
// that of a nested module such as examples or hack tools.
func isGatehouseModule(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(first) == "module "+modulePath
}

const modulePath = "github.com/gatehouse-dev/gatehouse"

// assetsDir is KUBEBUILDER_ASSETS, or else the directory `make envtest`
// builds into, so `go test` works without make once it has run.
func assetsDir(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		if !isExecutable(filepath.Join(dir, "kube-apiserver")) || !isExecutable(filepath.Join(dir, "etcd")) {
			return "", &MissingAssetsError{Looked: dir + " (KUBEBUILDER_ASSETS)"}
		}
		return dir, nil
	}
	matches, _ := filepath.Glob(filepath.Join(root, "bin", "k8s", "*", "kube-apiserver"))
	for _, m := range matches {
		if dir := filepath.Dir(m); isExecutable(filepath.Join(dir, "etcd")) {
			return dir, nil
		}
	}
	return "", &MissingAssetsError{Looked: filepath.Join(root, "bin", "k8s")}
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}
