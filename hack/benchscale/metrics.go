package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// counters are cumulative request counts.
type counters struct {
	// Operator is the operator's requests to the API server
	// (rest_client_requests_total), ByMethod split by HTTP method.
	Operator float64            `json:"operator"`
	ByMethod map[string]float64 `json:"operatorByMethod"`
	// APIServer is every request the API server served
	// (apiserver_request_total), the harness's and the token server's too.
	APIServer float64 `json:"apiserver"`
}

var methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

func (e *env) counters(ctx context.Context) counters {
	c := counters{ByMethod: map[string]float64{}}
	if op := e.op(); op != nil {
		for _, m := range methods {
			v, _ := scrape(ctx, op.metrics, "rest_client_requests_total", []string{`method="` + m + `"`})
			c.ByMethod[m] = v
			c.Operator += v
		}
	}
	if raw, err := e.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx); err == nil {
		c.APIServer, _ = sumMetric(bytes.NewReader(raw), "apiserver_request_total", nil)
	}
	return c
}

func diff(a, b counters) counters {
	out := counters{Operator: b.Operator - a.Operator, APIServer: b.APIServer - a.APIServer, ByMethod: map[string]float64{}}
	for m, v := range b.ByMethod {
		out.ByMethod[m] = v - a.ByMethod[m]
	}
	return out
}

// operatorState is what tells whether the operator is idle.
type operatorState struct{ depth, active, reconciles float64 }

func (e *env) operatorState(ctx context.Context) (operatorState, error) {
	var s operatorState
	url := e.op().metrics
	var err error
	if s.depth, err = scrape(ctx, url, "workqueue_depth", nil); err != nil {
		return s, err
	}
	if s.active, err = scrape(ctx, url, "controller_runtime_active_workers", nil); err != nil {
		return s, err
	}
	s.reconciles, err = scrape(ctx, url, "controller_runtime_reconcile_total", nil)
	return s, err
}

// waitOperatorIdle waits until the operator's queues are empty, no
// reconcile runs and none ran for two seconds. It returns how long that
// took (minus the two quiet seconds) and the reconciles counted.
func (e *env) waitOperatorIdle(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	began := time.Now()
	var last operatorState
	var quietSince time.Time
	for {
		s, err := e.operatorState(ctx)
		switch {
		case err != nil:
			quietSince = time.Time{}
		case s.depth == 0 && s.active == 0 && s.reconciles == last.reconciles:
			if quietSince.IsZero() {
				quietSince = time.Now()
			}
			if time.Since(quietSince) >= 2*time.Second {
				return quietSince.Sub(began), nil
			}
		default:
			quietSince = time.Time{}
		}
		last = s
		if time.Since(began) > timeout {
			return time.Since(began), fmt.Errorf("operator not idle: %w after %s", errTimeout, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Since(began), ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// idleHeaps estimates the live heap of the operator and the server: half
// the next GC goal (GOGC=100 sets the goal at twice the heap marked live by
// the last collection), which, unlike heap_alloc, does not count garbage.
// The operator collects first (its pprof endpoint's gc=1), so that what
// was live at a collection during the work, in-flight watch events and
// requests, does not count either; the token server has no such endpoint,
// and its figure may hold some.
func (e *env) idleHeaps(ctx context.Context) map[string]int64 {
	out := map[string]int64{}
	e.collectOperatorGarbage(ctx)
	for _, p := range []*proc{e.op(), e.server} {
		if v, err := scrape(ctx, p.metrics, "go_memstats_next_gc_bytes", nil); err == nil {
			out[p.name] = int64(v / 2)
		}
	}
	return out
}

type procResult struct {
	CPUSeconds  float64 `json:"cpuSeconds"`
	PeakRSSMiB  float64 `json:"peakRSSMiB"`
	PeakHeapMiB float64 `json:"peakHeapMiB,omitempty"`
}

func (e *env) processReport() map[string]procResult {
	out := map[string]procResult{}
	for _, p := range e.procs() {
		if p == nil {
			continue
		}
		rss, heap, _ := p.peaks()
		out[p.name] = procResult{CPUSeconds: round2(p.cpuSeconds()), PeakRSSMiB: mib(rss), PeakHeapMiB: mib(heap)}
	}
	return out
}

// retriable: the API server shed load or a connection broke.
func retriable(err error) bool {
	var ne net.Error
	return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || errors.As(err, &ne)
}
