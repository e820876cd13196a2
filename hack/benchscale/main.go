// Command benchscale measures Gatehouse at scale (issue 15): it starts etcd
// and kube-apiserver (the envtest binaries in bin/k8s), `gatehouse operator`
// and `gatehouse server` as separate processes, applies N OAuthClients in
// bulk and reports how long they take to be usable, how many API requests
// the operator makes per client, and the CPU and memory of every process.
// Then it runs the scenarios of the issue: a Scope fan-out with a new client
// created during it, an operator restart, and client churn under token
// traffic. Progress goes to stderr, a table and JSON to stdout (and -json).
//
//	make bench-scale N=10000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

type options struct {
	n              int
	namespaces     int
	churn          int
	workers        int
	gatehouse      string
	stateDir       string
	jsonOut        string
	scenarios      map[string]bool
	keep           bool
	label          string
	profileDir     string
	profileSeconds int
}

var allScenarios = []string{"fanout", "restart", "churn"}

func parseFlags() (*options, error) {
	o := &options{}
	flag.IntVar(&o.n, "n", 1000, "OAuthClients applied in bulk")
	flag.IntVar(&o.namespaces, "namespaces", 20, "namespaces the clients are spread over")
	flag.IntVar(&o.churn, "churn", 500, "clients deleted and created in the churn scenario")
	flag.IntVar(&o.workers, "workers", 16, "concurrent API writes while applying clients")
	flag.StringVar(&o.gatehouse, "gatehouse", "bin/gatehouse", "the gatehouse binary (make build)")
	flag.StringVar(&o.stateDir, "state-dir", "", "directory for etcd data, logs and the JSON report (default: a new temporary directory)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the JSON report here (default: STATE-DIR/benchscale.json with -state-dir or -keep, else benchscale-nN-TIME.json in the temporary directory)")
	scen := flag.String("scenarios", strings.Join(allScenarios, ","), "scenarios after the bulk apply: any of "+strings.Join(allScenarios, ","))
	flag.BoolVar(&o.keep, "keep", false, "keep the state directory")
	flag.StringVar(&o.profileDir, "profile", "", "write profiles here: kube-apiserver's and the operator's CPU during the bulk apply, the operator's heap after it (go tool pprof)")
	flag.IntVar(&o.profileSeconds, "profile-seconds", 30, "length of the CPU profiles, from the first write of the bulk apply")
	flag.StringVar(&o.label, "label", "", "what is measured, for the report (default: git describe of the working directory)")
	flag.Parse()
	if o.n < 1 || o.namespaces < 1 || o.workers < 1 || o.churn < 0 {
		return nil, fmt.Errorf("-n, -namespaces and -workers must be positive and -churn not negative")
	}
	if o.churn+churnTraffic > o.n {
		o.churn = max(o.n-churnTraffic, 0)
	}
	o.scenarios = map[string]bool{}
	for _, s := range strings.Split(*scen, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !contains(allScenarios, s) {
			return nil, fmt.Errorf("-scenarios: unknown scenario %q (known: %s)", s, strings.Join(allScenarios, ","))
		}
		o.scenarios[s] = true
	}
	abs, err := filepath.Abs(o.gatehouse)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("-gatehouse: %w (run make build)", err)
	}
	o.gatehouse = abs
	return o, nil
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func main() {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(2)
	}
	// The harness's own watch logs nothing worth reading.
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := run(ctx, o)
	if rep != nil {
		rep.print(os.Stdout)
		if err2 := rep.writeJSON(o.jsonOut); err2 != nil {
			fmt.Fprintln(os.Stderr, "benchscale:", err2)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

// progress prints a timestamped line to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s benchscale: %s\n", time.Now().UTC().Format("15:04:05.0"), fmt.Sprintf(format, args...))
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	if path == "" {
		return nil
	}
	progress("report written to %s", path)
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
