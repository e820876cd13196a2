package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Reconciler traces next's reconciles: each is a span "reconcile <kind>"
// with the object's namespace and name, failed when the reconcile
// returns an error; the API calls it makes are its children when the
// client's transport is Transport.
func Reconciler(kind string, next reconcile.Reconciler) reconcile.Reconciler {
	return reconciler{name: "reconcile " + kind, kind: kind, next: next}
}

type reconciler struct {
	name, kind string
	next       reconcile.Reconciler
}

func (r reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ctx, span := Start(ctx, r.name, trace.SpanKindInternal, attribute.String("k8s.resource.kind", r.kind),
		attribute.String("k8s.namespace.name", req.Namespace), attribute.String("k8s.object.name", req.Name))
	res, err := r.next.Reconcile(ctx, req)
	End(span, err)
	return res, err
}
