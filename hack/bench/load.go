package main

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// measure runs one flow: setup on every worker, warm-up, then the measured
// period, with the server's CPU and RSS read from /proc around it.
func (e *env) measure(ctx context.Context, name string) (flowResult, error) {
	fl := flowTable[name]
	workers := make([]*worker, e.o.conns)
	for i := range workers {
		workers[i] = newWorker()
		if fl.setup != nil {
			if err := fl.setup(ctx, e, workers[i]); err != nil {
				return flowResult{}, err
			}
		}
	}
	drive(ctx, e, fl, workers, e.o.warmup)
	for _, w := range workers {
		w.latencies, w.errors, w.firstErrors = w.latencies[:0], 0, nil
	}
	pid := e.server.Process.Pid
	cpu0, _, err := procStats(pid)
	if err != nil {
		return flowResult{}, err
	}
	began := time.Now()
	drive(ctx, e, fl, workers, e.o.duration)
	elapsed := time.Since(began)
	cpu1, rss, err := procStats(pid)
	if err != nil {
		return flowResult{}, err
	}
	res := flowResult{Flow: name, Seconds: elapsed.Seconds(), ServerCPUSeconds: cpu1 - cpu0, RSSMiB: float64(rss) / (1 << 20), LoadAvg: loadAvg()}
	var all []float64
	for _, w := range workers {
		all = append(all, w.latencies...)
		res.Errors += w.errors
		if len(res.FirstErrors) < 5 {
			res.FirstErrors = append(res.FirstErrors, w.firstErrors...)
		}
	}
	res.Ops = len(all)
	res.PerSecond = float64(res.Ops) / elapsed.Seconds()
	if res.Ops > 0 {
		res.CPUPer1000 = res.ServerCPUSeconds / float64(res.Ops) * 1000
	}
	slices.Sort(all)
	res.P50, res.P99, res.P999 = quantile(all, .5), quantile(all, .99), quantile(all, .999)
	return res, nil
}

// drive runs every worker's op in a loop for d. An operation under way at
// the end is finished, not cut off: a refresh token rotated by the server
// but never received would be reused by the next one, and its whole family
// revoked.
func drive(ctx context.Context, e *env, fl flow, workers []*worker, d time.Duration) {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t := time.Now()
				err := fl.op(ctx, e, w)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					w.errors++
					if len(w.firstErrors) < 2 {
						w.firstErrors = append(w.firstErrors, err.Error())
					}
					continue
				}
				w.latencies = append(w.latencies, time.Since(t).Seconds())
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
