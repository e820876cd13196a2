package server

import (
	"crypto/x509"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// metrics are the server's Prometheus metrics. Labels are bounded: the
// endpoint and grant come from fixed sets, the outcome is "success" or an
// RFC error code, never anything a client chose.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	security *prometheus.CounterVec
	// Back-channel logout (backchannel.go).
	backchannelAttempts *prometheus.CounterVec
	backchannelLogouts  *prometheus.CounterVec
	backchannelDelay    prometheus.Histogram
	backchannelInflight prometheus.Gauge
	// Upstream re-checks at refresh (recheck.go).
	rechecks *prometheus.CounterVec
	// series caches the children observe uses, by seriesKey.
	series sync.Map
}

// newMetrics registers the server's metrics with reg: the request
// counters, the state gauges (stateCollector) and, when the store exports
// metrics of its own (PostgreSQL's error counter), the store's.
func newMetrics(reg prometheus.Registerer, state *stateCollector, store any) (*metrics, error) {
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
			Help: "Login attempts by outcome: success, invalid_credentials, throttled, unavailable or denied (a login rule refused the person).",
		}, []string{"outcome"}),
		security: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "server", Name: "security_events_total",
			Help: "Security events to alert on, each also logged as \"security event\": code_replay, device_code_replay, refresh_token_reuse, login_throttled, device_authorization_throttled, client_authentication_failed, upstream_callback_rejected, client_assertion_replay, login_denied.",
		}, []string{"event"}),
	}
	m.backchannelAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "server", Name: "backchannel_logout_attempts_total",
		Help: "Attempts to deliver a logout token to a relying party's back-channel logout URI, by result: success (2xx), http_4xx, http_5xx, timeout, connection, signing_failed.",
	}, []string{"result"})
	m.backchannelLogouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "server", Name: "backchannel_logouts_total",
		Help: "Logout tokens finished with, by outcome: delivered, abandoned (every retry failed; a Warning Event BackchannelLogoutFailed names the OAuthClient) or dropped (the client was deleted or no longer has a back-channel logout URI).",
	}, []string{"outcome"})
	m.backchannelDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "gatehouse", Subsystem: "server", Name: "backchannel_logout_delay_seconds",
		Help:    "Time from a session's end to the delivery of its logout token, retries included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
	})
	m.backchannelInflight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "server", Name: "backchannel_logout_inflight",
		Help: "Logout-token deliveries this replica is making now.",
	})
	m.rechecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "server", Name: "upstream_rechecks_total",
		Help: "Refreshes of identity providers' people that were due a re-check, by provider and result: allowed (the provider said yes), refused (it said no: the person's sessions and grants end), grace (it could not be asked; its last answer stands), unavailable (it could not be asked, past the grace period: the refresh is refused), skipped (nothing to ask with).",
	}, []string{"provider", "result"})
	for _, r := range backchannelResults {
		m.backchannelAttempts.WithLabelValues(r)
	}
	for _, o := range backchannelOutcomes {
		m.backchannelLogouts.WithLabelValues(o)
	}
	for _, e := range securityEvents {
		m.security.WithLabelValues(e)
	}
	// Every outcome exists at zero from the start, so that the first
	// failure already shows in rate() and increase().
	for _, o := range loginOutcomes {
		m.logins.WithLabelValues(o)
	}
	cs := []prometheus.Collector{m.requests, m.latency, m.logins, m.security, state,
		m.backchannelAttempts, m.backchannelLogouts, m.backchannelDelay, m.backchannelInflight, m.rechecks}
	if c, ok := store.(prometheus.Collector); ok {
		cs = append(cs, c)
	}
	for _, c := range cs {
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

// backchannelResults and backchannelOutcomes are the label values of
// backchannel_logout_attempts_total and backchannel_logouts_total.
var (
	backchannelResults  = []string{outcomeSuccess, "http_4xx", "http_5xx", "timeout", "connection", "signing_failed"}
	backchannelOutcomes = []string{"delivered", "abandoned", "dropped"}
)

// loginOutcomes are the values of login_attempts_total's outcome label.
var loginOutcomes = []string{outcomeSuccess, "invalid_credentials", "throttled", "unavailable", loginDenied}

type seriesKey struct{ endpoint, grant, outcome string }

type series struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func promHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// Gauges read from the served snapshot and the process's state at scrape
// time, for the alerts on signing keys, configuration freshness and the
// TLS certificate (docs/operations.md, "Alerts"). Computed per scrape, not
// on a request path.
var (
	signingKeysDesc = prometheus.NewDesc("gatehouse_server_signing_keys",
		"Keys in the served key set by algorithm and state: active (signs now), next (published, signs later), retired (published, no longer signs).",
		[]string{"algorithm", "state"}, nil)
	keyActivatedDesc = prometheus.NewDesc("gatehouse_server_signing_key_activated_timestamp_seconds",
		"Unix time at which the key that signs now with this algorithm started signing.",
		[]string{"algorithm"}, nil)
	keyRotationDesc = prometheus.NewDesc("gatehouse_server_signing_key_rotation_timestamp_seconds",
		"Unix time at which the key that signs now is due to be replaced: its published successor's activation time, else its activation time plus spec.signing.rotationInterval.",
		[]string{"algorithm"}, nil)
	keySuccessorDesc = prometheus.NewDesc("gatehouse_server_signing_key_successor_published",
		"1 when the key that signs now has a published successor (a key that takes over later), else 0.",
		[]string{"algorithm"}, nil)
	prepublishDesc = prometheus.NewDesc("gatehouse_server_signing_key_prepublish_period_seconds",
		"spec.signing.prepublishPeriod: how long before it signs a successor key is published.",
		nil, nil)
	configVerifiedDesc = prometheus.NewDesc("gatehouse_server_config_verified_timestamp_seconds",
		"Unix time at which the server last confirmed against the API server that the configuration it serves is current; 0 before the first confirmation.",
		nil, nil)
	tlsExpiryDesc = prometheus.NewDesc("gatehouse_server_tls_certificate_expiry_timestamp_seconds",
		"Unix time at which the certificate the public port serves expires (its NotAfter); absent without --tls-cert-file.",
		nil, nil)
)

// verifiedSource is a Source that confirms its snapshot against the API
// server (config.Kube).
type verifiedSource interface {
	VerifiedAt() time.Time
}

// stateCollector exports the gauges above.
type stateCollector struct {
	src config.Source
	now func() time.Time
	// tlsLeaf returns the served certificate; nil without TLS.
	tlsLeaf func() *x509.Certificate
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{signingKeysDesc, keyActivatedDesc, keyRotationDesc, keySuccessorDesc, prepublishDesc} {
		ch <- d
	}
	if _, ok := c.src.(verifiedSource); ok {
		ch <- configVerifiedDesc
	}
	if c.tlsLeaf != nil {
		ch <- tlsExpiryDesc
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if v, ok := c.src.(verifiedSource); ok {
		ch <- prometheus.MustNewConstMetric(configVerifiedDesc, prometheus.GaugeValue, unixSeconds(v.VerifiedAt()))
	}
	if c.tlsLeaf != nil {
		if leaf := c.tlsLeaf(); leaf != nil {
			ch <- prometheus.MustNewConstMetric(tlsExpiryDesc, prometheus.GaugeValue, unixSeconds(leaf.NotAfter))
		}
	}
	snap := c.src.Current()
	if snap == nil || snap.Keys == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(prepublishDesc, prometheus.GaugeValue, snap.PrepublishPeriod.Seconds())
	for _, ks := range keySchedules(snap.Keys, c.now(), snap.RotationInterval) {
		for _, st := range []keyset.State{keyset.StateActive, keyset.StateNext, keyset.StateRetired} {
			ch <- prometheus.MustNewConstMetric(signingKeysDesc, prometheus.GaugeValue, float64(ks.count[st]), ks.algorithm, string(st))
		}
		if ks.activated.IsZero() {
			continue
		}
		successor := 0.0
		if ks.successor {
			successor = 1
		}
		ch <- prometheus.MustNewConstMetric(keyActivatedDesc, prometheus.GaugeValue, unixSeconds(ks.activated), ks.algorithm)
		ch <- prometheus.MustNewConstMetric(keySuccessorDesc, prometheus.GaugeValue, successor, ks.algorithm)
		if !ks.rotation.IsZero() {
			ch <- prometheus.MustNewConstMetric(keyRotationDesc, prometheus.GaugeValue, unixSeconds(ks.rotation), ks.algorithm)
		}
	}
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// keySchedule is one algorithm's keys as the server sees them at a moment.
type keySchedule struct {
	algorithm string
	// count is the keys by effective state: a next key whose time has
	// come signs (KeyFor picks it before the operator promotes it), and
	// a key it superseded no longer does.
	count map[keyset.State]int
	// activated is when the signing key started signing; zero when no
	// key of the algorithm signs.
	activated time.Time
	// successor: a key that takes over from the signing one is published.
	successor bool
	// rotation is when the signing key is due to be replaced.
	rotation time.Time
}

// keySchedules describes every algorithm of the set at now, sorted by
// algorithm. The access-token algorithm's successor may be a key of
// another algorithm: after spec.signing.algorithm changes, the new
// algorithm's first key takes over from it.
func keySchedules(set *keyset.Set, now time.Time, interval time.Duration) []keySchedule {
	var out []keySchedule
	signing := map[string]*keyset.Key{}
	for _, alg := range algorithmsOf(set) {
		ks := keySchedule{algorithm: alg, count: map[keyset.State]int{}}
		k, ok := set.KeyFor(alg, now)
		if ok {
			signing[alg] = k
			ks.activated = k.ActivatesAt
		}
		for i := range set.Keys {
			key := &set.Keys[i]
			if key.Algorithm != alg {
				continue
			}
			switch {
			case key.State == keyset.StateRetired:
				ks.count[keyset.StateRetired]++
			case key.ActivatesAt.After(now):
				ks.count[keyset.StateNext]++
			case key == k:
				ks.count[keyset.StateActive]++
			default:
				ks.count[keyset.StateRetired]++
			}
		}
		out = append(out, ks)
	}
	for i := range out {
		ks := &out[i]
		if ks.activated.IsZero() {
			continue
		}
		next, ok := successorOf(set, ks.algorithm, now, signing)
		ks.successor = ok
		switch {
		case ok:
			ks.rotation = next
		case interval > 0:
			ks.rotation = ks.activated.Add(interval)
		}
	}
	return out
}

// successorOf returns when the earliest published key that takes over from
// alg's signing key activates: a later key of alg, or, for the access-token
// algorithm, a later key of an algorithm that signs nothing yet.
func successorOf(set *keyset.Set, alg string, now time.Time, signing map[string]*keyset.Key) (time.Time, bool) {
	var at time.Time
	for _, k := range set.Keys {
		if k.State == keyset.StateRetired || !k.ActivatesAt.After(now) {
			continue
		}
		newLineage := alg == set.AccessTokenAlgorithm && signing[k.Algorithm] == nil
		if (k.Algorithm == alg || newLineage) && (at.IsZero() || k.ActivatesAt.Before(at)) {
			at = k.ActivatesAt
		}
	}
	return at, !at.IsZero()
}

// algorithmsOf lists, sorted, the algorithms of every key in the set.
func algorithmsOf(set *keyset.Set) []string {
	var algs []string
	for _, k := range set.Keys {
		if !slices.Contains(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	slices.Sort(algs)
	return algs
}

// KeyFetchCounter registers gatehouse_server_key_fetches_total on reg and
// returns the jwtverify.RemoteOptions.OnFetch that counts into it: every
// fetch of the JWK Sets the server verifies client assertions with (the
// cluster's service-account issuer, clients' jwksURI, trusted issuers) by
// kind of set and outcome. None of them happens on a request path; after
// warm-up they follow only each set's Cache-Control and unknown kids.
func KeyFetchCounter(reg prometheus.Registerer) (func(name string, err error), error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "server", Name: "key_fetches_total",
		Help: "Fetches of the JWK Sets client assertions are verified with, by key_set (kubernetes, client, trusted_issuer) and outcome (success, error).",
	}, []string{"key_set", "outcome"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	for _, set := range []string{"kubernetes", "client", "trusted_issuer"} {
		c.WithLabelValues(set, "success")
		c.WithLabelValues(set, "error")
	}
	return func(name string, err error) {
		set := "kubernetes"
		switch {
		case strings.HasPrefix(name, "client "):
			set = "client"
		case strings.HasPrefix(name, "trusted issuer "):
			set = "trusted_issuer"
		}
		outcome := "success"
		if err != nil {
			outcome = "error"
		}
		c.WithLabelValues(set, outcome).Inc()
	}, nil
}
