package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/servercontract"
)

// startOperator runs the operator in this process, with the token server's
// /readyz (on a free metrics port) as the demo server's availability.
func (d *devRun) startOperator(ctx context.Context) error {
	metricsPort, err := devenv.FreePort()
	if err != nil {
		return err
	}
	d.readyz = fmt.Sprintf("http://127.0.0.1:%d%s", metricsPort, servercontract.ReadyzPath)
	logger := zap.New(zap.WriteTo(d.logs.File("operator")), zap.JSONEncoder())
	ctrl.SetLogger(logger)
	mgr, err := ctrl.NewManager(d.cp.Config, ctrl.Options{
		Scheme:                 d.scheme,
		Logger:                 logger,
		Cache:                  controllers.CacheOptions(nil),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return fmt.Errorf("creating the operator: %w", err)
	}
	probe := &http.Client{Timeout: 2 * time.Second}
	// The operator's audit lines go to the same file as the token
	// server's: one audit stream for the whole local installation.
	auditLog, err := audit.Open(d.auditLogPath(), nil, nil, audit.Options{OnError: func(err error) { logger.Error(err, "audit log") }})
	if err != nil {
		return err
	}
	d.onStop("the operator's audit log", auditLog.Close)
	err = controllers.Setup(mgr, controllers.Options{
		ServerImage: "gatehouse:dev", // never run: no Deployment in dev mode
		Audit:       auditLog,
		ExternalServer: func(ctx context.Context, srv *oauthv1.AuthorizationServer) error {
			if srv.Namespace != devenv.Namespace || srv.Name != devenv.Server {
				return fmt.Errorf("gatehouse dev runs a token server only for %s/%s", devenv.Namespace, devenv.Server)
			}
			return probeReady(ctx, probe, d.readyz)
		},
	})
	if err != nil {
		return err
	}
	opCtx, stop := context.WithCancel(ctx)
	d.opErr = make(chan error, 1)
	go func() { d.opErr <- mgr.Start(opCtx) }()
	d.onStop("the operator", func() error { stop(); return <-d.opErr })
	d.say("operator started (log: %s)", d.logs.File("operator").Name())
	return nil
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
