package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// TestFaultOverload runs the overload scenario (overload.go) against a
// token server of its own process, built from this tree, on gatehouse
// dev's control plane: twice the measured capacity at client_credentials,
// then at the password login with client_credentials beside it. It fails
// on any answer but success or 429/503 with Retry-After, on a hang, on
// client_credentials issued at under a fifth of capacity, on logins not
// shed or admitted ones slower than 5x unloaded, on token issuance
// starved by the logins, on a failed probe and on peak RSS over the
// default memory limit. GATEHOUSE_OVERLOAD_PHASE sets each measured
// phase (default 5s); make test-faults prints the figures (-v).
func TestFaultOverload(t *testing.T) {
	if _, err := devenv.AssetsDir(); err != nil {
		testenv.MissingDependency(t, err)
	}
	phase := 5 * time.Second
	if v := os.Getenv("GATEHOUSE_OVERLOAD_PHASE"); v != "" {
		var err error
		if phase, err = time.ParseDuration(v); err != nil || phase <= 0 {
			t.Fatalf("GATEHOUSE_OVERLOAD_PHASE=%q: want a positive duration", v)
		}
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o := &options{gatehouse: bin, conns: 16, warmup: 2 * time.Second, storage: "memory", client: clientLean, stateDir: t.TempDir()}
	e, err := startEnv(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stop()
	res, err := e.runOverload(t.Context(), phase)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	res.print(&b)
	t.Log("\n" + b.String())
	for _, f := range res.Failures {
		t.Error(f)
	}
}

// The verdict fails a server that sheds no login, lets logins starve
// token issuance or answers otherwise than 429/503 with Retry-After, and
// only notes an accepted p99 over 5x for client_credentials.
func TestOverloadJudge(t *testing.T) {
	good := func() *overloadResult {
		return &overloadResult{CCCapacity: 1000, CCUnloaded: latency{P50: 0.2, P99: 1}, LoginUnloaded: latency{P50: 80, P99: 100},
			CC:             &openLoopResult{Seconds: 1, Sent: 2000, OK: 900, Shed: 1100, Accepted: latency{P50: 10, P99: 50}},
			Logins:         &openLoopResult{Seconds: 1, Sent: 20, OK: 10, Shed: 10, Accepted: latency{P50: 150, P99: 300}},
			CCDuringLogins: &openLoopResult{Seconds: 1, Sent: 250, OK: 250, Accepted: latency{P50: 0.5, P99: 12}},
			Probes:         &probeResult{Sent: 10}, PeakRSSMiB: 80, LimitMiB: 512}
	}
	r := good()
	r.judge()
	if len(r.Failures) != 0 || len(r.Notes) != 2 || !strings.Contains(r.Notes[0], "NOT within 5x") {
		t.Fatalf("a good run: failures %q, notes %q", r.Failures, r.Notes)
	}
	for name, breakIt := range map[string]func(*overloadResult){
		"logins not shed":         func(r *overloadResult) { r.Logins.Shed, r.Logins.OK = 0, 20 },
		"logins slow":             func(r *overloadResult) { r.Logins.Accepted.P99 = 600 },
		"tokens starved":          func(r *overloadResult) { r.CCDuringLogins.Accepted.P50 = 40 },
		"tokens refused":          func(r *overloadResult) { r.CCDuringLogins.OK, r.CCDuringLogins.Other = 200, 50 },
		"a 500":                   func(r *overloadResult) { r.CC.Other = 1 },
		"shed without RetryAfter": func(r *overloadResult) { r.Logins.ShedBare = 1 },
		"a hang":                  func(r *overloadResult) { r.CC.Hung = 1 },
		"collapsed":               func(r *overloadResult) { r.CC.OK = 150 },
		"probe failed":            func(r *overloadResult) { r.Probes.Failed = 1 },
		"over the memory limit":   func(r *overloadResult) { r.PeakRSSMiB = 600 },
	} {
		r := good()
		breakIt(r)
		r.judge()
		if len(r.Failures) != 1 {
			t.Errorf("%s: failures %q, want one", name, r.Failures)
		}
	}
}
