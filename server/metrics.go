package server

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics. Labels are bounded: the
// endpoint and grant come from fixed sets, the outcome is "success" or an
// RFC error code, never anything a client chose.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	security *prometheus.CounterVec
	// series caches the children observe uses, by seriesKey.
	series sync.Map
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "server", Name: "requests_total",
			Help: "Requests to the public endpoints by endpoint, grant type (token endpoint) and outcome (success or OAuth error code).",
		}, []string{"endpoint", "grant", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "server", Name: "request_duration_seconds",
			Help:    "Latency of the public endpoints.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"endpoint", "grant"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "server", Name: "login_attempts_total",
			Help: "Login attempts by outcome: success, invalid_credentials or throttled.",
		}, []string{"outcome"}),
		security: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "server", Name: "security_events_total",
			Help: "Security events to alert on, each also logged as \"security event\": code_replay, device_code_replay, refresh_token_reuse, login_throttled, client_authentication_failed, upstream_callback_rejected.",
		}, []string{"event"}),
	}
	for _, e := range securityEvents {
		m.security.WithLabelValues(e)
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.logins, m.security} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Process and Go runtime metrics, when the registry is ours alone.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m, nil
}

// observe counts a request. The children of each label combination are
// looked up once and kept: WithLabelValues hashes every label on each
// call, a measurable part of a token's cost. The labels are bounded (see
// metrics), so the cache is too.
func (m *metrics) observe(endpoint string, r result, start time.Time) {
	key := seriesKey{endpoint, r.grant, r.outcome}
	c, ok := m.series.Load(key)
	if !ok {
		c, _ = m.series.LoadOrStore(key, &series{
			requests: m.requests.WithLabelValues(endpoint, r.grant, r.outcome),
			latency:  m.latency.WithLabelValues(endpoint, r.grant),
		})
	}
	sr := c.(*series)
	sr.requests.Inc()
	sr.latency.Observe(time.Since(start).Seconds())
}

type seriesKey struct{ endpoint, grant, outcome string }

type series struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func promHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
