package main

import (
	"strings"
	"testing"
	"time"
)

// A short soak of three flows at once against the real server samples its
// heap from /metrics, counts every flow's operations and judges.
func TestSoakAgainstServer(t *testing.T) {
	e := realServer(t, clientLean)
	e.o.flows = []string{"client_credentials", "introspection", "jwks"}
	e.o.conns, e.o.soak, e.o.soakInterval, e.o.soakWarmup, e.o.soakMaxGrowth = 4, 1500*time.Millisecond, 200*time.Millisecond, 300*time.Millisecond, 10
	sr, err := e.soak(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Samples) < 6 || sr.Samples[0].LiveHeapMiB <= 0 || sr.Samples[0].Goroutines == 0 {
		t.Fatalf("samples %+v", sr.Samples)
	}
	if len(sr.Flows) != 3 {
		t.Fatalf("flows %+v", sr.Flows)
	}
	for _, f := range sr.Flows {
		if f.Ops == 0 || f.Errors != 0 || f.Client != clientLean {
			t.Errorf("%+v", f)
		}
	}
	if sr.Verdict == "" || sr.BoundMiB < 1 {
		t.Errorf("verdict %q, bound %v", sr.Verdict, sr.BoundMiB)
	}
}

// The verdict: a flat heap passes, one that keeps growing fails, and the
// warm-up's samples are not judged.
func TestSoakJudge(t *testing.T) {
	samples := func(f func(sec float64) float64) []heapSample {
		var s []heapSample
		for sec := 0.0; sec <= 300; sec += 5 {
			s = append(s, heapSample{Seconds: sec, LiveHeapMiB: f(sec), Goroutines: 20})
		}
		return s
	}
	for name, c := range map[string]struct {
		f    func(float64) float64
		pass bool
	}{
		"flat after a warm-up climb": {func(s float64) float64 { return min(20, 5+s) }, true},
		"noise within the bound":     {func(s float64) float64 { return 20 + float64(int(s)%3)*0.3 }, true},
		"slow steady growth":         {func(s float64) float64 { return 20 + s*0.02 }, false},
	} {
		sr := &soakResult{Samples: samples(c.f)}
		sr.judge(30, 10)
		if sr.Passed != c.pass {
			t.Errorf("%s: passed %v, want %v: %s", name, sr.Passed, c.pass, sr.Verdict)
		}
	}
	sr := &soakResult{Samples: samples(func(s float64) float64 { return 10 + s/60 })}
	sr.judge(30, 10)
	if sr.SlopeKiBPerMin < 1000 || sr.SlopeKiBPerMin > 1050 {
		t.Errorf("slope %.0f KiB/min, want 1024", sr.SlopeKiBPerMin)
	}
	short := &soakResult{Samples: samples(func(float64) float64 { return 1 })[:7]}
	short.judge(30, 10)
	if short.Passed || !strings.Contains(short.Verdict, "too few samples") {
		t.Errorf("too short a soak: %v %q", short.Passed, short.Verdict)
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader("# HELP x\ngo_goroutines 12\ngo_memstats_next_gc_bytes 8.388608e+06\nother{a=\"b\"} 1\n"),
		[]string{"go_goroutines", "go_memstats_next_gc_bytes"})
	if err != nil || m["go_goroutines"] != 12 || m["go_memstats_next_gc_bytes"] != 8388608 {
		t.Fatalf("%v %v", m, err)
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines 1\n"), []string{"go_goroutines", "missing"}); err == nil {
		t.Error("a missing metric was not an error")
	}
}
