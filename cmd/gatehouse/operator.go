package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/kubescheme"
	"github.com/gatehouse-dev/gatehouse/internal/operatormetrics"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

// imageEnv names the variable that tells the operator its own image; the
// Helm chart sets it from the operator's image, so operator and token
// servers run one version.
const imageEnv = "GATEHOUSE_IMAGE"

// leaderElectionID is the Lease the operator's replicas compete for.
const leaderElectionID = "gatehouse-operator.oauth.gatehouse.dev"

type operatorFlags struct {
	kubeconfig              string
	namespaces              []string
	concurrency             int
	serverImage             string
	metricsListen           string
	healthListen            string
	pprofListen             string
	leaderElect             bool
	leaderElectionNamespace string
	qps                     float64
	burst                   int
	auditLog                string
	serverAuditLog          string
	zap                     zap.Options
}

func parseOperatorFlags(args []string, stderr io.Writer) (*operatorFlags, error) {
	f := &operatorFlags{}
	fs := flag.NewFlagSet("operator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster config, or $KUBECONFIG")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces to watch; default: all")
	fs.IntVar(&f.concurrency, "concurrency", controllers.DefaultConcurrency, "reconciles run at once per kind")
	fs.StringVar(&f.serverImage, "server-image", os.Getenv(imageEnv), "token server image for AuthorizationServers without spec.image (default $"+imageEnv+")")
	fs.StringVar(&f.metricsListen, "metrics-listen", ":8080", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.StringVar(&f.healthListen, "health-listen", ":8081", "address of /healthz and /readyz; 0 disables them")
	fs.StringVar(&f.pprofListen, "pprof-listen", "", "address of Go's /debug/pprof profiles, for diagnosing memory and CPU; off by default (they reveal the operator's internals: bind to localhost)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect a leader, so that only one replica reconciles")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader-election Lease; default: the operator's own (required outside a cluster)")
	fs.Float64Var(&f.qps, "kube-api-qps", controllers.DefaultKubeAPIQPS, "sustained requests per second to the API server (a new OAuthClient costs 2: its Secret and its status)")
	fs.IntVar(&f.burst, "kube-api-burst", controllers.DefaultKubeAPIBurst, "burst of requests to the API server")
	fs.StringVar(&f.auditLog, "audit-log", audit.Stdout, "where the operator's audit log goes (client secrets, signing keys, client admission): stdout, stderr, a file path (appended to) or off; the debug log is on stderr")
	fs.StringVar(&f.serverAuditLog, "server-audit-log", audit.Stdout, "where the token servers the operator runs write their audit logs: stdout, stderr or off (their --audit-log)")
	f.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if f.concurrency < 1 || f.concurrency > 100 {
		return nil, fmt.Errorf("%w: --concurrency must be between 1 and 100, not %d", errUsage, f.concurrency)
	}
	if f.qps <= 0 || f.burst < 1 {
		return nil, fmt.Errorf("%w: --kube-api-qps and --kube-api-burst must be positive", errUsage)
	}
	if f.auditLog == "" {
		return nil, fmt.Errorf("%w: --audit-log must be stdout, stderr, a file path or off", errUsage)
	}
	switch f.serverAuditLog {
	case audit.Stdout, audit.Stderr, audit.Off:
	default:
		return nil, fmt.Errorf("%w: --server-audit-log must be stdout, stderr or off (a token server's pod has no file to keep), not %q", errUsage, f.serverAuditLog)
	}
	if f.serverImage == "" {
		return nil, fmt.Errorf("%w: --server-image (or $%s) is required: AuthorizationServers without spec.image run it", errUsage, imageEnv)
	}
	for _, ns := range strings.Split(*namespaces, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "" {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("%w: --namespaces: %q is not a namespace name: %s", errUsage, ns, strings.Join(errs, "; "))
		}
		f.namespaces = append(f.namespaces, ns)
	}
	return f, nil
}

// runOperator runs the Gatehouse operator until ctx ends.
func runOperator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseOperatorFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := zap.New(zap.UseFlagOptions(&f.zap), zap.WriteTo(stderr))
	ctrl.SetLogger(logger)
	auditLog, closeStreams, err := operatorStreams(ctx, f.auditLog, stdout, stderr, logger)
	if err != nil {
		return err
	}
	defer closeStreams()

	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	// client-go's default of 5 requests per second would make creating a
	// few hundred OAuthClients at once take minutes (see
	// controllers.DefaultKubeAPIQPS).
	cfg.QPS, cfg.Burst = float32(f.qps), f.burst
	cfg.UserAgent = "gatehouse-operator/" + version.Version
	scheme, err := kubescheme.New()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        logger,
		Cache:                         controllers.CacheOptions(f.namespaces),
		Metrics:                       metricsserver.Options{BindAddress: f.metricsListen},
		HealthProbeBindAddress:        f.healthListen,
		PprofBindAddress:              f.pprofListen,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       f.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(mgr, controllers.Options{
		Namespaces: f.namespaces, ServerImage: f.serverImage, ServerAuditLog: f.serverAuditLog,
		ServerEnv: tracingEnv(os.Environ()), Audit: auditLog, MaxConcurrentReconciles: f.concurrency,
	}); err != nil {
		return err
	}
	unregister, err := operatormetrics.RegisterObjects(mgr.GetCache())
	if err != nil {
		return err
	}
	defer unregister()
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Ready once the informer caches are filled: before that a reconcile
	// would see an empty cluster.
	if err := mgr.AddReadyzCheck("caches", func(*http.Request) error {
		syncCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(syncCtx) {
			return errors.New("informer caches are not synced yet")
		}
		return nil
	}); err != nil {
		return err
	}
	logger.Info("starting the Gatehouse operator", "version", version.Version, "commit", version.Commit,
		"namespaces", f.namespaces, "concurrency", f.concurrency, "serverImage", f.serverImage, "leaderElection", f.leaderElect)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}

// operatorAudit opens the operator's audit log and registers its metrics
// with controller-runtime's registry, which the metrics endpoint serves.
func operatorAudit(dest string, stdout, stderr io.Writer, logger logr.Logger) (*audit.Log, error) {
	l, err := audit.Open(dest, stdout, stderr, audit.Options{OnError: func(err error) { logger.Error(err, "audit log") }})
	if err != nil {
		return nil, err
	}
	if err := l.Register(ctrlmetrics.Registry); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// operatorStreams opens the operator's audit log and starts tracing of
// its reconciles (when the OTEL_* environment asks for it); close exports
// the pending spans and writes out the audit log.
func operatorStreams(ctx context.Context, dest string, stdout, stderr io.Writer, logger logr.Logger) (_ *audit.Log, close func(), err error) {
	l, err := operatorAudit(dest, stdout, stderr, logger)
	if err != nil {
		return nil, nil, err
	}
	stopTracing, err := startTracing(ctx, "gatehouse-operator")
	if err != nil {
		_ = l.Close()
		return nil, nil, err
	}
	return l, func() {
		stopTracing()
		_ = l.Close()
	}, nil
}

// restConfig is the operator's API-server connection; with tracing on,
// each API call is a client span (a child of the reconcile that made it).
func restConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		if cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
		}
	} else if cfg, err = ctrl.GetConfig(); err != nil {
		return nil, fmt.Errorf("finding the cluster (use --kubeconfig): %w", err)
	}
	if tracing.Enabled() {
		cfg.Wrap(tracing.Transport)
	}
	return cfg, nil
}
