package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
)

type report struct {
	Machine    string          `json:"machine"`
	Command    string          `json:"command"`
	Started    string          `json:"started"`
	Storage    string          `json:"storage"`
	Conns      int             `json:"conns"`
	Duration   string          `json:"duration"`
	ServerCPUs string          `json:"serverCPUs,omitempty"`
	Flows      []flowResult    `json:"flows"`
	Soak       *soakResult     `json:"soak,omitempty"`
	Overload   *overloadResult `json:"overload,omitempty"`
}

type flowResult struct {
	// Product is gatehouse, or the peer and its configuration (-peer);
	// Round the pass of -rounds.
	Product          string   `json:"product,omitempty"`
	Round            int      `json:"round,omitempty"`
	Flow             string   `json:"flow"`
	Client           string   `json:"client"`
	Ops              int      `json:"ops"`
	Seconds          float64  `json:"seconds"`
	PerSecond        float64  `json:"perSecond"`
	P50              float64  `json:"p50ms"`
	P99              float64  `json:"p99ms"`
	P999             float64  `json:"p999ms"`
	Errors           int      `json:"errors"`
	FirstErrors      []string `json:"firstErrors,omitempty"`
	ServerCPUSeconds float64  `json:"serverCPUSeconds"`
	CPUPer1000       float64  `json:"serverCPUSecondsPer1000"`
	// LoadGenCPUPerOp is the load generator's own CPU per operation, in
	// microseconds: on a shared machine it is taken from the server.
	LoadGenCPUPerOp float64 `json:"loadGeneratorCPUMicrosecondsPerOp"`
	RSSMiB          float64 `json:"serverRSSMiB"`
	LoadAvg         string  `json:"loadAverage"`
	// ClusterKeyFetches counts the server's fetches of the cluster's
	// service-account issuer keys during the measured period
	// (gatehouse_server_key_fetches_total{key_set="kubernetes"}): none
	// happen on a request path, so 0 after warm-up.
	ClusterKeyFetches *int `json:"clusterKeyFetches,omitempty"`
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "%s; storage %s; %d connections; %s per flow; server CPUs %q\n", r.Machine, r.Storage, r.Conns, r.Duration, r.ServerCPUs)
	if r.Soak != nil {
		r.Soak.print(w)
		return
	}
	if r.Overload != nil {
		r.Overload.print(w)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "product\tround\tflow\tclient\tops/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\tCPU s/1000\tµs/op\tgen µs/op\tRSS MiB\tload avg\t")
	for _, f := range r.Flows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%.3f\t%.0f\t%.0f\t%.0f\t%s\t\n", f.Product, f.Round, f.Flow, f.Client, f.PerSecond, f.P50, f.P99, f.P999,
			f.Errors, f.CPUPer1000, f.CPUPer1000*1000, f.LoadGenCPUPerOp, f.RSSMiB, f.LoadAvg)
	}
	_ = tw.Flush()
	for _, f := range r.Flows {
		if f.ClusterKeyFetches != nil && (*f.ClusterKeyFetches != 0 || f.Flow == flowCCServiceAccount) {
			fmt.Fprintf(w, "%s: %d fetches of the cluster's service-account issuer keys while measured\n", f.Flow, *f.ClusterKeyFetches)
		}
	}
}

func (sr *soakResult) print(w io.Writer) {
	fmt.Fprintf(w, "soak %s (warm-up %s), server CPU %.0f µs per operation\n", sr.Duration, sr.Warmup, sr.ServerCPUPerOp)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flow\tclient\tops\tops/s\terrors\t")
	for _, f := range sr.Flows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%d\t\n", f.Flow, f.Client, f.Ops, f.PerSecond, f.Errors)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, sr.Verdict)
}

// emit prints the report and writes it as JSON to path.
func (r *report) emit(path string) error {
	r.print(os.Stdout)
	if err := r.write(path); err != nil {
		return err
	}
	progress("wrote %s", path)
	return nil
}

func (r *report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// machine names the CPU and core count, from /proc/cpuinfo.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs, %s", model, runtime.NumCPU(), runtime.Version())
}
