// Package operatormetrics holds the gatehouse_* Prometheus counters the
// operator exports next to controller-runtime's own metrics. They are
// registered with controller-runtime's registry, so the manager's metrics
// endpoint serves them without extra wiring.
package operatormetrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// KeysRotated counts signing keys that took over signing from an
	// earlier key (a bootstrap key does not count).
	KeysRotated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_signing_keys_rotated_total",
		Help: "Signing keys that took over from an earlier key.",
	})
	// ClientSecrets counts client-secret life-cycle events by what happened:
	// generated, adopted or rotated. It never carries a secret or a client
	// name, so its cardinality stays fixed.
	ClientSecrets = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_client_secrets_total",
		Help: "Client secrets generated, adopted or rotated by the operator.",
	}, []string{"event"})
	// ReconcileErrors counts reconciles that ended in an error or in a
	// condition a user must act on, by kind and condition reason.
	ReconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_reconcile_errors_total",
		Help: "Reconciles that failed or found a problem, by kind and reason.",
	}, []string{"kind", "reason"})
)

// Values of ClientSecrets' event label.
const (
	SecretGenerated = "generated"
	SecretAdopted   = "adopted"
	SecretRotated   = "rotated"
)

func init() {
	metrics.Registry.MustRegister(KeysRotated, ClientSecrets, ReconcileErrors)
	// Every event exists at zero from the start, so that the first secret
	// generated already shows in increase() and rate().
	for _, e := range []string{SecretGenerated, SecretAdopted, SecretRotated} {
		ClientSecrets.WithLabelValues(e)
	}
}
