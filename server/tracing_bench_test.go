package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

// BenchmarkTokenClientCredentialsObservability is the CPU a
// client_credentials token costs with the audit log and tracing off, the
// audit log on (lines formatted and written, to io.Discard), and tracing
// on as well at 1 % and 100 % sampling (parentbased_traceidratio, the
// SDK's batch processor, an exporter that drops the batches: what is
// measured is the request path's share, not the network's). Compare the
// cpu-ns/op of the sub-benchmarks (BENCHMARKS.md, "Audit log and
// tracing").
func BenchmarkTokenClientCredentialsObservability(b *testing.B) {
	for _, c := range []struct {
		name   string
		audit  bool
		sample float64 // <0: tracing off
	}{
		{"off", false, -1}, {"audit", true, -1}, {"audit+tracing-1pct", true, 0.01}, {"audit+tracing-100pct", true, 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			var opts func(*Options)
			if c.audit {
				l, err := audit.Open(audit.Stdout, io.Discard, nil, audit.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = l.Close() })
				opts = func(o *Options) { o.Audit = l }
			}
			if c.sample >= 0 {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
					sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.sample))))
				tracing.SetTracer(tp.Tracer(tracing.ScopeName))
				b.Cleanup(func() { tracing.SetTracer(nil); _ = tp.Shutdown(b.Context()) })
			}
			srv := newTestServerWith(b, opts).srv
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b, processCPU())
			for range b.N {
				r := newTokenHTTPRequest("grant_type=client_credentials&scope=orders%3Aread", ccClientID, ccSecret)
				w := &discard{h: http.Header{}}
				srv.ServeHTTP(w, r)
				if w.status != 0 && w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// BenchmarkTracingEdge is what tracing adds to any request, on the
// cheapest one (the JWKS document, about a microsecond): off, on but the
// request not sampled (the sampler's decision, and the caller's
// traceparent with flags 00), and sampled. The difference between "off"
// and "not-sampled" in ns/op is what each of the 99 % of requests not
// sampled at 1 % pays, whatever the endpoint.
func BenchmarkTracingEdge(b *testing.B) {
	never := sdktrace.ParentBased(sdktrace.NeverSample())
	for _, c := range []struct {
		name        string
		sampler     sdktrace.Sampler // nil: tracing off
		traceparent string
	}{
		{"off", nil, ""},
		{"not-sampled", never, ""},
		{"not-sampled-traceparent", never, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
		{"sampled", sdktrace.AlwaysSample(), ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.sampler != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithSampler(c.sampler))
				tracing.SetTracer(tp.Tracer(tracing.ScopeName))
				b.Cleanup(func() { tracing.SetTracer(nil); _ = tp.Shutdown(b.Context()) })
			}
			srv := newTestServerWith(b, nil).srv
			r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+endpoints.JWKSPath, nil)
			if c.traceparent != "" {
				r.Header.Set("Traceparent", c.traceparent)
			}
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				srv.ServeHTTP(w, r)
			}
			if w.status != 0 && w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		})
	}
}
