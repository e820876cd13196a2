package main

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// measure runs one flow: setup on every worker, warm-up, then the measured
// period, with the server's CPU and RSS read from /proc around it.
func (e *env) measure(ctx context.Context, name string) (flowResult, error) {
	workers, client, err := e.prepare(ctx, name, e.o.conns)
	if err != nil {
		return flowResult{}, err
	}
	defer closeWorkers(workers)
	drive(ctx, e, workers, e.o.warmup)
	for _, w := range workers {
		w.latencies, w.ops, w.errors, w.firstErrors = w.latencies[:0], 0, 0, nil
	}
	pid := e.serverPID()
	cpu0, _, err := procStats(pid)
	if err != nil {
		return flowResult{}, err
	}
	fetches0, fetchesOK := e.clusterKeyFetches(ctx)
	gen0 := selfCPU()
	began := time.Now()
	drive(ctx, e, workers, e.o.duration)
	elapsed := time.Since(began)
	gen1 := selfCPU()
	fetches1, _ := e.clusterKeyFetches(ctx)
	cpu1, rss, err := procStats(pid)
	if err != nil {
		return flowResult{}, err
	}
	res := flowResult{Flow: name, Client: client, Seconds: elapsed.Seconds(), ServerCPUSeconds: cpu1 - cpu0,
		RSSMiB: float64(rss) / (1 << 20), LoadAvg: loadAvg()}
	res.add(workers)
	if fetchesOK {
		n := int(fetches1 - fetches0)
		res.ClusterKeyFetches = &n
	}
	if res.Ops > 0 {
		res.CPUPer1000 = res.ServerCPUSeconds / float64(res.Ops) * 1000
		res.LoadGenCPUPerOp = (gen1 - gen0) / float64(res.Ops) * 1e6
	}
	return res, nil
}

// add sums the workers' operations, errors and latencies into res.
func (res *flowResult) add(workers []*worker) {
	var all []float64
	for _, w := range workers {
		all = append(all, w.latencies...)
		res.Ops += w.ops
		res.Errors += w.errors
		if len(res.FirstErrors) < 5 {
			res.FirstErrors = append(res.FirstErrors, w.firstErrors...)
		}
	}
	res.PerSecond = float64(res.Ops) / res.Seconds
	slices.Sort(all)
	res.P50, res.P99, res.P999 = quantile(all, .5), quantile(all, .99), quantile(all, .999)
}

// prepare makes n workers for a flow and runs its setup on each. The lean
// client drives the flow when it can and -client asks for it; which one
// does is returned.
func (e *env) prepare(ctx context.Context, name string, n int) ([]*worker, string, error) {
	fl := flowTable[name]
	lean := e.o.client == clientLean && fl.lean != nil
	client := clientNetHTTP
	if lean {
		client = clientLean
	}
	workers := make([]*worker, n)
	for i := range workers {
		w := newWorker()
		workers[i] = w
		w.clientID, w.clientSecret = e.clientID, e.clientSecret
		if fl.setup != nil {
			if err := fl.setup(ctx, e, w); err != nil {
				closeWorkers(workers[:i+1])
				return nil, "", err
			}
		}
		w.op = fl.op
		if lean {
			req, err := fl.lean.request(e, w)
			if err != nil {
				closeWorkers(workers[:i+1])
				return nil, "", err
			}
			w.leanHost = e.host(name)
			w.lean, w.leanReq, w.leanFlow = newLeanConn(w.leanHost), req, fl.lean
			if fl.lean.rebuild {
				w.newRequest = func() ([]byte, error) { return fl.lean.request(e, w) }
			}
			w.op = func(context.Context, *env, *worker) error { return w.leanOp() }
		}
	}
	return workers, client, nil
}

func closeWorkers(workers []*worker) {
	for _, w := range workers {
		if w == nil {
			continue
		}
		if w.lean != nil {
			w.lean.close()
		}
		w.http.CloseIdleConnections()
	}
}

// drive runs every worker's op in a loop for d. An operation under way at
// the end is finished, not cut off: a refresh token rotated by the server
// but never received would be reused by the next one, and its whole family
// revoked.
func drive(ctx context.Context, e *env, workers []*worker, d time.Duration) {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var loop []*worker
	for _, w := range workers {
		if w.leanFlow != nil {
			loop = append(loop, w)
			continue
		}
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t := time.Now()
				err := w.op(ctx, e, w)
				if ctx.Err() != nil {
					return
				}
				w.record(t, err)
			}
		})
	}
	if len(loop) > 0 {
		wg.Go(func() {
			if err := runEventLoop(ctx, loop[0].leanHost, loop, deadline); err != nil {
				loop[0].fail(err)
			}
		})
	}
	wg.Wait()
}

// quantile of sorted values, in milliseconds.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))] * 1000
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// selfCPU is the CPU seconds (user+system) this process, the load
// generator, has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
