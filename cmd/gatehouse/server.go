package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/clientaddr"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/internal/kubescheme"
	"github.com/gatehouse-dev/gatehouse/internal/servercontract"
	"github.com/gatehouse-dev/gatehouse/internal/servingcert"
	"github.com/gatehouse-dev/gatehouse/internal/version"
	"github.com/gatehouse-dev/gatehouse/server"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/kubeactions"
	"github.com/gatehouse-dev/gatehouse/server/storage"
	"github.com/gatehouse-dev/gatehouse/server/storage/memory"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

type serverFlags struct {
	namespace, name string
	listen          string
	metricsListen   string
	postgresURL     string
	logLevel        slog.Level
	gcInterval      time.Duration
	proxies         clientaddr.TrustedProxies
	// tlsCert and tlsKey make the public port serve HTTPS.
	tlsCert, tlsKey string
	pgTimeouts      postgres.Timeouts
	// maxRequests and maxLogins bound what is served at once (0: by CPUs).
	maxRequests, maxLogins int
	// refreshRetry is server.Options.RefreshRetry.
	refreshRetry bool
	// auditLog is the audit log's destination (package audit).
	auditLog string
}

// tlsReloadInterval is how often the TLS files are read again. A renewed
// Secret reaches a pod's volume within the kubelet's sync period (about a
// minute), so this adds little to it.
var tlsReloadInterval = 10 * time.Second

func parseServerFlags(args []string, stderr io.Writer) (*serverFlags, error) {
	f := &serverFlags{}
	var err error
	// The flag names, ports, paths and environment are the operator's
	// contract with this command (package servercontract).
	fs := flag.NewFlagSet(servercontract.Command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	ref := fs.String(servercontract.FlagAuthorizationServer, "", "the AuthorizationServer to serve, as NAMESPACE/NAME (required)")
	fs.StringVar(&f.listen, servercontract.FlagListen, servercontract.ListenAddress(servercontract.HTTPPort), "address of the public OAuth endpoints")
	fs.StringVar(&f.metricsListen, servercontract.FlagMetricsListen, servercontract.ListenAddress(servercontract.MetricsPort),
		"address of "+servercontract.HealthzPath+", "+servercontract.ReadyzPath+" and "+servercontract.MetricsPath)
	// No flag default from the environment: -h would print the password.
	fs.StringVar(&f.postgresURL, servercontract.FlagPostgresURL, "", "PostgreSQL URL for storage type Postgres (default $"+servercontract.EnvPostgresURL+")")
	fs.DurationVar(&f.gcInterval, servercontract.FlagGCInterval, time.Minute, "how often expired codes, tokens and sessions are deleted")
	level := fs.String(servercontract.FlagLogLevel, "info", "debug, info, warn or error")
	proxies := fs.String(servercontract.FlagTrustedProxies, "", "comma-separated CIDR prefixes of the proxies in front of the server (ingress, load balancer); "+
		"only from them is the client address read from the forwarded header, which the login throttle keys on")
	header := fs.String(servercontract.FlagForwardedHeader, clientaddr.HeaderXForwardedFor, "the header the trusted proxies write the client address to: "+
		clientaddr.HeaderXForwardedFor+" or "+clientaddr.HeaderForwarded+" (RFC 7239)")
	fs.StringVar(&f.tlsCert, servercontract.FlagTLSCertFile, "", "PEM certificate (chain) to serve the public port with HTTPS; read again when it changes (needs --tls-key-file)")
	fs.StringVar(&f.tlsKey, servercontract.FlagTLSKeyFile, "", "PEM private key of --tls-cert-file")
	fs.DurationVar(&f.pgTimeouts.Connect, servercontract.FlagPostgresConnectTimeout, postgres.DefaultTimeouts.Connect,
		"how long opening a PostgreSQL connection may take (dial, TLS, start-up); the URL's connect_timeout wins")
	fs.DurationVar(&f.pgTimeouts.Acquire, servercontract.FlagPostgresAcquireTimeout, postgres.DefaultTimeouts.Acquire,
		"how long a request waits for a free connection of the pool before it is answered 503")
	fs.DurationVar(&f.pgTimeouts.Statement, servercontract.FlagPostgresStatementTimeout, postgres.DefaultTimeouts.Statement,
		"how long one statement may take before it is canceled and the request answered 503")
	fs.IntVar(&f.maxRequests, servercontract.FlagMaxConcurrentRequests, 0,
		"requests served at once, other than the public documents and password logins; more get 503 with Retry-After (default 8 per CPU, at least 16)")
	fs.IntVar(&f.maxLogins, servercontract.FlagMaxConcurrentLogins, 0,
		"password logins (bcrypt) served at once, apart from the other requests; more get 503 with Retry-After (default half the CPUs, at least 1)")
	fs.BoolVar(&f.refreshRetry, servercontract.FlagRefreshTokenRetry, false,
		"let every client, public ones too, retry a refresh whose answer it never got (503 while the rotation committed, as in a database failover) and get the same successor within 2m while it is unused, instead of having its grant revoked as reuse; without it, spec.refreshTokenRetry decides (default: confidential clients)")
	fs.StringVar(&f.auditLog, servercontract.FlagAuditLog, audit.Stdout, "where the audit log's JSON lines go: stdout, stderr, a file path (appended to) or off; the debug log is on stderr")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	for name, d := range map[string]time.Duration{servercontract.FlagPostgresConnectTimeout: f.pgTimeouts.Connect,
		servercontract.FlagPostgresAcquireTimeout: f.pgTimeouts.Acquire, servercontract.FlagPostgresStatementTimeout: f.pgTimeouts.Statement} {
		if d < 10*time.Millisecond || d > 10*time.Minute {
			return nil, fmt.Errorf("%w: --%s must be between 10ms and 10m, not %s", errUsage, name, d)
		}
	}
	if f.maxRequests < 0 || f.maxLogins < 0 {
		return nil, fmt.Errorf("%w: --%s and --%s cannot be negative", errUsage, servercontract.FlagMaxConcurrentRequests, servercontract.FlagMaxConcurrentLogins)
	}
	ns, name, ok := strings.Cut(*ref, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return nil, fmt.Errorf("%w: --authorization-server must be NAMESPACE/NAME, not %q", errUsage, *ref)
	}
	f.namespace, f.name = ns, name
	if f.postgresURL == "" {
		f.postgresURL = os.Getenv(servercontract.EnvPostgresURL)
	}
	for _, addr := range []string{f.listen, f.metricsListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%w: %q is not a listen address such as :8080", errUsage, addr)
		}
	}
	if f.listen == f.metricsListen {
		return nil, fmt.Errorf("%w: --listen and --metrics-listen must differ: health and metrics stay off the public port", errUsage)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, fmt.Errorf("%w: --tls-cert-file and --tls-key-file go together", errUsage)
	}
	if err := f.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	if f.auditLog == "" {
		return nil, fmt.Errorf("%w: --%s must be stdout, stderr, a file path or off", errUsage, servercontract.FlagAuditLog)
	}
	if f.gcInterval < time.Second {
		return nil, fmt.Errorf("%w: --gc-interval must be at least 1s", errUsage)
	}
	if f.proxies, err = clientaddr.ParseTrustedProxies(strings.Split(*proxies, ","), *header); err != nil {
		return nil, fmt.Errorf("%w: --trusted-proxies / --forwarded-header: %v", errUsage, err)
	}
	return f, nil
}

func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseServerFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := serverLogger(stderr, f.logLevel)
	auditLog, closeStreams, err := openStreams(ctx, f.auditLog, stdout, stderr, log)
	if err != nil {
		return err
	}
	// Closed last, after the listeners: the lines and spans of requests
	// that finish during shutdown are written too.
	defer closeStreams()
	cert, err := loadServingCert(f)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	opsHandler, stopOps := serveOps(f.metricsListen, errc)
	defer stopOps()
	src, cfg, err := watchConfig(ctx, f, log, opsHandler)
	if err != nil || src == nil { // nil: stopped while waiting for the API server
		return err
	}
	reg := prometheus.NewRegistry()
	saIssuer, err := keySets(ctx, reg, src, cfg, log)
	if err != nil {
		return err
	}
	srcErr := make(chan error, 1)
	go func() { srcErr <- src.Start(ctx) }()

	// The storage type comes from the AuthorizationServer, so wait for it.
	snap, err := waitForSnapshot(ctx, src, srcErr, errc)
	if err != nil {
		return err
	}
	if cert != nil && !strings.HasPrefix(snap.Issuer, "https://") {
		return fmt.Errorf("--tls-cert-file is set but the issuer %s is not https: clients would be sent to plain http", snap.Issuer)
	}
	store, err := openStore(ctx, snap.StorageType, f.postgresURL, f.pgTimeouts)
	if err != nil {
		return err
	}
	defer closeStore(store, log)

	events, err := clientEvents(ctx, cfg)
	if err != nil {
		return err
	}
	defer events.Stop()
	srv, err := server.New(server.Options{Source: src, Store: store, Logger: log, TrustedProxies: f.proxies,
		Registerer: reg, ServiceAccountIssuer: saIssuer, TLSCertificate: cert.LeafFunc(), Events: events, Audit: auditLog,
		MaxConcurrentRequests: f.maxRequests, MaxConcurrentLogins: f.maxLogins, RefreshRetry: f.refreshRetry})
	if err != nil {
		return err
	}
	go srv.RunGC(ctx, f.gcInterval)
	if err := runSessionWork(ctx, srv, store, cfg, f, log, errc); err != nil {
		return err
	}

	public := &http.Server{Addr: f.listen, Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	opsHandler.Store(srv.OpsHandler())
	servePublic(ctx, public, cert, log, errc)
	logStarted(log, f, snap, cert != nil)

	err = firstExit(ctx, errc, srcErr)
	shutdownPublic(public)
	return err
}

// shutdownPublic lets the requests in flight finish, for up to 20 s.
func shutdownPublic(public *http.Server) {
	shutdown, done := context.WithTimeout(context.Background(), 20*time.Second)
	defer done()
	_ = public.Shutdown(shutdown)
}

// loadServingCert loads --tls-cert-file and --tls-key-file; nil without.
func loadServingCert(f *serverFlags) (*servingcert.Reloader, error) {
	if f.tlsCert == "" {
		return nil, nil
	}
	return servingcert.Load(f.tlsCert, f.tlsKey)
}

func logStarted(log *slog.Logger, f *serverFlags, snap *config.Snapshot, tls bool) {
	log.Info("token server started", "authorizationServer", f.namespace+"/"+f.name, "issuer", snap.Issuer,
		"storage", snap.StorageType, "listen", f.listen, "metricsListen", f.metricsListen, "tls", tls, "version", version.Version,
		"trustedProxies", fmt.Sprint(f.proxies.Prefixes), "forwardedHeader", f.proxies.Header,
		"maxConcurrentRequests", f.maxRequests, "maxConcurrentLogins", f.maxLogins, "auditLog", f.auditLog)
}

// serverLogger is the server's JSON logger, which the informers
// (client-go, controller-runtime) log through too; left unset,
// controller-runtime prints a stack trace at start and drops their lines.
func serverLogger(stderr io.Writer, level slog.Level) *slog.Logger {
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	klog.SetSlogLogger(log)
	return log
}

// firstExit waits for the end: ctx done (nil), a listener failing, or the
// configuration watch stopping.
func firstExit(ctx context.Context, errc, srcErr <-chan error) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	case err := <-srcErr:
		if err == nil {
			err = errors.New("configuration watch stopped")
		}
		return err
	}
}

// keySets counts key fetches in reg and starts the cluster's
// service-account issuer, for clients that authenticate as a
// ServiceAccount: fetched now and in the background, never while a
// request waits.
func keySets(ctx context.Context, reg prometheus.Registerer, src *config.Kube, cfg *rest.Config, log *slog.Logger) (server.ServiceAccountIssuer, error) {
	onKeyFetch, err := server.KeyFetchCounter(reg)
	if err != nil {
		return nil, err
	}
	src.OnKeyFetch = onKeyFetch
	return jwtverify.NewKubernetes(ctx, cfg, jwtverify.RemoteOptions{Log: log, OnFetch: onKeyFetch})
}

// openStreams opens the audit log and starts tracing (when the OTEL_*
// environment asks for it); close exports the pending spans and writes
// out the audit log.
func openStreams(ctx context.Context, auditTo string, stdout, stderr io.Writer, log *slog.Logger) (_ *audit.Log, close func(), err error) {
	auditLog, err := audit.Open(auditTo, stdout, stderr, audit.Options{OnError: func(err error) { log.Error("audit log", "error", err) }})
	if err != nil {
		return nil, nil, err
	}
	stopTracing, err := startTracing(ctx, "gatehouse-server")
	if err != nil {
		closeAudit(auditLog, log)
		return nil, nil, err
	}
	return auditLog, func() {
		stopTracing()
		closeAudit(auditLog, log)
	}, nil
}

// closeAudit writes out the audit log as the process stops.
func closeAudit(l *audit.Log, log *slog.Logger) {
	if err := l.Close(); err != nil {
		log.Warn("closing the audit log", "error", err)
	}
}

// closeStore closes the store as the server stops; by then a failure is
// only worth a line in the log.
func closeStore(store storage.Store, log *slog.Logger) {
	if err := store.Close(); err != nil {
		log.Warn("closing the store", "error", err)
	}
}

// clientEvents records Events on OAuthClients (back-channel logout
// failures).
func clientEvents(ctx context.Context, cfg *rest.Config) (*kubeactions.ClientEvents, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}
	return kubeactions.NewClientEvents(ctx, cs, scheme)
}

// runSessionWork starts what ends sessions outside a request: the
// delivery of logout tokens, the watch for people the identity sources
// stop listing, and the SessionRevocations of this server.
func runSessionWork(ctx context.Context, srv *server.Server, store storage.Store, cfg *rest.Config, f *serverFlags, log *slog.Logger, errc chan<- error) error {
	scheme, err := kubescheme.New()
	if err != nil {
		return err
	}
	revocations, err := kubeactions.NewSessionRevocations(cfg, scheme, f.namespace, f.name, srv, store, log)
	if err != nil {
		return err
	}
	go srv.RunBackchannel(ctx)
	go srv.RunRemovals(ctx, time.Second)
	go func() {
		if err := revocations.Run(ctx); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("watching SessionRevocations: %w", err)
		}
	}()
	return nil
}

// serveOps serves /healthz, /readyz and /metrics. Health answers at once,
// so the kubelet does not restart a server that waits for the API server
// or its AuthorizationServer; readiness says what it waits for until the
// caller stores the real server's handler.
func serveOps(addr string, errc chan<- error) (*atomicHandler, func()) {
	h := &atomicHandler{}
	h.Store(waitingOps("connecting to the API server"))
	ops := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := ops.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving %s: %w", ops.Addr, err)
		}
	}()
	return h, func() {
		shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		_ = ops.Shutdown(shutdown)
	}
}

// watchConfig makes the informer-backed source of the AuthorizationServer's
// configuration. While the API server cannot be reached (an upgrade, an
// outage) it keeps trying, live and unready, rather than exit into
// CrashLoopBackOff, whose growing delays would keep the pod down for
// minutes after the API server is back. It returns a nil source when ctx
// ends first.
func watchConfig(ctx context.Context, f *serverFlags, log *slog.Logger, ops *atomicHandler) (*config.Kube, *rest.Config, error) {
	// Like controller-runtime: --kubeconfig, $KUBECONFIG, in-cluster, ~/.kube/config.
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("finding the cluster: %w", err)
	}
	cfg.UserAgent = "gatehouse-server/" + version.Version
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, nil, err
	}
	for wait := time.Second; ; wait = min(2*wait, apiServerRetryMax) {
		src, err := config.NewKube(cfg, scheme, f.namespace, f.name, log)
		if err == nil {
			ops.Store(startingOps(src))
			return src, cfg, nil
		}
		log.Warn("waiting for the API server", "error", err, "retryIn", wait.String())
		ops.Store(waitingOps("waiting for the API server: " + err.Error()))
		select {
		case <-ctx.Done():
			return nil, nil, nil
		case <-time.After(wait):
		}
	}
}

// apiServerRetryMax is the longest wait between attempts to reach the API
// server at start.
const apiServerRetryMax = 10 * time.Second

// servePublic serves the OAuth endpoints, over HTTPS when cert is set,
// reloading the certificate files as they change.
func servePublic(ctx context.Context, public *http.Server, cert *servingcert.Reloader, log *slog.Logger, errc chan<- error) {
	serve := public.ListenAndServe
	if cert != nil {
		public.TLSConfig = cert.TLSConfig()
		serve = func() error { return public.ListenAndServeTLS("", "") }
		log.Info("serving TLS", "subject", cert.Leaf().Subject.String(), "notAfter", cert.Leaf().NotAfter)
		go cert.Watch(ctx, tlsReloadInterval, func(leaf *x509.Certificate, err error) {
			if err != nil {
				log.Error("TLS certificate not reloaded; still serving the previous one", "err", err)
				return
			}
			log.Info("TLS certificate reloaded", "subject", leaf.Subject.String(), "notAfter", leaf.NotAfter)
		})
	}
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving %s: %w", public.Addr, err)
		}
	}()
}

// atomicHandler serves whichever handler was stored last.
type atomicHandler struct{ atomic.Pointer[http.Handler] }

func (a *atomicHandler) Store(h http.Handler) { a.Pointer.Store(&h) }

func (a *atomicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*a.Load()).ServeHTTP(w, r)
}

// waitingOps answers health, and readiness with why it is not ready,
// before there is a configuration source.
func waitingOps(why string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+servercontract.HealthzPath, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET "+servercontract.ReadyzPath, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
	})
	return mux
}

// startingOps answers health and readiness before the server exists.
func startingOps(src *config.Kube) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+servercontract.HealthzPath, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET "+servercontract.ReadyzPath, func(w http.ResponseWriter, _ *http.Request) {
		msg := "waiting for the AuthorizationServer"
		if err := src.Ready(); err != nil {
			msg += ": " + err.Error()
		}
		http.Error(w, "not ready: "+msg, http.StatusServiceUnavailable)
	})
	return mux
}

func waitForSnapshot(ctx context.Context, src *config.Kube, srcErr, serveErr <-chan error) (*config.Snapshot, error) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if s := src.Current(); s != nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-srcErr:
			return nil, fmt.Errorf("watching configuration: %w", err)
		case err := <-serveErr:
			return nil, err
		case <-t.C:
		}
	}
}

func openStore(ctx context.Context, typ oauthv1.StorageType, postgresURL string, timeouts postgres.Timeouts) (storage.Store, error) {
	switch typ {
	case oauthv1.StorageMemory:
		return memory.New(), nil
	case oauthv1.StoragePostgres:
		if postgresURL == "" {
			return nil, fmt.Errorf("storage type Postgres needs --postgres-url or $%s", servercontract.EnvPostgresURL)
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return postgres.Open(ctx, postgresURL, postgres.WithTimeouts(timeouts))
	default:
		return nil, fmt.Errorf("unsupported storage type %q", typ)
	}
}
