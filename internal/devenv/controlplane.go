// Package devenv runs a local Kubernetes control plane for `gatehouse dev`:
// etcd and kube-apiserver as child processes (the binaries hack/ builds into
// bin/k8s), with etcd's data kept in a state directory so that a second run
// finds the objects of the first.
package devenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the same credential as a kubeconfig file's contents.
	Kubeconfig []byte

	plane *envtest.ControlPlane
}

// Options configure StartControlPlane.
type Options struct {
	// AssetsDir holds kube-apiserver and etcd.
	AssetsDir string
	// StateDir keeps etcd's data (StateDir/etcd) and the API server's
	// certificates (StateDir/apiserver) across runs.
	StateDir string
	// Logs receive the processes' output.
	EtcdLog, APIServerLog io.Writer
	// Progress is told about each step and how long it took.
	Progress func(format string, args ...any)
	// AuthenticationConfig, when set, is the file of kube-apiserver's
	// --authentication-config (see AuthenticationConfig).
	AuthenticationConfig string
}

// StartControlPlane starts etcd, then kube-apiserver, then provisions an
// admin user. On error nothing is left running.
func StartControlPlane(opts Options) (*ControlPlane, error) {
	progress := opts.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	etcdDir := filepath.Join(opts.StateDir, "etcd")
	// The API server's certificates are made afresh each run: envtest
	// generates a CA only into an empty directory, and the kubeconfig is
	// rewritten anyway.
	certDir := filepath.Join(opts.StateDir, "apiserver")
	if err := os.RemoveAll(certDir); err != nil {
		return nil, err
	}
	for _, dir := range []string{etcdDir, certDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	plane := &envtest.ControlPlane{
		Etcd: &envtest.Etcd{
			Path:         filepath.Join(opts.AssetsDir, "etcd"),
			DataDir:      etcdDir,
			StartTimeout: time.Minute,
			StopTimeout:  20 * time.Second,
			Out:          opts.EtcdLog,
			Err:          opts.EtcdLog,
		},
		APIServer: &envtest.APIServer{
			Path:         filepath.Join(opts.AssetsDir, "kube-apiserver"),
			CertDir:      certDir,
			StartTimeout: 2 * time.Minute,
			StopTimeout:  20 * time.Second,
			Out:          opts.APIServerLog,
			Err:          opts.APIServerLog,
		},
	}
	began := time.Now()
	reuse := "new data"
	if entries, _ := os.ReadDir(etcdDir); len(entries) > 0 {
		reuse = "reusing its data"
	}
	progress("starting etcd (%s in %s)…", reuse, etcdDir)
	if err := plane.Etcd.Start(); err != nil {
		return nil, fmt.Errorf("starting etcd: %w", err)
	}
	progress("etcd ready in %s", since(began))

	began = time.Now()
	progress("starting kube-apiserver…")
	plane.APIServer.EtcdURL = plane.Etcd.URL
	configureAPIServer(plane.APIServer, opts)
	if err := plane.APIServer.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("starting kube-apiserver: %w", err), plane.Etcd.Stop())
	}
	// envtest panics on misuse; never leave the processes behind.
	defer func() {
		if p := recover(); p != nil {
			_ = plane.Stop()
			panic(p)
		}
	}()
	user, err := plane.AddUser(envtest.User{Name: "gatehouse-dev-admin", Groups: []string{"system:masters"}},
		&rest.Config{QPS: 100, Burst: 200})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("provisioning the admin user: %w", err), plane.Stop())
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("writing the kubeconfig: %w", err), plane.Stop())
	}
	progress("kube-apiserver ready in %s at %s", since(began), user.Config().Host)
	return &ControlPlane{Config: user.Config(), Kubeconfig: kubeconfig, plane: plane}, nil
}

// configureAPIServer sets kube-apiserver's flags beyond envtest's.
func configureAPIServer(api *envtest.APIServer, opts Options) {
	// A client's watch (kubectl get -w) would otherwise hold a stopping
	// kube-apiserver for its HTTP server's shutdown timeout (60s), longer
	// than StopTimeout: end watches after a short grace instead.
	api.Configure().Set("shutdown-watch-termination-grace-period", "2s")
	if opts.AuthenticationConfig != "" {
		api.Configure().Set("authentication-config", opts.AuthenticationConfig)
	}
}

// Stop stops kube-apiserver, then etcd, and waits for both to exit. The
// state directory is kept.
func (c *ControlPlane) Stop() error { return c.plane.Stop() }

// InstallCRDs installs the CustomResourceDefinitions in dir (create or
// update) and waits until the API server serves them.
func InstallCRDs(cfg *rest.Config, dir string) (int, error) {
	crds, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths:              []string{dir},
		ErrorIfPathMissing: true,
		MaxTime:            time.Minute,
	})
	if err != nil {
		return 0, fmt.Errorf("installing CRDs from %s: %w", dir, err)
	}
	return len(crds), nil
}

func since(t time.Time) time.Duration {
	return time.Since(t).Round(100 * time.Millisecond)
}
