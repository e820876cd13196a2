package server

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/testjaeger"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

// TestTracesReachJaeger: with the OTEL_* variables pointing at a real
// Jaeger (v1.75.0 all-in-one, built by hack/jaeger.sh), a token request
// and a login with code exchange arrive there as spans of the trace their
// incoming traceparent named, children of the caller's span: the token
// endpoint's span, the login's, the exchange's storage call
// (storage RedeemCode) and the PostgreSQL statements below it. The audit
// line of the token request carries that trace ID. The operator's side is
// TestOperatorTracesReachJaeger (cmd/gatehouse).
func TestTracesReachJaeger(t *testing.T) {
	jaeger := testjaeger.Start(t)
	dbURL := startPostgres(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+jaeger.OTLP)
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
	codeFlowThrough(t, ts, tp)

	// The audit line of the token request names the caller's trace.
	auditLog.Flush()
	if !strings.Contains(auditOut.String(), `"traceID":"`+tokenTrace+`"`) {
		t.Errorf("no audit line carries the token request's trace ID %s:\n%s", tokenTrace, auditOut.String())
	}

	if err := shutdown(t.Context()); err != nil { // exports what is pending
		t.Fatal(err)
	}
	tokenSpans := jaeger.Trace(t, tokenTrace, "POST token")
	checkChildOf(t, tokenSpans, "POST token", tokenParent)
	loginSpans := jaeger.Trace(t, loginTrace, "GET authorize", "POST login", "POST consent", "POST token", "storage RedeemCode")
	for _, name := range []string{"GET authorize", "POST login", "POST consent", "POST token"} {
		checkChildOf(t, loginSpans, name, loginParent)
	}
	spanID := map[string]string{}
	for _, s := range loginSpans {
		spanID[s.OperationName] = s.SpanID
	}
	checkChildOf(t, loginSpans, "storage RedeemCode", spanID["POST token"])
	var statements, underRedeem int
	for _, s := range loginSpans {
		if s.Service != "gatehouse-test" {
			t.Errorf("span %s is from service %q, want OTEL_SERVICE_NAME's gatehouse-test", s.OperationName, s.Service)
		}
		if strings.HasPrefix(s.OperationName, "postgres ") {
			statements++
			if s.ChildOf(spanID["storage RedeemCode"]) {
				underRedeem++
			}
		}
	}
	if statements == 0 || underRedeem == 0 {
		t.Errorf("the login's trace has %d PostgreSQL statement spans, %d of them under storage RedeemCode: %v",
			statements, underRedeem, testjaeger.Names(loginSpans))
	}
	t.Logf("Jaeger has trace %s: %v; trace %s: %v", tokenTrace, testjaeger.Names(tokenSpans), loginTrace, testjaeger.Names(loginSpans))
}

// checkChildOf checks that the span named name is a child of the span
// parent.
func checkChildOf(t *testing.T, spans []testjaeger.Span, name, parent string) {
	t.Helper()
	for _, s := range spans {
		if s.OperationName == name {
			if !s.ChildOf(parent) {
				t.Errorf("span %s has references %+v, want CHILD_OF %s", name, s.References, parent)
			}
			return
		}
	}
	t.Errorf("no span %s", name)
}

// traceparentTransport sends every request with a fixed traceparent, as
// a traced caller would.
// codeFlowThrough signs in, consents and exchanges the code, every
// request (the browser's and x/oauth2's) sent through rt.
func codeFlowThrough(t *testing.T, ts *testServer, rt http.RoundTripper) {
	t.Helper()
	b := newBrowser(t, ts)
	b.client.Transport = rt
	cfg := ts.webConfig("orders:read")
	verifier := oauth2.GenerateVerifier()
	back := b.authorize(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "approve", false)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: rt})
	if _, err := cfg.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
}

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
