package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// run starts everything, runs the bulk apply and the scenarios, and stops
// everything. The report holds what was measured even when a step fails.
func run(ctx context.Context, o *options) (*report, error) {
	rep := newReport(o)
	e, err := startEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.stop()
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	if err := e.startGatehouse(ctx); err != nil {
		return rep, err
	}
	go e.sampleLoop(sctx)
	for i := range o.namespaces {
		if err := createNamespace(ctx, e.c, teamNamespace(i, o.namespaces)); err != nil {
			return rep, err
		}
	}
	base := e.idleHeaps(ctx)
	if rep.Bulk, err = e.bulk(ctx); err != nil {
		return rep, err
	}
	after := e.idleHeaps(ctx)
	e.profileHeap(ctx)
	for name, h := range after {
		rep.Bulk.LiveHeapMiB[name] = mib(h)
		rep.Bulk.HeapPerClientKiB[name] = float64(h-base[name]) / 1024 / float64(o.n)
	}
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"fanout", func(ctx context.Context) (err error) { rep.Fanout, err = e.fanout(ctx); return }},
		{"restart", func(ctx context.Context) (err error) { rep.Restart, err = e.restart(ctx); return }},
		{"churn", func(ctx context.Context) (err error) { rep.Churn, err = e.churnScenario(ctx); return }},
	}
	for _, s := range steps {
		if !o.scenarios[s.name] {
			continue
		}
		if err := s.run(ctx); err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", s.name, err))
			progress("%s failed: %v", s.name, err)
		}
	}
	rep.Processes = e.processReport()
	return rep, nil
}

// bulk applies N clients and waits until all are Ready and the last one
// gets a token.
func (e *env) bulk(ctx context.Context) (*bulkResult, error) {
	n := e.o.n
	r := &bulkResult{LiveHeapMiB: map[string]float64{}, HeapPerClientKiB: map[string]float64{}}
	before := e.counters(ctx)
	cpu0 := e.cpu()
	progress("applying %d OAuthClients over %d namespaces with %d writers…", n, e.o.namespaces, e.o.workers)
	began := time.Now()
	profiled := e.profileCPU(ctx)
	err := forEach(ctx, n, e.o.workers, func(ctx context.Context, i int) error {
		return retry(ctx, func() error { return e.c.Create(ctx, newClient(teamNamespace(i, e.o.namespaces), clientName(i))) })
	})
	if err != nil {
		return nil, fmt.Errorf("applying clients: %w", err)
	}
	r.ApplySeconds = seconds(time.Since(began))
	progress("applied %d clients in %s", n, since(began))
	status := func() string { return fmt.Sprintf("%d/%d Ready", e.tracker.readyCount(), n) }
	if err := waitFor(ctx, readyTimeout(n), "all clients Ready", func() bool { return e.tracker.readyCount() >= n }, status); err != nil {
		return r, err
	}
	r.AllReadySeconds = seconds(time.Since(began))
	profiled()
	r.ReadyPerSecond = float64(n) / r.AllReadySeconds
	progress("all %d clients Ready %s after the first write (%.0f/s)", n, since(began), r.ReadyPerSecond)
	last := n - 1
	_, tokenAt, err := e.untilToken(ctx, teamNamespace(last, e.o.namespaces), clientName(last), time.Minute)
	if err != nil {
		return r, err
	}
	r.LastTokenSeconds = seconds(tokenAt.Sub(began))
	progress("the last client got a token %.2f s after the first write", r.LastTokenSeconds)
	if _, err := e.waitOperatorIdle(ctx, 10*time.Minute); err != nil {
		return r, err
	}
	r.IdleSeconds = seconds(time.Since(began))
	r.CPUSeconds = delta(cpu0, e.cpu())
	r.Requests = diff(before, e.counters(ctx))
	r.OperatorRequestsPerClient = r.Requests.Operator / float64(n)
	r.APIServerRequestsPerClient = r.Requests.APIServer / float64(n)
	return r, nil
}

func clientName(i int) string { return fmt.Sprintf("app-%05d", i) }

// readyTimeout is generous: the harness measures, the goals judge.
func readyTimeout(n int) time.Duration { return 2*time.Minute + time.Duration(n)*100*time.Millisecond }

// retry retries a write the API server refused for load (429, timeouts).
func retry(ctx context.Context, f func() error) error {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Steps: 8, Cap: 5 * time.Second},
		func(context.Context) (bool, error) {
			last = f()
			return last == nil || !retriable(last), nil
		})
	if err != nil {
		return fmt.Errorf("%w (last error: %v)", err, last)
	}
	return last
}

func seconds(d time.Duration) float64 {
	return float64(d.Round(10*time.Millisecond)) / float64(time.Second)
}

func delta(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		out[k] = round2(v - a[k])
	}
	return out
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func mib(b int64) float64 { return round2(float64(b) / (1 << 20)) }

// gitCommit names the code measured.
func gitCommit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
