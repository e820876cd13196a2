package tracing

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestWanted(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		on      bool
		failing bool
	}{
		{env: nil, on: false},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, on: false},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, on: false},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, failing: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, failing: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true},
	} {
		on, err := Wanted(func(k string) string { return tc.env[k] })
		if on != tc.on || (err != nil) != tc.failing {
			t.Errorf("Wanted(%v) = %v, %v; want %v, error %v", tc.env, on, err, tc.on, tc.failing)
		}
	}
}

// withRecorder turns tracing on with an in-memory recorder for the test.
func withRecorder(t *testing.T) *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	SetTracer(tp.Tracer(ScopeName))
	t.Cleanup(func() { SetTracer(nil) })
	return rec
}

func TestTransportOffAddsNothing(t *testing.T) {
	SetTracer(nil)
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Traceparent") }))
	defer srv.Close()
	resp, err := (&http.Client{Transport: Transport(nil)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got != "" {
		t.Errorf("tracing off, the request carried traceparent %q", got)
	}
}

// TestTransportPropagates: an outgoing call made for a traced request is
// a client span of that trace, and the callee gets its traceparent.
func TestTransportPropagates(t *testing.T) {
	rec := withRecorder(t)
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Traceparent")
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	ctx, parent := Tracer().Start(context.Background(), "request")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/keys", nil)
	resp, err := (&http.Client{Transport: Transport(nil)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	parent.End()
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans ended, want 2", len(spans))
	}
	client := spans[0]
	if client.Name() != "GET "+strings.TrimPrefix(srv.URL, "http://") || client.SpanKind() != trace.SpanKindClient {
		t.Errorf("client span %q kind %v", client.Name(), client.SpanKind())
	}
	if client.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("the client span's parent is %v, want the request's span", client.Parent().SpanID())
	}
	want := "00-" + client.SpanContext().TraceID().String() + "-" + client.SpanContext().SpanID().String() + "-01"
	if got != want {
		t.Errorf("the callee got traceparent %q, want %q", got, want)
	}
	if client.Status().Code.String() != "Error" {
		t.Errorf("a 502 answer left the span's status %v", client.Status())
	}
}

type failingReconciler struct{}

func (failingReconciler) Reconcile(context.Context, reconcile.Request) (reconcile.Result, error) {
	return reconcile.Result{}, errors.New("boom")
}

func TestReconcilerSpans(t *testing.T) {
	rec := withRecorder(t)
	r := Reconciler("OAuthClient", failingReconciler{})
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: struct{ Namespace, Name string }{"shop", "web"}}); err == nil {
		t.Fatal("the error was lost")
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "reconcile OAuthClient" || spans[0].Status().Code.String() != "Error" {
		t.Fatalf("spans %v", spans)
	}
	attrs := map[string]string{}
	for _, a := range spans[0].Attributes() {
		attrs[string(a.Key)] = a.Value.AsString()
	}
	if attrs["k8s.namespace.name"] != "shop" || attrs["k8s.object.name"] != "web" {
		t.Errorf("attributes %v", attrs)
	}
}

// TestTransportNotSampled: a call made for a request the sampler did not
// sample makes no span, and the callee still gets the request's trace ID
// with the decision (flags 00), so that it does not sample on its own.
func TestTransportNotSampled(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.NeverSample()))
	SetTracer(tp.Tracer(ScopeName))
	t.Cleanup(func() { SetTracer(nil) })
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Traceparent") }))
	defer srv.Close()
	ctx, parent := Tracer().Start(context.Background(), "request")
	if parent.IsRecording() {
		t.Fatal("NeverSample recorded the request")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/keys", nil)
	resp, err := (&http.Client{Transport: Transport(nil)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	parent.End()
	if want := "00-" + parent.SpanContext().TraceID().String() + "-" + parent.SpanContext().SpanID().String() + "-00"; got != want {
		t.Errorf("the callee got traceparent %q, want %q", got, want)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded", n)
	}
}

// TestStartServer: a request's span continues the caller's traceparent
// with its tracestate, honours its sampled flag under a parent-based
// sampler that samples nothing of its own, and starts a trace of its own
// for a malformed traceparent.
func TestStartServer(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	const trace1, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, tc := range []struct {
		traceparent, tracestate string
		recorded, continued     bool
	}{
		{"00-" + trace1 + "-" + parent + "-01", "vendor=opaque", true, true},
		{"00-" + trace1 + "-" + parent + "-00", "", false, true},
		{"00-" + trace1 + "-" + parent + "-01-extra", "", false, false}, // version 00 has no more fields
		{"", "", false, false},
	} {
		h := http.Header{}
		if tc.traceparent != "" {
			h.Set("Traceparent", tc.traceparent)
		}
		if tc.tracestate != "" {
			h.Set("Tracestate", tc.tracestate)
		}
		_, span := StartServer(context.Background(), tp.Tracer(ScopeName), h, "GET")
		recording := span.IsRecording()
		span.End()
		sc := span.SpanContext()
		if recording != tc.recorded || (sc.TraceID().String() == trace1) != tc.continued {
			t.Errorf("traceparent %q: recording %v, trace %s; want recording %v, continued %v", tc.traceparent, recording, sc.TraceID(), tc.recorded, tc.continued)
		}
		if sc.TraceState().String() != tc.tracestate {
			t.Errorf("traceparent %q: tracestate %q, want %q", tc.traceparent, sc.TraceState().String(), tc.tracestate)
		}
	}
	if spans := rec.Ended(); len(spans) != 1 || spans[0].Parent().SpanID().String() != parent || !spans[0].Parent().IsRemote() {
		t.Errorf("recorded %d spans, want the sampled caller's child only", len(spans))
	}
}
