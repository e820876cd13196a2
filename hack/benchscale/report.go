package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

type report struct {
	N          int    `json:"n"`
	Namespaces int    `json:"namespaces"`
	Commit     string `json:"commit"`
	Started    string `json:"started"`
	CPUs       int    `json:"cpus"`

	Bulk      *bulkResult           `json:"bulk,omitempty"`
	Fanout    *fanoutResult         `json:"fanout,omitempty"`
	Restart   *restartResult        `json:"restart,omitempty"`
	Churn     *churnResult          `json:"churn,omitempty"`
	Processes map[string]procResult `json:"processes,omitempty"`
	Errors    []string              `json:"errors,omitempty"`
}

type bulkResult struct {
	ApplySeconds     float64 `json:"applySeconds"`
	AllReadySeconds  float64 `json:"allReadySeconds"`
	ReadyPerSecond   float64 `json:"readyPerSecond"`
	LastTokenSeconds float64 `json:"lastTokenSeconds"`
	// IdleSeconds: until the operator had nothing left to do.
	IdleSeconds                float64            `json:"idleSeconds"`
	Requests                   counters           `json:"requests"`
	OperatorRequestsPerClient  float64            `json:"operatorRequestsPerClient"`
	APIServerRequestsPerClient float64            `json:"apiserverRequestsPerClient"`
	CPUSeconds                 map[string]float64 `json:"cpuSeconds"`
	// LiveHeapMiB after the bulk apply, and its growth per client over
	// the heap before it (see idleHeaps).
	LiveHeapMiB      map[string]float64 `json:"liveHeapMiB"`
	HeapPerClientKiB map[string]float64 `json:"heapPerClientKiB"`
}

func newReport(o *options) *report {
	return &report{N: o.n, Namespaces: o.namespaces, Commit: cmp.Or(o.label, gitCommit()), Started: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU()}
}

// print writes the human-readable table.
func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer func() { _ = tw.Flush() }() // to the terminal, as the rows
	fmt.Fprintf(tw, "\nScale benchmark: N=%d clients over %d namespaces, %d CPUs, %s\n\n", r.N, r.Namespaces, r.CPUs, r.Commit)
	row := func(what string, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", what, fmt.Sprintf(format, args...))
	}
	if b := r.Bulk; b != nil {
		row("bulk: applied (harness writes)", "%.1f s", b.ApplySeconds)
		row("bulk: all Ready", "%.1f s (%.0f clients/s)", b.AllReadySeconds, b.ReadyPerSecond)
		row("bulk: last client's first token", "%.1f s", b.LastTokenSeconds)
		row("bulk: operator idle", "%.1f s", b.IdleSeconds)
		row("bulk: operator API requests per client", "%.2f (%s)", b.OperatorRequestsPerClient, byMethod(b.Requests.ByMethod))
		row("bulk: API server requests per client", "%.2f (all clients of it)", b.APIServerRequestsPerClient)
		for _, name := range sortedKeys(b.CPUSeconds) {
			row("bulk: CPU "+name, "%.1f s", b.CPUSeconds[name])
		}
		for _, name := range sortedKeys(b.LiveHeapMiB) {
			row("bulk: live heap "+name, "%.1f MiB (%.2f KiB per client)", b.LiveHeapMiB[name], b.HeapPerClientKiB[name])
		}
	}
	if f := r.Fanout; f != nil {
		row("fan-out: new client's Secret", "%.2f s", f.NewClientSecretSeconds)
		row("fan-out: new client's first token", "%.2f s", f.NewClientTokenSeconds)
		row("fan-out: reconciles, operator idle", "%.0f, %.1f s", f.Reconciles, f.IdleSeconds)
		row("fan-out undone: all Ready again", "%.1f s (%.0f reconciles)", f.RestoredSeconds, f.RestoreReconciles)
	}
	if s := r.Restart; s != nil {
		row("restart: operator idle", "%.1f s", s.IdleSeconds)
		row("restart: reconciles", "%.0f", s.Reconciles)
		row("restart: API requests (writes)", "%.0f (%.0f) %s", s.Requests.Operator, s.Writes, byMethod(s.Requests.ByMethod))
		row("restart: Secrets changed", "%d", s.SecretsChanged)
	}
	if c := r.Churn; c != nil {
		row("churn: deleted + created", "%d + %d", c.Deleted, c.Created)
		row("churn: failed traffic requests", "%d of %d", c.TrafficFailures, c.TrafficRequests)
		row("churn: deleted client refused within", "%.2f s (max of %d samples)", c.MaxRefusalSeconds, c.RefusalSamples)
		row("churn: new clients all Ready", "%.1f s", c.NewReadySeconds)
	}
	for _, name := range sortedKeys(r.Processes) {
		p := r.Processes[name]
		heap := ""
		if p.PeakHeapMiB > 0 {
			heap = fmt.Sprintf(", peak heap %.1f MiB", p.PeakHeapMiB)
		}
		row("process "+name, "CPU %.1f s, peak RSS %.1f MiB%s", p.CPUSeconds, p.PeakRSSMiB, heap)
	}
	for _, e := range r.Errors {
		row("error", "%s", e)
	}
}

func byMethod(m map[string]float64) string {
	var parts []string
	for _, k := range methods {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
