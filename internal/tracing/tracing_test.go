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
	if client.Name() != "GET "+strings.TrimPrefix(srv.URL, "http://")+"/keys" || client.SpanKind() != trace.SpanKindClient {
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
