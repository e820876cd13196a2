package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The soak (issue 13 goal 6, "constant heap under sustained load"): every
// flow asked for runs at once for -soak, the -conns connections shared
// round-robin between them, while the server's heap is sampled from its
// /metrics every -soak-interval. The verdict is on the live heap, which
// the garbage collector's next goal gives without forcing a collection:
// at GOGC=100 the goal is twice what the last cycle found live, so the
// sawtooth of garbage between cycles does not count. Samples during
// -soak-warmup (caches filling, the first cycles) are shown but not judged.

// heapSample is one reading of the server's memory.
type heapSample struct {
	Seconds      float64 `json:"seconds"`
	LiveHeapMiB  float64 `json:"liveHeapMiB"`
	HeapInuseMiB float64 `json:"heapInuseMiB"`
	Goroutines   int     `json:"goroutines"`
	RSSMiB       float64 `json:"rssMiB"`
}

type soakResult struct {
	Duration string       `json:"duration"`
	Warmup   string       `json:"warmup"`
	Flows    []flowResult `json:"flows"`
	Samples  []heapSample `json:"samples"`
	// StartMiB and EndMiB are the median live heap of the first and the
	// last five samples after the warm-up; MaxMiB the largest live heap
	// after it.
	StartMiB float64 `json:"startLiveHeapMiB"`
	EndMiB   float64 `json:"endLiveHeapMiB"`
	MaxMiB   float64 `json:"maxLiveHeapMiB"`
	// SlopeKiBPerMin is the least-squares slope of the live heap after the
	// warm-up.
	SlopeKiBPerMin float64 `json:"slopeKiBPerMinute"`
	// BoundMiB is how much EndMiB may exceed StartMiB: -soak-max-growth
	// percent of StartMiB, and at least 1 MiB (one GC goal step of a
	// small heap).
	BoundMiB       float64 `json:"boundMiB"`
	GoroutineStart int     `json:"goroutinesStart"`
	GoroutineEnd   int     `json:"goroutinesEnd"`
	ServerCPUPerOp float64 `json:"serverCPUMicrosecondsPerOp"`
	Passed         bool    `json:"passed"`
	Verdict        string  `json:"verdict"`
}

// soak runs the flows together and judges the heap.
func (e *env) soak(ctx context.Context) (*soakResult, error) {
	byFlow, all, err := e.soakWorkers(ctx)
	defer closeWorkers(all)
	if err != nil {
		return nil, err
	}
	for _, w := range all {
		w.countOnly = true
	}
	sr := &soakResult{Duration: e.o.soak.String(), Warmup: e.o.soakWarmup.String()}
	pid := e.serverPID()
	cpu0, _, err := procStats(pid)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { drive(ctx, e, all, e.o.soak) })
	e.sampleHeap(ctx, sr, began)
	wg.Wait()
	elapsed := time.Since(began)
	cpu1, _, err := procStats(pid)
	if err != nil {
		return nil, err
	}
	ops := 0
	for _, name := range e.o.flows {
		res := flowResult{Flow: name, Client: byFlow[name].client, Seconds: elapsed.Seconds(), LoadAvg: loadAvg()}
		res.add(byFlow[name].workers)
		ops += res.Ops
		sr.Flows = append(sr.Flows, res)
	}
	if ops > 0 {
		sr.ServerCPUPerOp = (cpu1 - cpu0) / float64(ops) * 1e6
	}
	sr.judge(e.o.soakWarmup.Seconds(), e.o.soakMaxGrowth)
	return sr, nil
}

type flowWorkers struct {
	workers []*worker
	client  string
}

// soakWorkers shares -conns connections between the flows, at least one
// each.
func (e *env) soakWorkers(ctx context.Context) (map[string]flowWorkers, []*worker, error) {
	byFlow := map[string]flowWorkers{}
	var all []*worker
	for i, name := range e.o.flows {
		n := e.o.conns / len(e.o.flows)
		if i < e.o.conns%len(e.o.flows) {
			n++
		}
		ws, client, err := e.prepare(ctx, name, max(n, 1))
		if err != nil {
			return nil, all, fmt.Errorf("%s: %w", name, err)
		}
		byFlow[name] = flowWorkers{ws, client}
		all = append(all, ws...)
	}
	return byFlow, all, nil
}

// sampleHeap reads the server's memory every -soak-interval until the
// soak ends.
func (e *env) sampleHeap(ctx context.Context, sr *soakResult, began time.Time) {
	t := time.NewTicker(e.o.soakInterval)
	defer t.Stop()
	for {
		if s, err := e.heapSample(ctx); err == nil {
			s.Seconds = time.Since(began).Seconds()
			sr.Samples = append(sr.Samples, s)
			progress("soak %3.0fs: live heap %.1f MiB, heap in use %.1f MiB, %d goroutines, RSS %.0f MiB",
				s.Seconds, s.LiveHeapMiB, s.HeapInuseMiB, s.Goroutines, s.RSSMiB)
		} else {
			progress("soak: reading the server's metrics: %v", err)
		}
		if time.Since(began) >= e.o.soak {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *env) heapSample(ctx context.Context) (heapSample, error) {
	m, err := scrapeMetrics(ctx, e.metricsURL, "go_memstats_next_gc_bytes", "go_memstats_heap_inuse_bytes", "go_goroutines")
	if err != nil {
		return heapSample{}, err
	}
	_, rss, err := procStats(e.serverPID())
	if err != nil {
		return heapSample{}, err
	}
	const mib = 1 << 20
	return heapSample{LiveHeapMiB: m["go_memstats_next_gc_bytes"] / 2 / mib, HeapInuseMiB: m["go_memstats_heap_inuse_bytes"] / mib,
		Goroutines: int(m["go_goroutines"]), RSSMiB: float64(rss) / mib}, nil
}

// scrapeMetrics reads unlabelled samples of the named metrics from a
// Prometheus text exposition.
func scrapeMetrics(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body, names)
}

func parseMetrics(r io.Reader, names []string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no metric %s", n)
		}
	}
	return out, nil
}

// judge computes the figures after the warm-up and the verdict.
func (sr *soakResult) judge(warmup, maxGrowthPercent float64) {
	var after []heapSample
	for _, s := range sr.Samples {
		if s.Seconds >= warmup {
			after = append(after, s)
		}
	}
	if len(after) < 4 {
		sr.Verdict = fmt.Sprintf("too few samples after the warm-up (%d): make -soak longer than -soak-warmup", len(after))
		return
	}
	live := func(s []heapSample) []float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = s[i].LiveHeapMiB
		}
		return v
	}
	k := min(5, len(after)/2)
	sr.StartMiB, sr.EndMiB = median(live(after[:k])), median(live(after[len(after)-k:]))
	sr.MaxMiB = slices.Max(live(after))
	sr.SlopeKiBPerMin = slope(after) * 1024 * 60
	sr.GoroutineStart, sr.GoroutineEnd = after[0].Goroutines, after[len(after)-1].Goroutines
	sr.BoundMiB = math.Max(1, sr.StartMiB*maxGrowthPercent/100)
	growth := sr.EndMiB - sr.StartMiB
	sr.Passed = growth <= sr.BoundMiB
	verdict := "constant"
	if !sr.Passed {
		verdict = "GROWING"
	}
	sr.Verdict = fmt.Sprintf("%s: live heap %.2f → %.2f MiB (%+.2f MiB, bound %.2f MiB), max %.2f MiB, slope %+.0f KiB/min, goroutines %d → %d",
		verdict, sr.StartMiB, sr.EndMiB, growth, sr.BoundMiB, sr.MaxMiB, sr.SlopeKiBPerMin, sr.GoroutineStart, sr.GoroutineEnd)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// slope is the least-squares slope of the live heap, in MiB per second.
func slope(s []heapSample) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, p := range s {
		n++
		sx += p.Seconds
		sy += p.LiveHeapMiB
		sxx += p.Seconds * p.Seconds
		sxy += p.Seconds * p.LiveHeapMiB
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
