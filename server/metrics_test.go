package server

import (
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// keyAt is a key of alg in state st that signs from activates.
func keyAt(t *testing.T, alg string, st keyset.State, activates time.Time) keyset.Key {
	t.Helper()
	k := activeKey(t, alg, activates)
	k.State = st
	return k
}

func TestKeySchedules(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	const interval = 720 * time.Hour
	day := 24 * time.Hour
	type want struct {
		alg                  string
		active, next, retire int
		activated, rotation  time.Time
		successor            bool
	}
	for _, tc := range []struct {
		name string
		set  func() *keyset.Set
		want []want
	}{{
		name: "one active key: due one interval after it started",
		set: func() *keyset.Set {
			return &keyset.Set{Keys: []keyset.Key{keyAt(t, keyset.ES256, keyset.StateActive, now.Add(-10*day))}}
		},
		want: []want{{alg: "ES256", active: 1, activated: now.Add(-10 * day), rotation: now.Add(-10*day + interval)}},
	}, {
		name: "a published successor sets the rotation time",
		set: func() *keyset.Set {
			return &keyset.Set{AccessTokenAlgorithm: keyset.ES256, Keys: []keyset.Key{
				keyAt(t, keyset.ES256, keyset.StateActive, now.Add(-29*day)),
				keyAt(t, keyset.ES256, keyset.StateNext, now.Add(12*time.Hour)),
				keyAt(t, keyset.ES256, keyset.StateRetired, now.Add(-59*day)),
			}}
		},
		want: []want{{alg: "ES256", active: 1, next: 1, retire: 1, activated: now.Add(-29 * day), rotation: now.Add(12 * time.Hour), successor: true}},
	}, {
		name: "a next key whose time has come signs before the operator promotes it",
		set: func() *keyset.Set {
			return &keyset.Set{Keys: []keyset.Key{
				keyAt(t, keyset.ES256, keyset.StateActive, now.Add(-31*day)),
				keyAt(t, keyset.ES256, keyset.StateNext, now.Add(-time.Hour)),
			}}
		},
		want: []want{{alg: "ES256", active: 1, retire: 1, activated: now.Add(-time.Hour), rotation: now.Add(-time.Hour + interval)}},
	}, {
		name: "overdue: no successor long after the interval",
		set: func() *keyset.Set {
			return &keyset.Set{Keys: []keyset.Key{keyAt(t, keyset.ES256, keyset.StateActive, now.Add(-40*day))}}
		},
		want: []want{{alg: "ES256", active: 1, activated: now.Add(-40 * day), rotation: now.Add(-40*day + interval)}},
	}, {
		name: "an algorithm change: the new algorithm's first key succeeds the access-token key",
		set: func() *keyset.Set {
			return &keyset.Set{AccessTokenAlgorithm: keyset.ES256, Keys: []keyset.Key{
				keyAt(t, keyset.ES256, keyset.StateActive, now.Add(-3*day)),
				keyAt(t, keyset.RS256, keyset.StateNext, now.Add(day)),
			}}
		},
		want: []want{
			{alg: "ES256", active: 1, activated: now.Add(-3 * day), rotation: now.Add(day), successor: true},
			{alg: "RS256", next: 1},
		},
	}, {
		name: "an ID-token lineage has a schedule of its own",
		set: func() *keyset.Set {
			return &keyset.Set{AccessTokenAlgorithm: keyset.ES256, Keys: []keyset.Key{
				keyAt(t, keyset.ES256, keyset.StateActive, now.Add(-3*day)),
				keyAt(t, keyset.RS256, keyset.StateActive, now.Add(-5*day)),
				keyAt(t, keyset.ES256, keyset.StateNext, now.Add(day)),
			}}
		},
		want: []want{
			{alg: "ES256", active: 1, next: 1, activated: now.Add(-3 * day), rotation: now.Add(day), successor: true},
			{alg: "RS256", active: 1, activated: now.Add(-5 * day), rotation: now.Add(-5*day + interval)},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := keySchedules(tc.set(), now, interval)
			if len(got) != len(tc.want) {
				t.Fatalf("%d schedules, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.algorithm != w.alg || g.count[keyset.StateActive] != w.active || g.count[keyset.StateNext] != w.next ||
					g.count[keyset.StateRetired] != w.retire || !g.activated.Equal(w.activated) || !g.rotation.Equal(w.rotation) ||
					g.successor != w.successor {
					t.Errorf("schedule %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// fakeVerified is a Source that reports when it was last confirmed.
type fakeVerified struct {
	*config.Static
	at time.Time
}

func (f fakeVerified) VerifiedAt() time.Time { return f.at }

// TestStateMetrics reads the state gauges from /metrics: what the alerts
// on keys, configuration freshness and the TLS certificate evaluate.
func TestStateMetrics(t *testing.T) {
	verified := time.Date(2026, 12, 7, 11, 59, 30, 0, time.UTC)
	notAfter := time.Date(2027, 3, 7, 0, 0, 0, 0, time.UTC)
	var src fakeVerified
	ts := newTestServerWith(t, func(o *Options) {
		src = fakeVerified{Static: o.Source.(*config.Static), at: verified}
		o.Source = src
		o.TLSCertificate = func() *x509.Certificate { return &x509.Certificate{NotAfter: notAfter} }
	})
	snap := ts.snap()
	snap.RotationInterval = 720 * time.Hour
	k, _ := snap.Keys.SigningKey(ts.clock.Now())
	body := scrape(t, ts)
	for _, line := range []string{
		fmt.Sprintf("gatehouse_server_config_verified_timestamp_seconds %s", promFloat(float64(verified.Unix()))),
		fmt.Sprintf("gatehouse_server_tls_certificate_expiry_timestamp_seconds %s", promFloat(float64(notAfter.Unix()))),
		`gatehouse_server_signing_keys{algorithm="ES256",state="active"} 1`,
		`gatehouse_server_signing_keys{algorithm="ES256",state="next"} 0`,
		`gatehouse_server_signing_key_successor_published{algorithm="ES256"} 0`,
		fmt.Sprintf(`gatehouse_server_signing_key_activated_timestamp_seconds{algorithm="ES256"} %s`, promFloat(unixSeconds(k.ActivatesAt))),
		fmt.Sprintf(`gatehouse_server_signing_key_rotation_timestamp_seconds{algorithm="ES256"} %s`, promFloat(unixSeconds(k.ActivatesAt.Add(720*time.Hour)))),
		"gatehouse_server_signing_key_prepublish_period_seconds 86400",
		`gatehouse_server_login_attempts_total{outcome="invalid_credentials"} 0`,
		`gatehouse_server_security_events_total{event="code_replay"} 0`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	// A server without TLS and a source that is not confirmed against an
	// API server export neither gauge.
	plain := newTestServer(t)
	body = scrape(t, plain)
	for _, name := range []string{"gatehouse_server_tls_certificate_expiry_timestamp_seconds", "gatehouse_server_config_verified_timestamp_seconds"} {
		if strings.Contains(body, name) {
			t.Errorf("metrics have %s", name)
		}
	}
}

func scrape(t *testing.T, ts *testServer) string {
	t.Helper()
	resp, err := http.Get(httptestServer(t, ts.srv.OpsHandler()) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// promFloat formats v as the text exposition format does.
func promFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
