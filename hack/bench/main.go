// Command bench is the HTTP benchmark of the token server (make bench-http):
// it starts `gatehouse dev` (a local control plane, the operator and the demo
// data), then a `gatehouse server` of its own against that control plane,
// optionally pinned to CPUs and optionally on a PostgreSQL it starts, and
// drives each flow with keep-alive connections for a fixed time.
//
// For each flow it prints, and writes as JSON: operations per second, p50,
// p99 and p99.9 latency, errors (any unexpected status fails the run), the
// server's CPU seconds per 1,000 operations and its RSS. CPU per operation
// is the figure to compare between runs on a shared machine: throughput
// depends on what else runs, CPU per request much less.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	gatehouse  string
	flows      []string
	conns      int
	duration   time.Duration
	warmup     time.Duration
	storage    string
	serverCPUs string
	jsonOut    string
	bcryptCost int
	stateDir   string
	client     string
	// The soak: all flows at once for soak, the heap sampled every
	// soakInterval, judged after soakWarmup.
	soak          time.Duration
	soakInterval  time.Duration
	soakWarmup    time.Duration
	soakMaxGrowth float64
	// overload is each measured phase of the overload scenario
	// (overload.go); 0: not run.
	overload time.Duration
	// clients more OAuthClients are applied before the server under test
	// starts (clients.go).
	clients int
	// genProcs is the load generator's GOMAXPROCS (0: Go's default).
	genProcs int
	// The peer measured in the same run (peer_hydra.go): its name (""
	// none), binary and configurations; rounds of all products in turn.
	peer        string
	peerBin     string
	peerConfigs []string
	hydraPBKDF2 int
	rounds      int
	// variants are token-server configurations measured in turn
	// (variants.go); none: one server as gatehouse dev configures it.
	variants []variant
}

// The load generator's clients: lean (wrk-like, for the flows that are
// one request) and net/http (every flow; the only one for browser flows).
const (
	clientLean    = "lean"
	clientNetHTTP = "nethttp"
)

var allFlows = []string{"client_credentials", flowCCServiceAccount, flowCCPrivateKeyJWT, flowCCPrivateKeyJWTRS256, flowCCPrivateKeyJWTEdDSA, "introspection", "jwks", "metadata", "sso_code", "refresh", "password_code"}

func main() {
	o := &options{}
	flows := flag.String("flows", strings.Join(allFlows, ","), "comma-separated flows: "+strings.Join(allFlows, ", ")+" (with -peer: the four it can drive)")
	flag.StringVar(&o.gatehouse, "gatehouse", "bin/gatehouse", "the gatehouse binary to benchmark")
	flag.IntVar(&o.conns, "conns", 16, "concurrent keep-alive connections (one worker each)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per flow")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time per flow before it")
	flag.StringVar(&o.storage, "storage", "memory", "memory, or postgres (a throwaway PostgreSQL the harness starts; needs its binaries, as internal/testpg)")
	flag.StringVar(&o.serverCPUs, "server-cpus", "", "pin the token server to these CPUs with taskset, e.g. 0")
	flag.StringVar(&o.jsonOut, "json", "", "where to write the results (default: bench-http.json in the state directory)")
	flag.IntVar(&o.bcryptCost, "bcrypt-cost", 0, "re-hash the demo user's password at this bcrypt cost (default: as gatehouse dev made it)")
	flag.StringVar(&o.client, "client", clientLean, "load generator client: lean (a minimal HTTP/1.1 keep-alive client, for client_credentials, introspection, jwks and metadata; the others use net/http) or nethttp (net/http's client for every flow)")
	flag.DurationVar(&o.soak, "soak", 0, "instead of one flow after another, run all -flows at once for this long (e.g. 5m), sampling the server's heap, and fail if it grows (issue 13 goal 6)")
	flag.DurationVar(&o.soakInterval, "soak-interval", 5*time.Second, "how often the soak samples the server's heap")
	flag.DurationVar(&o.soakWarmup, "soak-warmup", 30*time.Second, "the first part of the soak, whose samples are shown but not judged")
	flag.Float64Var(&o.soakMaxGrowth, "soak-max-growth", 10, "how much the live heap may grow from the start to the end of the soak, in percent (at least 1 MiB)")
	flag.DurationVar(&o.overload, "overload", 0, "instead of the flows, run the overload scenario with phases this long (e.g. 10s): capacity and unloaded latency of client_credentials and password logins, then 2x capacity open loop at each; fail unless the excess is shed with 429/503 and Retry-After, accepted p99 stays within 5x unloaded, probes answer, peak RSS is under the default limit and every token acknowledged during the overload is still usable afterwards (introspection, refresh grant)")
	flag.IntVar(&o.clients, "clients", 0, "apply this many more client_credentials OAuthClients to the demo server, and wait until they are Ready, before the server under test starts (the sizing docs/operations.md advertises is 10000)")
	flag.IntVar(&o.genProcs, "gen-procs", 0, "the load generator's GOMAXPROCS (default: Go's, the CPUs it may use); the server's is its own")
	flag.StringVar(&o.stateDir, "state-dir", "", "state directory for gatehouse dev and the logs (default: a new temporary one)")
	flag.StringVar(&o.peer, "peer", "", "also measure this peer in the same run, flow by flow in turn with Gatehouse: hydra (Ory Hydra, -peer-bin; flows client_credentials, introspection, jwks, metadata)")
	flag.StringVar(&o.peerBin, "peer-bin", "bin/hydra", "the peer's binary (hack/hydra.sh builds Hydra with SQLite for its memory storage)")
	peerConfigs := flag.String("peer-configs", hydraOpaque+","+hydraJWT, "the peer's configurations, each its own process: opaque (Hydra's default access tokens), jwt (JWT access tokens signed ES256)")
	flag.IntVar(&o.hydraPBKDF2, "hydra-pbkdf2-iterations", 0, "Hydra's PBKDF2 iterations for client secrets (default: Hydra's, 25,000)")
	flag.IntVar(&o.rounds, "rounds", 1, "how many times to measure every flow of every product, in turn")
	variants := flag.String("variants", "", "measure token servers configured differently, flow by flow in turn: \"name=args;name=args\", a word NAME=value being an environment variable, @path the gatehouse binary, {dir} the state directory; e.g. \"audit-off=--audit-log off;audit-on=--audit-log {dir}/audit.log\"")
	flag.Parse()
	o.flows = strings.Split(*flows, ",")
	if o.peer != "" && !flagSet("flows") {
		o.flows = []string{"client_credentials", "introspection", "jwks", "metadata"}
	}
	o.peerConfigs = strings.Split(*peerConfigs, ",")
	if err := checkPeer(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	for _, f := range o.flows {
		if _, ok := flowTable[f]; !ok {
			fmt.Fprintf(os.Stderr, "bench: unknown flow %q (want some of %s)\n", f, strings.Join(allFlows, ", "))
			os.Exit(2)
		}
	}
	if o.conns < 1 || o.duration <= 0 || (o.storage != "memory" && o.storage != "postgres") || (o.client != clientLean && o.client != clientNetHTTP) {
		fmt.Fprintln(os.Stderr, "bench: -conns must be at least 1, -duration positive, -storage memory or postgres, -client lean or nethttp")
		os.Exit(2)
	}
	var err error
	if o.variants, err = parseVariants(*variants); err != nil || (len(o.variants) > 0 && (o.peer != "" || o.soak > 0)) {
		fmt.Fprintln(os.Stderr, "bench: -variants:", err, "(not with -peer or -soak)")
		os.Exit(2)
	}
	if o.genProcs > 0 {
		// Set here, not through the environment, which the servers inherit.
		runtime.GOMAXPROCS(o.genProcs)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// flagSet reports whether a flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// run sets everything up, runs each flow and reports. A flow with errors
// fails the run, after the report.
func run(ctx context.Context, o *options) error {
	e, err := startEnv(ctx, o)
	if err != nil {
		return err
	}
	defer e.stop()
	if o.jsonOut == "" {
		o.jsonOut = filepath.Join(e.dir, "bench-http.json")
	}
	rep := &report{Machine: machine(), Storage: o.storage, Conns: o.conns, Duration: o.duration.String(),
		ServerCPUs: o.serverCPUs, Command: strings.Join(os.Args, " "), Started: time.Now().UTC().Format(time.RFC3339)}
	if o.soak > 0 {
		return runSoak(ctx, e, rep)
	}
	if o.overload > 0 {
		return runOverload(ctx, e, rep)
	}
	products := []*env{e}
	if len(o.variants) > 1 {
		if products, err = e.startVariants(ctx, o.variants); err != nil {
			return err
		}
		defer func() {
			for _, p := range products[1:] {
				p.stop()
			}
		}()
	}
	if o.peer != "" {
		peers, err := startPeers(ctx, o, e.dir)
		if err != nil {
			return err
		}
		defer func() {
			for _, p := range peers {
				p.stop()
			}
		}()
		products = append(products, peers...)
	}
	failed, err := measureAll(ctx, o, products, rep)
	if err != nil {
		return err
	}
	if err := rep.emit(o.jsonOut); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("errors in %s (first ones in the JSON)", strings.Join(failed, ", "))
	}
	return nil
}

// checkPeer checks the peer options: a known peer, flows it can be driven
// through, and no soak.
func checkPeer(o *options) error {
	if o.rounds < 1 {
		return fmt.Errorf("-rounds must be at least 1")
	}
	if o.peer == "" {
		return nil
	}
	if o.peer != "hydra" || o.soak > 0 {
		return fmt.Errorf("-peer: only hydra, and not with -soak")
	}
	if _, err := os.Stat(o.peerBin); err != nil {
		return fmt.Errorf("-peer-bin: %w (hack/hydra.sh builds it)", err)
	}
	for _, f := range o.flows {
		if !peerFlows[f] {
			return fmt.Errorf("-peer: flow %s is not driven at the peer (client_credentials, introspection, jwks, metadata)", f)
		}
	}
	for _, c := range o.peerConfigs {
		if c != hydraOpaque && c != hydraJWT {
			return fmt.Errorf("-peer-configs: %q is neither %s nor %s", c, hydraOpaque, hydraJWT)
		}
	}
	return nil
}

// measureAll measures every flow of every product, the products in turn
// flow by flow (Gatehouse, the peer, Gatehouse, ...), -rounds times, so
// that a change in what else runs on the machine falls on all of them. It
// returns the flows with errors.
func measureAll(ctx context.Context, o *options, products []*env, rep *report) ([]string, error) {
	failed := []string{}
	for round := 1; round <= o.rounds; round++ {
		for _, name := range o.flows {
			for _, e := range products {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res, err := e.measure(ctx, name)
				if err != nil {
					return nil, fmt.Errorf("%s, %s: %w", e.product, name, err)
				}
				res.Product, res.Round = e.product, round
				rep.Flows = append(rep.Flows, res)
				progress("%s, %s: %.0f/s, %d errors", e.product, name, res.PerSecond, res.Errors)
				if res.Errors > 0 {
					failed = append(failed, e.product+" "+name)
				}
			}
		}
	}
	return failed, nil
}

// runOverload runs the overload scenario and reports it; a broken
// guarantee fails the run.
func runOverload(ctx context.Context, e *env, rep *report) error {
	res, err := e.runOverload(ctx, e.o.overload)
	if err != nil {
		return err
	}
	rep.Duration, rep.Overload = res.Phase, res
	if err := rep.emit(e.o.jsonOut); err != nil {
		return err
	}
	if len(res.Failures) > 0 {
		return fmt.Errorf("overload: %s", strings.Join(res.Failures, "; "))
	}
	return nil
}

// runSoak runs the soak and reports it; errors in any flow or a growing
// heap fail the run.
func runSoak(ctx context.Context, e *env, rep *report) error {
	sr, err := e.soak(ctx)
	if err != nil {
		return err
	}
	rep.Duration, rep.Soak = sr.Duration, sr
	if err := rep.emit(e.o.jsonOut); err != nil {
		return err
	}
	failed := []string{}
	for _, f := range sr.Flows {
		if f.Errors > 0 {
			failed = append(failed, f.Flow)
		}
	}
	switch {
	case len(failed) > 0:
		return fmt.Errorf("errors in %s (first ones in the JSON)", strings.Join(failed, ", "))
	case !sr.Passed:
		return fmt.Errorf("soak: %s", sr.Verdict)
	}
	return nil
}
