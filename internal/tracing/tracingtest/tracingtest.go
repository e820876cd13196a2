// Package tracingtest turns Gatehouse's tracing on for a test, with an
// in-memory recorder of the spans that end.
package tracingtest

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

// Record turns tracing on with sampler (parentbased_always_on when nil)
// until the test ends, and returns the recorder of its spans.
func Record(t testing.TB, sampler sdktrace.Sampler) *tracetest.SpanRecorder {
	t.Helper()
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sampler))
	tracing.SetTracer(tp.Tracer(tracing.ScopeName))
	t.Cleanup(func() { tracing.SetTracer(nil); _ = tp.Shutdown(context.Background()) })
	return rec
}

// Names are the names of spans, in the order they ended.
func Names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, 0, len(spans))
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

// Children are the spans whose parent is parent.
func Children(spans []sdktrace.ReadOnlySpan, parent trace.SpanContext) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Parent().SpanID() == parent.SpanID() && s.Parent().TraceID() == parent.TraceID() {
			out = append(out, s)
		}
	}
	return out
}

// Attr is the string value of the span's attribute key, "" when it has
// none.
func Attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}
