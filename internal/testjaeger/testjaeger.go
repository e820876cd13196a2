// Package testjaeger runs a real Jaeger all-in-one (v1.75.0, built by
// hack/jaeger.sh into bin/, or $JAEGER) for tests, and reads what it
// received through its query API.
package testjaeger

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Span is a span as Jaeger's query API answers it, with its process's
// service name.
type Span struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	ProcessID string `json:"processID"`
	Service   string `json:"-"`
}

// ChildOf reports whether s is a child of the span parent.
func (s Span) ChildOf(parent string) bool {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.SpanID == parent {
			return true
		}
	}
	return false
}

// Server is a running Jaeger: OTLP is the OTLP/HTTP receiver's host:port
// (OTEL_EXPORTER_OTLP_ENDPOINT is http://OTLP), Query the query API's.
type Server struct{ OTLP, Query string }

// Start runs Jaeger all-in-one (in-memory storage) on loopback ports of
// its own until the test ends.
func Start(t *testing.T) *Server {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bins, _ := filepath.Glob(filepath.Join(root, "bin", "jaeger-*"))
	if p := os.Getenv("JAEGER"); p != "" {
		bins = []string{p} // the Makefile's
	}
	if len(bins) == 0 {
		testenv.MissingDependency(t, fmt.Errorf("no bin/jaeger-*: run hack/jaeger.sh"))
	}
	slices.Sort(bins)
	ports, err := devenv.FreePorts(7)
	if err != nil {
		t.Fatal(err)
	}
	hp := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	j := &Server{OTLP: hp(0), Query: hp(1)}
	cmd := exec.Command(bins[len(bins)-1], "--collector.otlp.http.host-port="+hp(0), "--query.http-server.host-port="+hp(1),
		"--admin.http.host-port="+hp(2), "--collector.grpc-server.host-port="+hp(3), "--collector.http-server.host-port="+hp(4),
		"--collector.otlp.grpc.host-port="+hp(5), "--query.grpc-server.host-port="+hp(6))
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for began := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + hp(2) + "/"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(began) > 30*time.Second {
			t.Fatalf("jaeger did not become healthy:\n%s", logs.String())
		}
	}
	return j
}

// Trace waits until Jaeger has the trace with spans of every wanted name
// and returns its spans.
func (j *Server) Trace(t *testing.T, traceID string, want ...string) []Span {
	t.Helper()
	var spans []Span
	for began := time.Now(); time.Since(began) < 20*time.Second; time.Sleep(200 * time.Millisecond) {
		spans = j.get(t, "/api/traces/"+traceID)
		if hasAll(spans, want) {
			return spans
		}
	}
	t.Fatalf("Jaeger's trace %s has spans %v, want %v among them", traceID, Names(spans), want)
	return nil
}

// Operation waits until Jaeger has spans of service named operation and
// returns the spans of the traces that have them.
func (j *Server) Operation(t *testing.T, service, operation string) []Span {
	t.Helper()
	q := url.Values{"service": {service}, "operation": {operation}, "limit": {"100"}, "lookback": {"1h"}}
	var spans []Span
	for began := time.Now(); time.Since(began) < 20*time.Second; time.Sleep(200 * time.Millisecond) {
		spans = j.get(t, "/api/traces?"+q.Encode())
		if hasAll(spans, []string{operation}) {
			return spans
		}
	}
	t.Fatalf("Jaeger has no span %s of service %s", operation, service)
	return nil
}

func hasAll(spans []Span, want []string) bool {
	got := Names(spans)
	return !slices.ContainsFunc(want, func(w string) bool { return !slices.Contains(got, w) })
}

func (j *Server) get(t *testing.T, path string) []Span {
	t.Helper()
	resp, err := http.Get("http://" + j.Query + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var body struct {
		Data []struct {
			Spans     []Span `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var spans []Span
	for _, d := range body.Data {
		for _, s := range d.Spans {
			s.Service = d.Processes[s.ProcessID].ServiceName
			spans = append(spans, s)
		}
	}
	return spans
}

// Names are the spans' operation names, sorted.
func Names(spans []Span) []string {
	out := make([]string, 0, len(spans))
	for _, s := range spans {
		out = append(out, s.OperationName)
	}
	slices.Sort(out)
	return out
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
