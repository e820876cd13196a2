package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

// TestTracesReachJaeger: with the OTEL_* variables pointing at a real
// Jaeger (v1.75.0 all-in-one, built by hack/jaeger.sh), a token request
// and a login with code exchange arrive there as spans of the trace their
// incoming traceparent named, children of the caller's span: the token
// endpoint's span, the login's, and the PostgreSQL statements the code
// exchange made. The audit line of the token request carries that trace
// ID.
func TestTracesReachJaeger(t *testing.T) {
	jaeger := startJaeger(t)
	dbURL := startPostgres(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+jaeger.otlp)
	t.Setenv("OTEL_SERVICE_NAME", "gatehouse-test")
	shutdown, err := tracing.Setup(t.Context(), "gatehouse-server", "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	if !tracing.Enabled() {
		t.Fatal("tracing is off with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}

	var auditOut lockedBuffer
	auditLog, err := audit.Open(audit.Stdout, &auditOut, nil, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ts := newTestServerWith(t, func(o *Options) { o.Store, o.Audit = store, auditLog })

	// A token request from a caller whose span is tokenParent.
	tokenTrace, tokenParent := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tokenCtx := context.WithValue(t.Context(), oauth2.HTTPClient,
		&http.Client{Transport: traceparentTransport{"00-" + tokenTrace + "-" + tokenParent + "-01"}})
	if _, err := ts.ccConfig(ccClientID, ccSecret).Token(tokenCtx); err != nil {
		t.Fatal(err)
	}

	// A login, consent and code exchange, every request in the trace
	// loginTrace.
	loginTrace, loginParent := "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	tp := traceparentTransport{"00-" + loginTrace + "-" + loginParent + "-01"}
	b := newBrowser(t, ts)
	b.client.Transport = tp
	cfg := ts.webConfig("orders:read")
	verifier := oauth2.GenerateVerifier()
	back := b.authorize(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "approve", false)
	exchangeCtx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: tp})
	if _, err := cfg.Exchange(exchangeCtx, back.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}

	// The audit line of the token request names the caller's trace.
	auditLog.Flush()
	if !strings.Contains(auditOut.String(), `"traceID":"`+tokenTrace+`"`) {
		t.Errorf("no audit line carries the token request's trace ID %s:\n%s", tokenTrace, auditOut.String())
	}

	if err := shutdown(t.Context()); err != nil { // exports what is pending
		t.Fatal(err)
	}
	tokenSpans := jaeger.trace(t, tokenTrace, "POST token")
	checkChildOf(t, tokenSpans, "POST token", tokenParent)
	loginSpans := jaeger.trace(t, loginTrace, "POST login", "POST consent", "POST token")
	checkChildOf(t, loginSpans, "POST login", loginParent)
	var statements []string
	for _, s := range loginSpans {
		if strings.HasPrefix(s.OperationName, "postgres ") {
			statements = append(statements, s.OperationName)
			if s.Process.ServiceName != "gatehouse-test" {
				t.Errorf("span %s is from service %q, want OTEL_SERVICE_NAME's gatehouse-test", s.OperationName, s.Process.ServiceName)
			}
		}
	}
	if len(statements) == 0 {
		t.Errorf("the login's trace has no PostgreSQL statement spans: %v", names(loginSpans))
	}
	t.Logf("Jaeger has trace %s: %v; trace %s: %v", tokenTrace, names(tokenSpans), loginTrace, names(loginSpans))
}

// traceparentTransport sends every request with a fixed traceparent, as
// a traced caller would.
type traceparentTransport struct{ traceparent string }

func (t traceparentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Traceparent", t.traceparent)
	return http.DefaultTransport.RoundTrip(req)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// jaegerSpan is a span as Jaeger's query API answers it.
type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	ProcessID string `json:"processID"`
	Process   struct {
		ServiceName string `json:"serviceName"`
	} `json:"-"`
}

type jaegerServer struct{ otlp, query string }

// startJaeger runs Jaeger all-in-one (in-memory storage) on loopback
// ports of its own.
func startJaeger(t *testing.T) *jaegerServer {
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
	j := &jaegerServer{otlp: hp(0), query: hp(1)}
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

// trace waits until Jaeger has the trace with spans of every wanted name
// and returns its spans.
func (j *jaegerServer) trace(t *testing.T, traceID string, want ...string) []jaegerSpan {
	t.Helper()
	var spans []jaegerSpan
	for began := time.Now(); time.Since(began) < 20*time.Second; time.Sleep(200 * time.Millisecond) {
		spans = j.fetch(t, traceID)
		got := names(spans)
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return slices.Contains(got, w) })
		if len(missing) == 0 {
			return spans
		}
	}
	t.Fatalf("Jaeger's trace %s has spans %v, want %v among them", traceID, names(spans), want)
	return nil
}

func (j *jaegerServer) fetch(t *testing.T, traceID string) []jaegerSpan {
	resp, err := http.Get("http://" + j.query + "/api/traces/" + traceID)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var body struct {
		Data []struct {
			Spans     []jaegerSpan `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var spans []jaegerSpan
	for _, d := range body.Data {
		for _, s := range d.Spans {
			s.Process.ServiceName = d.Processes[s.ProcessID].ServiceName
			spans = append(spans, s)
		}
	}
	return spans
}

// checkChildOf checks that the span named name is a child of the
// caller's span parent (the traceparent's parent-id).
func checkChildOf(t *testing.T, spans []jaegerSpan, name, parent string) {
	t.Helper()
	for _, s := range spans {
		if s.OperationName != name {
			continue
		}
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" && r.SpanID == parent {
				return
			}
		}
		t.Errorf("span %s has references %+v, want CHILD_OF the caller's span %s", name, s.References, parent)
		return
	}
	t.Errorf("no span %s", name)
}

func names(spans []jaegerSpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.OperationName)
	}
	slices.Sort(out)
	return out
}
