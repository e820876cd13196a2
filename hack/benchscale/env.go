package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/kubescheme"
)

// env is the running system under test.
type env struct {
	o          *options
	dir        string
	kubeconfig string
	cp         *devenv.ControlPlane
	c          client.Client
	cs         kubernetes.Interface
	tracker    *tracker
	issuer     string
	tokenURL   string

	etcd, apiserver *proc
	server          *proc
	serverMetrics   string
	serverReadyz    string

	mu           sync.Mutex
	operator     *proc
	retired      []*proc // operators stopped by the restart scenario
	operatorPort int     // metrics
	healthPort   int
	pprofPort    int
}

func (e *env) procs() []*proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*proc{e.etcd, e.apiserver, e.operator, e.server}, e.retired...)
}

func (e *env) op() *proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.operator
}

// startEnv starts the control plane, installs the CRDs and starts the
// harness's own watch of OAuthClients. The caller stops it with e.stop.
func startEnv(ctx context.Context, o *options) (*env, error) {
	dir := o.stateDir
	if dir == "" {
		d, err := os.MkdirTemp("", "benchscale-")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if o.jsonOut == "" {
		// Beside the state directory, which is removed unless kept.
		o.jsonOut = filepath.Join(filepath.Dir(dir), fmt.Sprintf("benchscale-n%d-%s.json", o.n, time.Now().UTC().Format("20060102T150405")))
		if o.stateDir != "" || o.keep {
			o.jsonOut = filepath.Join(dir, "benchscale.json")
		}
	}
	e := &env{o: o, dir: dir}
	assets, err := devenv.AssetsDir()
	if err != nil {
		return nil, err
	}
	crds, err := devenv.CRDDir()
	if err != nil {
		return nil, err
	}
	logs := map[string]*os.File{}
	for _, n := range []string{"etcd", "kube-apiserver"} {
		if logs[n], err = os.Create(filepath.Join(dir, n+".log")); err != nil {
			return nil, err
		}
	}
	e.cp, err = devenv.StartControlPlane(devenv.Options{AssetsDir: assets, StateDir: dir,
		EtcdLog: logs["etcd"], APIServerLog: logs["kube-apiserver"], Progress: progress})
	if err != nil {
		return nil, err
	}
	if err := e.afterControlPlane(ctx, crds); err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

func (e *env) afterControlPlane(ctx context.Context, crds string) error {
	var err error
	if e.etcd, err = childProc("etcd"); err != nil {
		return err
	}
	if e.apiserver, err = childProc("kube-apiserver"); err != nil {
		return err
	}
	e.kubeconfig = filepath.Join(e.dir, "kubeconfig")
	if err := os.WriteFile(e.kubeconfig, e.cp.Kubeconfig, 0o600); err != nil {
		return err
	}
	if _, err := devenv.InstallCRDs(e.cp.Config, crds); err != nil {
		return err
	}
	scheme, err := kubescheme.New()
	if err != nil {
		return err
	}
	cfg := *e.cp.Config
	// The harness plays many teams applying at once; it must not be what
	// limits the pace.
	cfg.QPS, cfg.Burst = 5000, 5000
	if e.c, err = client.New(&cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if e.cs, err = kubernetes.NewForConfig(&cfg); err != nil {
		return err
	}
	e.tracker, err = startTracker(ctx, &cfg, scheme)
	return err
}

// startGatehouse starts the operator and the token server and waits until
// the server is ready (it needs the signing key the operator makes).
func (e *env) startGatehouse(ctx context.Context) error {
	port, err := devenv.FreePort()
	if err != nil {
		return err
	}
	e.issuer = "http://127.0.0.1:" + strconv.Itoa(port)
	e.tokenURL = endpoints.For(e.issuer).Token
	if err := applyServer(ctx, e.c, e.issuer); err != nil {
		return err
	}
	if err := e.startOperator(ctx); err != nil {
		return err
	}
	mport, err := devenv.FreePort()
	if err != nil {
		return err
	}
	e.serverMetrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	e.serverReadyz = fmt.Sprintf("http://127.0.0.1:%d/readyz", mport)
	e.server, err = startProc("server", e.o.gatehouse, []string{"server",
		"--authorization-server", benchNamespace + "/" + benchServer,
		"--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--metrics-listen", "127.0.0.1:" + strconv.Itoa(mport),
		"--log-level", "warn",
	}, []string{"KUBECONFIG=" + e.kubeconfig}, e.dir, e.serverMetrics)
	if err != nil {
		return err
	}
	began := time.Now()
	if err := waitHTTP(ctx, e.serverReadyz, 2*time.Minute, e.server); err != nil {
		return err
	}
	progress("token server ready in %s at %s", since(began), e.issuer)
	return nil
}

// startOperator starts `gatehouse operator` and waits for its /readyz.
func (e *env) startOperator(ctx context.Context) error {
	ports, err := devenv.FreePorts(3)
	if err != nil {
		return err
	}
	mport, hport, pport := ports[0], ports[1], ports[2]
	p, err := startProc("operator", e.o.gatehouse, []string{"operator",
		"--pprof-listen", "127.0.0.1:" + strconv.Itoa(pport),
		"--kubeconfig", e.kubeconfig,
		"--leader-elect=false",
		"--metrics-listen", "127.0.0.1:" + strconv.Itoa(mport),
		"--health-listen", "127.0.0.1:" + strconv.Itoa(hport),
		"--server-image", "gatehouse:benchscale",
	}, e.operatorEnv(), e.dir, fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.operator, e.operatorPort, e.healthPort, e.pprofPort = p, mport, hport, pport
	e.mu.Unlock()
	return waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", hport), 2*time.Minute, p)
}

func (e *env) stop() {
	for _, p := range []*proc{e.server, e.op()} {
		if p != nil {
			p.stop()
		}
	}
	if e.tracker != nil {
		e.tracker.stop()
	}
	if e.cp != nil {
		if err := e.cp.Stop(); err != nil {
			progress("stopping the control plane: %v", err)
		}
	}
	if !e.o.keep && e.o.stateDir == "" {
		_ = os.RemoveAll(e.dir)
	}
}

// sampleLoop samples every process each second until ctx ends.
func (e *env) sampleLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, p := range e.procs() {
			if p != nil && p.alive() {
				p.sample(ctx)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cpu returns every process's CPU seconds so far, by name.
func (e *env) cpu() map[string]float64 {
	out := map[string]float64{}
	for _, p := range e.procs() {
		if p != nil {
			out[p.name] = p.cpuSeconds()
		}
	}
	return out
}

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }

var errTimeout = errors.New("timed out")
