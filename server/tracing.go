package server

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

// serveTraced answers a request in a server span that continues the
// caller's trace (its W3C traceparent) or starts one. The span is named
// after the endpoint once the route is known ("POST token"), never the
// raw path, so unknown paths do not make new span names. Storage calls
// and outgoing calls made for the request are its children (the request's
// context carries it), and its trace ID is the audit line's.
//
// The sampler decides here, once per request. A request it does not
// sample (99 % of them at 1 %) pays for the span and its context only:
// no attributes, no status-recording writer, no child spans below it
// (tracing.Child); its trace ID and decision still go out with outgoing
// calls (tracing.Transport).
func (s *Server) serveTraced(t trace.Tracer, w http.ResponseWriter, r *http.Request) {
	ctx, span := tracing.StartServer(r.Context(), t, r.Header, r.Method)
	if !span.IsRecording() {
		s.serve(ctx, w, r)
		span.End()
		return
	}
	defer span.End()
	span.SetAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path))
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	endpoint, res := s.serve(ctx, sw, r)
	span.SetName(r.Method + " " + endpoint)
	span.SetAttributes(attribute.String("gatehouse.endpoint", endpoint), attribute.String("gatehouse.outcome", res.outcome),
		attribute.Int("http.response.status_code", sw.status))
	if sw.status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, res.outcome)
	}
}

// requestTraceID is the trace ID for the request's audit line: its span's
// when tracing is on (the caller's trace, or the one the span started),
// else the caller's traceparent's. ctx is the request's context with its
// span.
func requestTraceID(ctx context.Context, r *http.Request) [16]byte {
	if tracing.Enabled() {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			return sc.TraceID()
		}
	}
	id, _ := audit.ParseTraceParent(r.Header.Get("Traceparent"))
	return id
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
