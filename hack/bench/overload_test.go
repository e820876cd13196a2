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
// starved by the logins, on a failed probe, on peak RSS over the
// default memory limit, and on anything acknowledged during the overload
// (client_credentials access tokens, the tokens of accepted logins'
// codes) that is not usable after it (overload_checker.go).
// GATEHOUSE_OVERLOAD_PHASE sets each measured phase (default 5s); make
// test-faults prints the figures (-v).
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
// token issuance, answers otherwise than 429/503 with Retry-After or loses
// something it acknowledged, and only notes an accepted p99 over 5x for
// client_credentials.
func TestOverloadJudge(t *testing.T) {
	good := func() *overloadResult {
		return &overloadResult{CCCapacity: 1000, CCUnloaded: latency{P50: 0.2, P99: 1}, LoginUnloaded: latency{P50: 80, P99: 100},
			CC:             &openLoopResult{Seconds: 1, Sent: 2000, OK: 900, Shed: 1100, Accepted: latency{P50: 10, P99: 50}},
			Logins:         &openLoopResult{Seconds: 1, Sent: 20, OK: 10, Shed: 10, Accepted: latency{P50: 150, P99: 300}},
			CCDuringLogins: &openLoopResult{Seconds: 1, Sent: 250, OK: 250, Accepted: latency{P50: 0.5, P99: 12}},
			Probes:         &probeResult{Sent: 10}, PeakRSSMiB: 80, LimitMiB: 512,
			CCChecked:     &ackedResult{Phase: "client_credentials at 2x", Acknowledged: 900, Usable: 900},
			LoginsChecked: &ackedResult{Phase: "login flood", Acknowledged: 270, Usable: 270, LoginsAccepted: 10, LoginsRedeemed: 10}}
	}
	r := good()
	r.judge()
	if len(r.Failures) != 0 || len(r.Notes) != 2 || !strings.Contains(r.Notes[0], "NOT within 5x") {
		t.Fatalf("a good run: failures %q, notes %q", r.Failures, r.Notes)
	}
	for name, breakIt := range map[string]func(*overloadResult){
		"logins not shed":         func(r *overloadResult) { r.Logins.Shed, r.Logins.Sent = 0, 10 },
		"logins slow":             func(r *overloadResult) { r.Logins.Accepted.P99 = 600 },
		"tokens starved":          func(r *overloadResult) { r.CCDuringLogins.Accepted.P50 = 40 },
		"tokens refused":          func(r *overloadResult) { r.CCDuringLogins.OK, r.CCDuringLogins.Other = 200, 50 },
		"a 500":                   func(r *overloadResult) { r.CC.Other = 1 },
		"shed without RetryAfter": func(r *overloadResult) { r.Logins.ShedBare = 1 },
		"a hang":                  func(r *overloadResult) { r.CC.Hung = 1 },
		"collapsed":               func(r *overloadResult) { r.CC.OK, r.CCChecked.Acknowledged, r.CCChecked.Usable = 150, 150, 150 },
		"probe failed":            func(r *overloadResult) { r.Probes.Failed = 1 },
		"over the memory limit":   func(r *overloadResult) { r.PeakRSSMiB = 600 },
		"a token lost":            func(r *overloadResult) { r.CCChecked.Usable, r.CCChecked.Lost = 899, 1 },
		"a login not redeemed":    func(r *overloadResult) { r.LoginsChecked.LoginsRedeemed, r.LoginsChecked.LoginsNotRedeemed = 9, 1 },
		"a login not completed":   func(r *overloadResult) { r.LoginsChecked.LoginsAccepted = 9 },
		"checker not run":         func(r *overloadResult) { r.LoginsChecked = nil },
		"tokens not recorded":     func(r *overloadResult) { r.CCChecked.Acknowledged, r.CCChecked.Usable = 0, 0 },
		"login tokens unrecorded": func(r *overloadResult) { r.LoginsChecked.Acknowledged, r.LoginsChecked.Usable = 250, 250 },
	} {
		r := good()
		breakIt(r)
		r.judge()
		if len(r.Failures) != 1 {
			t.Errorf("%s: failures %q, want one", name, r.Failures)
		}
	}
}
