package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/internal/clientaddr"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/servercontract"
	"github.com/gatehouse-dev/gatehouse/internal/servingcert"
)

type devFlags struct {
	stateDir string
	port     int
	reset    bool
	crds     string
	tls      bool
	// proxyArgs pass --trusted-proxies and --forwarded-header on to the
	// token server, for a local reverse proxy (e.g. a TLS terminator) in
	// front of it; by default nothing is in front and no proxy is trusted.
	proxyArgs servercontract.Args
}

func parseDevFlags(args []string, stderr io.Writer) (*devFlags, error) {
	f := &devFlags{}
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.stateDir, "state-dir", ".gatehouse-dev", "where etcd's data, the kubeconfig, the local CA, logs and demo.env live; a second run reuses it")
	fs.IntVar(&f.port, "port", 5556, "port of the token server on 127.0.0.1; the issuer is https://127.0.0.1:PORT")
	fs.BoolVar(&f.tls, "tls", true, "serve the issuer over HTTPS with a certificate from a local CA kept in the state directory; "+
		"kube-apiserver trusts only https issuers, so --tls=false also turns off logging in to the control plane with Gatehouse")
	fs.BoolVar(&f.reset, "reset", false, "delete the state of earlier runs (the local CA too) and start afresh")
	fs.StringVar(&f.crds, "crds", "", "directory of the CRD manifests; default: config/crd/bases of the repository around the working directory")
	proxies := fs.String("trusted-proxies", "", "as for gatehouse server: CIDR prefixes of a reverse proxy you run in front of the token server")
	header := fs.String("forwarded-header", clientaddr.HeaderXForwardedFor, "as for gatehouse server: "+clientaddr.HeaderXForwardedFor+" or "+clientaddr.HeaderForwarded)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gatehouse dev [flags]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Runs Gatehouse on this machine with no cluster: a local kube-apiserver and etcd,")
		fmt.Fprintln(stderr, "the CRDs, the operator, one token server and demo data. Ctrl-C stops everything.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if f.port < 1 || f.port > 65535 {
		return nil, fmt.Errorf("%w: --port must be between 1 and 65535, not %d", errUsage, f.port)
	}
	if strings.TrimSpace(f.stateDir) == "" {
		return nil, fmt.Errorf("%w: --state-dir must not be empty", errUsage)
	}
	if _, err := clientaddr.ParseTrustedProxies(strings.Split(*proxies, ","), *header); err != nil {
		return nil, fmt.Errorf("%w: --trusted-proxies / --forwarded-header: %v", errUsage, err)
	}
	f.proxyArgs = servercontract.Args{TrustedProxies: *proxies, ForwardedHeader: *header}
	return f, nil
}

// devRun is one run of `gatehouse dev`: what each phase makes and the next
// needs.
type devRun struct {
	flags *devFlags
	out   io.Writer
	began time.Time

	issuer   string
	assets   string
	crdDir   string
	state    *devenv.StateDir
	envFile  string
	logs     *devenv.Logs
	tls      *devTLS // nil with --tls=false
	cp       *devenv.ControlPlane
	scheme   *runtime.Scheme
	c        client.Client
	http     *http.Client // trusts the issuer's CA
	readyz   string       // the token server's readiness, on its metrics port
	password string
	env      map[string]string

	opErr   chan error // the operator's exit
	srvDone chan error // the token server's exit

	// stops undo the phases, last first: token server, operator, control
	// plane, so that nothing is connected to kube-apiserver when it stops.
	stops []devStop
}

type devStop struct {
	what string
	stop func() error
}

// devTLS is the local CA and the token server's certificate from it.
type devTLS struct {
	ca                *servingcert.CA
	certFile, keyFile string
	// authnConfig is kube-apiserver's --authentication-config file,
	// trusting the issuer's ID tokens.
	authnConfig string
}

// runDev is `gatehouse dev`: everything on one machine.
//
// Process layout. etcd and kube-apiserver are child processes (the binaries
// hack/ builds). The operator runs in this process, because dev mode needs
// an operator option that is not a production flag:
// controllers.Options.ExternalServer. The token server is a child process
// running `gatehouse server`, exactly the command a cluster's pods run, with
// its own log file, so dev exercises the production code path; it gets
// SIGTERM if this process dies (Pdeathsig). Ctrl-C stops the parts in the
// reverse order of their start.
//
// Truthful status. No kubelet runs a Deployment here, so the operator runs
// with ExternalServer set: it creates no Deployment, Service or token-server
// RBAC, and the AuthorizationServer's Ready condition reports the readiness
// of the token server this command runs (its /readyz, probed every few
// seconds): Ready=True ExternalServerReady while it serves, Ready=False
// ExternalServerNotReady with the reason otherwise, e.g. for any other
// AuthorizationServer someone creates, which nothing serves in dev mode.
// Keys, JWKS, Scopes and OAuthClients are reconciled exactly as in a
// cluster.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) (retErr error) {
	f, err := parseDevFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	d := &devRun{flags: f, out: stdout, began: time.Now(), http: &http.Client{Timeout: 10 * time.Second}}
	defer func() { retErr = errors.Join(retErr, d.shutdown()) }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, phase := range []func(context.Context) error{
		d.checkPrerequisites,
		d.openState,
		d.makeServingCertificate,
		d.startControlPlane,
		d.installCRDs,
		d.startOperator,
		d.applyDemoData,
		d.startTokenServer,
		d.waitUntilReady,
		d.waitUntilKubeTrustsIssuer,
		d.printSummary,
	} {
		if err := phase(ctx); err != nil {
			if ctx.Err() != nil {
				d.say("interrupted")
				return nil
			}
			return err
		}
	}
	return d.serveUntilStopped(ctx)
}

func (d *devRun) say(format string, args ...any) {
	fmt.Fprintf(d.out, "gatehouse dev: "+format+"\n", args...)
}

// onStop registers how to undo a phase.
func (d *devRun) onStop(what string, stop func() error) {
	d.stops = append(d.stops, devStop{what, stop})
}

// shutdown undoes the phases that ran, last first, and says how long each
// took. A part that stops cleanly is no error.
func (d *devRun) shutdown() error {
	var errs []error
	for i := len(d.stops) - 1; i >= 0; i-- {
		s := d.stops[i]
		began := time.Now()
		if err := s.stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", s.what, err))
			continue
		}
		if s.what != "" {
			d.say("stopped %s in %s", s.what, time.Since(began).Round(100*time.Millisecond))
		}
	}
	return errors.Join(errs...)
}

// serveUntilStopped waits for Ctrl-C, or for a part to fail.
func (d *devRun) serveUntilStopped(ctx context.Context) error {
	select {
	case <-ctx.Done():
		fmt.Fprintln(d.out)
		d.say("shutting down…")
		return nil
	case err := <-d.srvDone:
		d.srvDone <- nil // reported here, not again by its stop
		return fmt.Errorf("the token server exited: %v; see %s", err, d.logs.File("server").Name())
	case err := <-d.opErr:
		d.opErr <- nil // reported here, not again by its stop
		return fmt.Errorf("the operator stopped: %v; see %s", err, d.logs.File("operator").Name())
	}
}
