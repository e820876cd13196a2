package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"golang.org/x/crypto/bcrypt"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server"
)

// What `gatehouse dev` creates.
const (
	devNamespace    = "gatehouse-dev"
	devServer       = "demo"
	devUsersSecret  = "demo-users"
	devClient       = "demo-app"
	devClientSecret = "demo-app-oauth"
	devUsername     = "demo"
	// devRedirectURI is a loopback redirect URI (RFC 8252 §7.3). Nothing
	// listens there: the browser shows the code in its address bar.
	devRedirectURI = "http://127.0.0.1:5555/callback"
	// devScopes are offered by the demo server and allowed to the demo client.
	devScopeRead  = "orders:read"
	devScopeWrite = "orders:write"
	devAudience   = "https://orders.example.com" // examples/orders-api's default
)

type devFlags struct {
	stateDir string
	port     int
	reset    bool
	crds     string
	// proxyArgs pass --trusted-proxies and --forwarded-header on to the
	// token server, for a local reverse proxy (e.g. a TLS terminator) in
	// front of it; by default nothing is in front and no proxy is trusted.
	proxyArgs []string
}

func parseDevFlags(args []string, stderr io.Writer) (*devFlags, error) {
	f := &devFlags{}
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.stateDir, "state-dir", ".gatehouse-dev", "where etcd's data, the kubeconfig, logs and demo.env live; a second run reuses it")
	fs.IntVar(&f.port, "port", 5556, "port of the token server on 127.0.0.1; the issuer is http://127.0.0.1:PORT")
	fs.BoolVar(&f.reset, "reset", false, "delete the state of earlier runs and start afresh")
	fs.StringVar(&f.crds, "crds", "", "directory of the CRD manifests; default: config/crd/bases of the repository around the working directory")
	proxies := fs.String("trusted-proxies", "", "as for gatehouse server: CIDR prefixes of a reverse proxy you run in front of the token server")
	header := fs.String("forwarded-header", server.HeaderXForwardedFor, "as for gatehouse server: "+server.HeaderXForwardedFor+" or "+server.HeaderForwarded)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gatehouse dev [flags]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Runs Gatehouse on this machine with no cluster: a local kube-apiserver and etcd,")
		fmt.Fprintln(stderr, "the CRDs, the operator, one token server and demo data. Ctrl-C stops everything.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if f.port < 1 || f.port > 65535 {
		return nil, fmt.Errorf("%w: --port must be between 1 and 65535, not %d", errUsage, f.port)
	}
	if strings.TrimSpace(f.stateDir) == "" {
		return nil, fmt.Errorf("%w: --state-dir must not be empty", errUsage)
	}
	if _, err := server.ParseTrustedProxies(strings.Split(*proxies, ","), *header); err != nil {
		return nil, fmt.Errorf("%w: --trusted-proxies / --forwarded-header: %v", errUsage, err)
	}
	f.proxyArgs = []string{"--trusted-proxies", *proxies, "--forwarded-header", *header}
	return f, nil
}

// runDev is `gatehouse dev`: everything on one machine.
//
// Process layout. etcd and kube-apiserver are child processes (the binaries
// hack/ builds). The operator runs in this process, because dev mode needs
// an operator option that is not a production flag:
// controllers.Options.ExternalServer. The token server is a child process
// running `gatehouse server`, exactly the command a cluster's pods run, with
// its own log file, so dev exercises the production code path; it gets
// SIGTERM if this process dies (Pdeathsig), and etcd and kube-apiserver are
// stopped in order on Ctrl-C.
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
	began := time.Now()
	say := func(format string, args ...any) { fmt.Fprintf(stdout, "gatehouse dev: "+format+"\n", args...) }

	issuer := fmt.Sprintf("http://127.0.0.1:%d", f.port)
	if err := portFree(f.port); err != nil {
		return fmt.Errorf("the issuer's port: %w (another gatehouse dev? choose one with --port)", err)
	}
	assets, err := devenv.AssetsDir()
	if err != nil {
		return err
	}
	crdDir := f.crds
	if crdDir == "" {
		if crdDir, err = devenv.CRDDir(); err != nil {
			return err
		}
	}
	state, err := devenv.OpenStateDir(f.stateDir)
	if err != nil {
		return err
	}
	defer state.Close()
	envFile := filepath.Join(state.Path, "demo.env")
	// demo.env exists only while everything is up: scripts may wait for it.
	_ = os.Remove(envFile)
	defer os.Remove(envFile)
	for _, l := range state.Leftovers() {
		say("stopping %s (pid %d), left running by an earlier gatehouse dev that was killed…", l.Name, l.PID)
		step := time.Now()
		if err := l.Stop(); err != nil {
			return fmt.Errorf("stopping %s (pid %d): %w", l.Name, l.PID, err)
		}
		say("stopped %s in %s", l.Name, time.Since(step).Round(100*time.Millisecond))
	}
	if f.reset {
		had := state.Reused
		if err := state.Reset(); err != nil {
			return err
		}
		if had {
			say("deleted the state of earlier runs (--reset)")
		}
	}
	if state.Reused {
		say("reusing the state in %s (--reset starts afresh)", state.Path)
	} else {
		say("new state in %s", state.Path)
	}
	logDir := filepath.Join(state.Path, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return err
	}
	logs := map[string]*os.File{}
	for _, name := range []string{"etcd", "kube-apiserver", "operator", "server"} {
		if logs[name], err = os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return err
		}
		defer logs[name].Close()
	}

	// The control plane.
	cp, err := devenv.StartControlPlane(devenv.Options{
		AssetsDir: assets, StateDir: state.Path,
		EtcdLog: logs["etcd"], APIServerLog: logs["kube-apiserver"], Progress: say,
	})
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, logDir)
	}
	defer func() {
		stopping := time.Now()
		say("stopping kube-apiserver and etcd…")
		if err := cp.Stop(); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("stopping the control plane: %w", err))
			return
		}
		say("stopped in %s", time.Since(stopping).Round(100*time.Millisecond))
	}()
	kubeconfig := filepath.Join(state.Path, "kubeconfig")
	if err := os.WriteFile(kubeconfig, cp.Kubeconfig, 0o600); err != nil {
		return err
	}
	step := time.Now()
	n, err := devenv.InstallCRDs(cp.Config, crdDir)
	if err != nil {
		return err
	}
	say("installed %d CRDs from %s in %s", n, crdDir, time.Since(step).Round(100*time.Millisecond))

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := oauthv1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}

	// The token server's ports: the issuer's, and a free one for /readyz.
	metricsPort, err := freePort()
	if err != nil {
		return err
	}
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", metricsPort)

	// The operator, in this process.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opErr, err := startDevOperator(ctx, cp, scheme, logs["operator"], readyz)
	if err != nil {
		return err
	}
	say("operator started (log: %s)", logs["operator"].Name())
	defer func() {
		cancel()
		if err := <-opErr; err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("operator: %w", err))
		}
	}()

	// Demo data.
	password, err := demoPassword(filepath.Join(state.Path, "demo-password"))
	if err != nil {
		return err
	}
	if err := applyDemoData(ctx, c, issuer, password); err != nil {
		return err
	}
	say("applied the demo data: AuthorizationServer %s/%s, Scopes %s and %s, user %q, OAuthClient %s/%s",
		devNamespace, devServer, devScopeRead, devScopeWrite, devUsername, devNamespace, devClient)

	// The token server, a child process.
	step = time.Now()
	srvDone, stopServer, err := startDevServer(kubeconfig, f.port, metricsPort, logs["server"], f.proxyArgs...)
	if err != nil {
		return err
	}
	defer stopServer()
	say("starting the token server on %s (log: %s)…", issuer, logs["server"].Name())

	ready := waitDevReady(ctx, c, srvDone, readyz)
	if err := <-ready; err != nil {
		if ctx.Err() != nil {
			say("interrupted")
			return nil
		}
		return fmt.Errorf("%w (logs in %s)", err, logDir)
	}
	say("token server ready in %s", time.Since(step).Round(100*time.Millisecond))

	// What the user needs, read back from the cluster as an app would.
	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: devClientSecret}, sec); err != nil {
		return fmt.Errorf("reading the demo client's Secret: %w", err)
	}
	clientID, clientSecret := string(sec.Data[oauthv1.SecretKeyClientID]), string(sec.Data[oauthv1.SecretKeyClientSecret])
	if err := checkClientCredentials(ctx, issuer, clientID, clientSecret); err != nil {
		return fmt.Errorf("the demo client cannot get a token: %w (logs in %s)", err, logDir)
	}
	env := map[string]string{
		"GATEHOUSE_ISSUER":   issuer,
		"KUBECONFIG":         kubeconfig,
		"DEMO_CLIENT_ID":     clientID,
		"DEMO_CLIENT_SECRET": clientSecret,
		"DEMO_USERNAME":      devUsername,
		"DEMO_PASSWORD":      password,
		"DEMO_REDIRECT_URI":  devRedirectURI,
	}
	if err := writeEnvFile(envFile, env); err != nil {
		return err
	}
	printDevSummary(stdout, env, envFile, kubectlPath(assets), time.Since(began))

	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout)
		say("shutting down…")
		return nil
	case err := <-srvDone:
		return fmt.Errorf("the token server exited: %v; see %s", err, logs["server"].Name())
	case err := <-opErr:
		opErr <- err // for the deferred wait
		return fmt.Errorf("the operator stopped: %v; see %s", err, logs["operator"].Name())
	}
}

func startDevOperator(ctx context.Context, cp *devenv.ControlPlane, scheme *runtime.Scheme, log io.Writer, readyz string) (chan error, error) {
	logger := zap.New(zap.WriteTo(log), zap.JSONEncoder())
	ctrl.SetLogger(logger)
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logger,
		Cache:                  controllers.CacheOptions(nil),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, fmt.Errorf("creating the operator: %w", err)
	}
	probe := &http.Client{Timeout: 2 * time.Second}
	err = controllers.Setup(mgr, controllers.Options{
		ServerImage: "gatehouse:dev", // never run: no Deployment in dev mode
		ExternalServer: func(ctx context.Context, srv *oauthv1.AuthorizationServer) error {
			if srv.Namespace != devNamespace || srv.Name != devServer {
				return fmt.Errorf("gatehouse dev runs a token server only for %s/%s", devNamespace, devServer)
			}
			return probeReady(ctx, probe, readyz)
		},
	})
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return done, nil
}

// probeReady asks the token server's /readyz, as a kubelet's readiness
// probe would.
func probeReady(ctx context.Context, c *http.Client, readyz string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyz, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", readyz, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", readyz, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// startDevServer runs `gatehouse server` as a child. stop sends SIGTERM and
// waits (SIGKILL after 15s).
func startDevServer(kubeconfig string, port, metricsPort int, log *os.File, extraArgs ...string) (done chan error, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(exe, append([]string{"server",
		"--authorization-server", devNamespace + "/" + devServer,
		"--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--metrics-listen", "127.0.0.1:" + strconv.Itoa(metricsPort),
		"--gc-interval", "1m"}, extraArgs...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = log, log
	// Own process group: Ctrl-C reaches only us, and we stop the server
	// first. Pdeathsig: it never outlives us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting the token server: %w", err)
	}
	done = make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exit status 0")
		}
		done <- err
		close(exited)
	}()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	return done, stop, nil
}

// waitDevReady waits for the AuthorizationServer to report Ready (which the
// operator derives from the token server's /readyz) and for the demo
// client's Secret.
func waitDevReady(ctx context.Context, c client.Client, srvDone chan error, readyz string) <-chan error {
	out := make(chan error, 1)
	probe := &http.Client{Timeout: 2 * time.Second}
	go func() {
		deadline := time.After(2 * time.Minute)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		last := "no status yet"
		for {
			select {
			case <-ctx.Done():
				out <- ctx.Err()
				return
			case err := <-srvDone:
				srvDone <- err
				out <- fmt.Errorf("the token server exited: %v", err)
				return
			case <-deadline:
				out <- fmt.Errorf("not ready after 2 minutes: %s", last)
				return
			case <-tick.C:
			}
			// The server's own readiness first: on a reused state the
			// status may still say what the last run saw.
			if err := probeReady(ctx, probe, readyz); err != nil {
				last = err.Error()
				continue
			}
			srv := &oauthv1.AuthorizationServer{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: devServer}, srv); err != nil {
				last = err.Error()
				continue
			}
			cond := meta.FindStatusCondition(srv.Status.Conditions, oauthv1.ConditionReady)
			if cond == nil || cond.Status != metav1.ConditionTrue || cond.ObservedGeneration != srv.Generation {
				if cond != nil {
					last = fmt.Sprintf("AuthorizationServer %s: Ready=%s %s: %s", devServer, cond.Status, cond.Reason, cond.Message)
				}
				continue
			}
			oc := &oauthv1.OAuthClient{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: devNamespace, Name: devClient}, oc); err != nil {
				last = err.Error()
				continue
			}
			cond = meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady)
			if cond == nil || cond.Status != metav1.ConditionTrue || cond.ObservedGeneration != oc.Generation {
				if cond != nil {
					last = fmt.Sprintf("OAuthClient %s: Ready=%s %s: %s", devClient, cond.Status, cond.Reason, cond.Message)
				}
				continue
			}
			out <- nil
			return
		}
	}()
	return out
}

// checkClientCredentials gets a token as the demo client, so that what is
// printed is known to work. The token server learns of the client from
// its informer a moment after the operator reports it Ready: retry briefly.
func checkClientCredentials(ctx context.Context, issuer, id, secret string) error {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {devScopeRead}}
	var last error
	for range 50 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoints.For(issuer).Token, strings.NewReader(form.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &tok) == nil && tok.AccessToken != "" {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return last
}

// applyDemoData creates or updates the demo objects, so a second run (or a
// different --port) converges on the same state.
func applyDemoData(ctx context.Context, c client.Client, issuer, password string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: devNamespace}}
	// A new API server creates its namespaces controller's defaults a moment
	// after it is healthy; retry the first write briefly.
	var err error
	for range 50 {
		if err = c.Create(ctx, ns); err == nil || apierrors.IsAlreadyExists(err) {
			err = nil
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", devNamespace, err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), users.MinBcryptCost)
	if err != nil {
		return err
	}
	usersYAML, err := yaml.Marshal(map[string]any{"users": []users.User{{
		Username: devUsername, PasswordHash: string(hash), Subject: devUsername,
		Email: "demo@gatehouse.invalid", Name: "Demo User",
	}}})
	if err != nil {
		return err
	}
	usersSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: devNamespace, Name: devUsersSecret}}
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: devNamespace, Name: devServer}}
	read := &oauthv1.Scope{ObjectMeta: metav1.ObjectMeta{Namespace: devNamespace, Name: "orders-read"}}
	write := &oauthv1.Scope{ObjectMeta: metav1.ObjectMeta{Namespace: devNamespace, Name: "orders-write"}}
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: devNamespace, Name: devClient}}
	steps := []struct {
		obj    client.Object
		mutate func()
	}{
		{usersSecret, func() {
			// Keep the hash when the password is unchanged: a new salt
			// would make the token server reload the users for nothing.
			if old, ok := usersSecret.Data[users.SecretDataKey]; ok && sameDemoPassword(old, password) {
				return
			}
			usersSecret.Data = map[string][]byte{users.SecretDataKey: usersYAML}
		}},
		{srv, func() {
			srv.Spec.Issuer = issuer
			srv.Spec.Users = &oauthv1.UsersSpec{SecretRef: oauthv1.LocalObjectReference{Name: devUsersSecret}}
			srv.Spec.Storage.Type = oauthv1.StorageMemory
			// Clients from any namespace, so `kubectl apply -f my-client.yaml`
			// works wherever it lands.
			srv.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromAll
		}},
		{read, func() {
			read.Spec = oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: devServer}, Name: devScopeRead,
				Description: "See your orders and their delivery status", Audience: devAudience, AllowedClients: demoScopesForAll}
		}},
		{write, func() {
			write.Spec = oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: devServer}, Name: devScopeWrite,
				Description: "Place and cancel orders on your behalf", Audience: devAudience, AllowedClients: demoScopesForAll}
		}},
		{oc, func() {
			oc.Spec.ServerRef = oauthv1.ServerReference{Name: devServer}
			oc.Spec.DisplayName = "Gatehouse demo app"
			oc.Spec.ClientType = oauthv1.ClientConfidential
			oc.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantAuthorizationCode, oauthv1.GrantRefreshToken, oauthv1.GrantClientCredentials}
			oc.Spec.RedirectURIs = []oauthv1.RedirectURI{devRedirectURI}
			oc.Spec.Scopes = []oauthv1.ScopeName{devScopeRead, devScopeWrite}
			oc.Spec.SecretName = devClientSecret
		}},
	}
	for _, s := range steps {
		if _, err := controllerutil.CreateOrUpdate(ctx, c, s.obj, func() error { s.mutate(); return nil }); err != nil {
			return fmt.Errorf("applying %T %s: %w", s.obj, s.obj.GetName(), err)
		}
	}
	return nil
}

// demoScopesForAll lets clients from every namespace request the demo
// scopes, as the demo server admits them, so that a client applied anywhere
// works.
var demoScopesForAll = oauthv1.AllowedClients{Namespaces: oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromAll}}

// sameDemoPassword says whether users.yaml holds the demo user with this
// password.
func sameDemoPassword(usersYAML []byte, password string) bool {
	dir, err := users.Parse(usersYAML)
	if err != nil {
		return false
	}
	u, ok := dir.Lookup(devUsername)
	return ok && bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) == nil
}

// demoPassword returns the demo user's password, generated on the first run
// and kept in the state directory for the next.
func demoPassword(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) >= 16 {
		return string(bytes.TrimSpace(b)), nil
	}
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pw := base64.RawURLEncoding.EncodeToString(b)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}

var devEnvOrder = []string{"GATEHOUSE_ISSUER", "KUBECONFIG", "DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "DEMO_USERNAME", "DEMO_PASSWORD", "DEMO_REDIRECT_URI"}

// writeEnvFile writes KEY='value' lines a shell can source, atomically, so
// that a script waiting for the file never reads half of it.
func writeEnvFile(path string, env map[string]string) error {
	var b strings.Builder
	b.WriteString("# Written by `gatehouse dev` while it runs: source it in a shell.\n")
	for _, k := range devEnvOrder {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(env[k]))
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// kubectlPath is the kubectl built with the control plane (same version),
// relative to the working directory when it is below it, or else plain
// kubectl from PATH.
func kubectlPath(assets string) string {
	path := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(path); err != nil {
		return "kubectl"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return path
}

func printDevSummary(w io.Writer, env map[string]string, envFile, kubectl string, took time.Duration) {
	issuer := env["GATEHOUSE_ISSUER"]
	ep := endpoints.For(issuer)
	verifier, challenge, state := pkce()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {env["DEMO_CLIENT_ID"]},
		"redirect_uri":          {env["DEMO_REDIRECT_URI"]},
		"scope":                 {devScopeRead + " " + devScopeWrite},
		"state":                 {state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	authorize := ep.Authorization + "?" + q.Encode()
	basic := shellQuote(env["DEMO_CLIENT_ID"] + ":" + env["DEMO_CLIENT_SECRET"])
	fmt.Fprintf(w, `
Gatehouse is running (ready in %s). Ctrl-C stops everything.

  Issuer          %s
  Metadata        %s
  Kubeconfig      %s
                  %s --kubeconfig %s get gatehouse -A
  Demo user       %s / %s
  Demo client     client_id     %s
                  client_secret %s
                  redirect URI  %s
  For scripts     source %s

Log in as the demo user: open this URL, then copy the code from the address
bar of the page it redirects to (nothing listens on %s):

  %s

  code_verifier   %s

Exchange the code for tokens:

  curl -s -u %s -d grant_type=authorization_code -d code=CODE -d code_verifier=%s --data-urlencode redirect_uri=%s %s

A token for the client itself (client_credentials):

  curl -s -u %s -d grant_type=client_credentials -d scope=%s %s

`, took.Round(100*time.Millisecond), issuer, ep.Metadata, env["KUBECONFIG"], kubectl, shellQuote(env["KUBECONFIG"]),
		env["DEMO_USERNAME"], env["DEMO_PASSWORD"], env["DEMO_CLIENT_ID"], env["DEMO_CLIENT_SECRET"], env["DEMO_REDIRECT_URI"],
		shellQuote(envFile), env["DEMO_REDIRECT_URI"], authorize, verifier,
		basic, verifier, shellQuote(env["DEMO_REDIRECT_URI"]), ep.Token,
		basic, devScopeRead, ep.Token)
}

// pkce returns a code verifier, its S256 challenge (RFC 7636 §4.1-4.2) and
// a state value.
func pkce() (verifier, challenge, state string) {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b[:32])
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:]), base64.RawURLEncoding.EncodeToString(b[32:])
}

func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
