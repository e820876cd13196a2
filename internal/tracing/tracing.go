// Package tracing is Gatehouse's OpenTelemetry tracing: off unless the
// standard OTEL_* environment variables ask for it, then spans exported
// over OTLP/HTTP and W3C traceparent propagated in and out.
//
// It is on when OTEL_TRACES_EXPORTER is otlp, or when an OTLP endpoint is
// set (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none keep it off. The
// exporter reads the rest (headers, timeout, certificates, compression) and
// the SDK the sampler (OTEL_TRACES_SAMPLER, default parentbased_always_on,
// and OTEL_TRACES_SAMPLER_ARG), the service name and the resource
// attributes, all as the OpenTelemetry specification defines them.
//
// With tracing off nothing is set up: Enabled is false, Tracer returns nil
// and callers skip their span code, so the request path pays one branch.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of Gatehouse's spans.
const ScopeName = "github.com/gatehouse-dev/gatehouse"

var tracer atomic.Pointer[trace.Tracer]

// Propagator is the W3C Trace Context propagator, in and out.
var Propagator = propagation.TraceContext{}

// Wanted reports whether the environment asks for tracing, and why not
// when it does not.
func Wanted(getenv func(string) string) (bool, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false, nil
	}
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return false, nil
	case "otlp":
		return checkProtocol(getenv)
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return false, nil
		}
		return checkProtocol(getenv)
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: Gatehouse exports traces over otlp (or none)", exp)
	}
}

func checkProtocol(getenv func(string) string) (bool, error) {
	p := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if p == "" {
		p = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if p != "" && p != "http/protobuf" {
		return false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: Gatehouse sends OTLP over http/protobuf (a collector's port 4318)", p)
	}
	return true, nil
}

// Setup starts tracing for the named service (the default
// service.name; OTEL_SERVICE_NAME overrides it) if the environment asks
// for it. Shutdown exports what is pending; it is a no-op when tracing is
// off.
func Setup(ctx context.Context, service, version string) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	on, err := Wanted(os.Getenv)
	if err != nil || !on {
		return noop, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return noop, fmt.Errorf("the OTLP trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", service), attribute.String("service.version", version)))
	if err == nil {
		// The environment's service name and attributes win.
		res, err = resource.Merge(res, resource.Environment())
	}
	if err != nil {
		return noop, fmt.Errorf("the trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator)
	t := tp.Tracer(ScopeName)
	tracer.Store(&t)
	return func(ctx context.Context) error {
		tracer.Store(nil)
		return tp.Shutdown(ctx)
	}, nil
}

// Enabled reports whether tracing is on.
func Enabled() bool { return tracer.Load() != nil }

// Tracer is Gatehouse's tracer, nil when tracing is off.
func Tracer() trace.Tracer {
	if t := tracer.Load(); t != nil {
		return *t
	}
	return nil
}

// SetTracer sets the tracer, for tests that bring their own provider; nil
// turns tracing off.
func SetTracer(t trace.Tracer) {
	if t == nil {
		tracer.Store(nil)
		return
	}
	tracer.Store(&t)
}

// Start starts a span when tracing is on; with it off it returns ctx and
// a nil span, which End and Fail accept. It is for spans that may begin a
// trace (a reconcile); work done for a request uses Child.
func Start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	t := Tracer()
	if t == nil {
		return ctx, nil
	}
	return t.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// Child starts a span of kind as a child of the span in ctx, only when
// that span is being recorded: the sampling decision is taken once, where
// the trace enters Gatehouse (a request, a reconcile), and a request that
// was not sampled pays no span for its storage calls and statements. It
// returns ctx and a nil span otherwise (tracing off, no span in ctx, or a
// span not recorded). Attributes are for the caller to set on a non-nil
// span, so that nothing is built for a request that is not recorded.
func Child(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	t := Tracer()
	if t == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	return t.Start(ctx, name, spanKinds[kind]...)
}

// spanKinds are the start options of each span kind, built once: an
// option built per call is an allocation per span.
var spanKinds = func() map[trace.SpanKind][]trace.SpanStartOption {
	m := map[trace.SpanKind][]trace.SpanStartOption{}
	for _, k := range []trace.SpanKind{trace.SpanKindUnspecified, trace.SpanKindInternal, trace.SpanKindServer,
		trace.SpanKindClient, trace.SpanKindProducer, trace.SpanKindConsumer} {
		m[k] = []trace.SpanStartOption{trace.WithSpanKind(k)}
	}
	return m
}()

// serverSpan are the start options of a server span.
var serverSpan = spanKinds[trace.SpanKindServer]

// StartServer starts the server span of an incoming request, named name:
// a child of the caller's span when the request carries a W3C
// traceparent (the sampler honours the caller's decision), else a new
// trace. Nothing is extracted when there is no traceparent header, and
// the span has no attributes yet: the caller sets them when the span is
// recorded (span.IsRecording()), so a request that is not sampled costs
// the span and its context only.
func StartServer(ctx context.Context, t trace.Tracer, h http.Header, name string) (context.Context, trace.Span) {
	if _, ok := h["Traceparent"]; ok {
		ctx = Propagator.Extract(ctx, canonicalCarrier(h))
	}
	return t.Start(ctx, name, serverSpan...)
}

// canonicalCarrier reads the W3C headers of an incoming request under
// their canonical keys: propagation.HeaderCarrier canonicalizes the
// propagator's lower-case names, an allocation per header per request.
type canonicalCarrier http.Header

func (c canonicalCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		key = "Traceparent"
	case "tracestate":
		key = "Tracestate"
	default:
		key = http.CanonicalHeaderKey(key)
	}
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c canonicalCarrier) Set(key, value string) { http.Header(c).Set(key, value) }

func (c canonicalCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }

// End ends span, marking it failed with err if err is not nil.
func End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Transport wraps rt (http.DefaultTransport when nil) so that each
// request is a client span whose traceparent the request carries, when
// tracing is on at the time of the call; with it off rt is used as it is.
// The span is named by method and host ("GET 10.0.0.1:443"), the path
// being an attribute (url.path): paths name objects (an operator's API
// calls name every client), and span names are kept few. A call made for
// a request that is not sampled makes no span and sends the request's
// trace and decision.
func Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return transport{next: rt}
}

type transport struct{ next http.RoundTripper }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tr := Tracer()
	if tr == nil {
		return t.next.RoundTrip(req)
	}
	if parent := trace.SpanFromContext(req.Context()); parent.SpanContext().IsValid() && !parent.IsRecording() {
		// A call for a request not sampled: the callee gets the trace and
		// the decision, and no span is made.
		req = req.Clone(req.Context())
		Propagator.Inject(req.Context(), propagation.HeaderCarrier(req.Header))
		return t.next.RoundTrip(req)
	}
	ctx, span := tr.Start(req.Context(), req.Method+" "+req.URL.Host, spanKinds[trace.SpanKindClient]...)
	defer span.End()
	req = req.Clone(ctx)
	Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	span.SetAttributes(attribute.String("http.request.method", req.Method),
		attribute.String("server.address", req.URL.Hostname()), attribute.String("url.path", req.URL.Path))
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, nil
}
