package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-dev/gatehouse/internal/tracing/tracingtest"
)

// unlessServer samples a span whose parent is sampled, and every other
// span but a request's: were a child span of a request not sampled to
// take a sampling decision of its own, it would be recorded.
type unlessServer struct{}

func (unlessServer) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if parent := trace.SpanContextFromContext(p.ParentContext); parent.IsSampled() {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: parent.TraceState()}
	}
	if p.Kind == trace.SpanKindServer {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
}

func (unlessServer) Description() string { return "unlessServer" }

// TestTracingDecidesAtTheEdge: the sampler decides once per request, where
// it enters the server. A caller's sampled traceparent is honoured even by
// a sampler that samples nothing of its own (parent-based): the code
// flow's requests are spans of the caller's trace, and the memory store's
// calls are spans of the request that made them ("storage <Method>",
// db.system.name memory). A request not sampled (the caller said so, or
// the sampler did) records nothing, even under a sampler that would
// sample its storage calls on their own.
func TestTracingDecidesAtTheEdge(t *testing.T) {
	rec := tracingtest.Record(t, unlessServer{})
	ts := newTestServer(t)

	callerTrace, callerSpan := "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	tp := traceparentTransport{"00-" + callerTrace + "-" + callerSpan + "-01"}
	codeFlowThrough(t, ts, tp)
	spans := rec.Ended()
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanContext().TraceID().String() != callerTrace {
			t.Errorf("span %s is in trace %s, not the caller's", s.Name(), s.SpanContext().TraceID())
		}
		byName[s.Name()] = s
	}
	for _, name := range []string{"GET authorize", "POST login", "POST consent", "POST token"} {
		s, ok := byName[name]
		if !ok {
			t.Fatalf("no span %s among %v", name, tracingtest.Names(spans))
		}
		if s.Parent().SpanID().String() != callerSpan || s.SpanKind() != trace.SpanKindServer {
			t.Errorf("span %s: parent %s kind %v, want the caller's span %s, server", name, s.Parent().SpanID(), s.SpanKind(), callerSpan)
		}
	}
	var stored []string
	for _, s := range tracingtest.Children(spans, byName["POST token"].SpanContext()) {
		stored = append(stored, s.Name())
		if tracingtest.Attr(s, "db.system.name") != "memory" || !strings.HasPrefix(s.Name(), "storage ") {
			t.Errorf("the token request's child %s has attributes %v", s.Name(), s.Attributes())
		}
	}
	if !slices.Contains(stored, "storage RedeemCode") {
		t.Errorf("the code exchange's storage spans are %v, want storage RedeemCode among them", stored)
	}
	t.Logf("%d spans: %v", len(spans), tracingtest.Names(spans))

	// Not sampled: by the caller's traceparent (flags 00), and by the
	// sampler (no traceparent).
	before := len(rec.Ended())
	for _, rt := range []http.RoundTripper{traceparentTransport{"00-" + callerTrace + "-" + callerSpan + "-00"}, http.DefaultTransport} {
		codeFlowThrough(t, ts, rt)
	}
	if spans := rec.Ended()[before:]; len(spans) != 0 {
		t.Errorf("flows not sampled recorded %d spans: %v", len(spans), tracingtest.Names(spans))
	}
}
