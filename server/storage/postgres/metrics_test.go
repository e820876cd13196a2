package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/server/storage"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

// errorCounts gathers gatehouse_server_postgres_errors_total by reason.
func errorCounts(t *testing.T, s *postgres.Store) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_server_postgres_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return counts
}

// TestErrorMetrics makes a real database fail in the ways the PostgreSQL
// alert watches, and reads the counter the token server exports.
func TestErrorMetrics(t *testing.T) {
	ctx := context.Background()
	session := storage.Session{Hash: "h", ID: "sid-h", Subject: "alice", ExpiresAt: t0()}

	t.Run("a healthy store counts nothing, and a miss is no error", func(t *testing.T) {
		s := open(t, testpg.Get(t).NewDatabase(t))
		if err := s.CreateSession(ctx, session); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSession(ctx, "missing", t0().Add(-1)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetSession(missing) = %v, want ErrNotFound", err)
		}
		counts := errorCounts(t, s)
		for _, reason := range []string{"connection", "timeout", "canceled", "conflict", "unavailable", "other"} {
			if v, ok := counts[reason]; !ok || v != 0 {
				t.Errorf("errors{reason=%q} = %v (present %v), want 0", reason, v, ok)
			}
		}
	})

	t.Run("a request that ended is counted as canceled", func(t *testing.T) {
		s := open(t, testpg.Get(t).NewDatabase(t))
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.GetSession(canceled, "h", t0().Add(-1)); err == nil {
			t.Fatal("GetSession with a canceled context succeeded")
		}
		if c := errorCounts(t, s); c["canceled"] < 1 || c["connection"] != 0 {
			t.Errorf("counts %v, want a canceled error only", c)
		}
	})

	t.Run("a missing table is counted as other", func(t *testing.T) {
		u := testpg.Get(t).NewDatabase(t)
		s := open(t, u)
		if _, err := connect(t, u).Exec(ctx, "DROP TABLE sessions"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSession(ctx, session); err == nil {
			t.Fatal("CreateSession without its table succeeded")
		}
		if c := errorCounts(t, s); c["other"] < 1 {
			t.Errorf("counts %v, want an other error", c)
		}
	})

	t.Run("a database that ends every connection and refuses new ones", func(t *testing.T) {
		u := testpg.Get(t).NewDatabase(t)
		s := open(t, u)
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		db := strings.TrimPrefix(parsed.Path, "/")
		parsed.Path = "/postgres"
		admin := connect(t, parsed.String())
		for _, sql := range []string{
			"ALTER DATABASE " + db + " ALLOW_CONNECTIONS false",
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db + "'",
		} {
			if _, err := admin.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
		failed := 0
		for range 3 {
			if err := s.CreateSession(ctx, session); err != nil {
				failed++
				// The server answers 503 + Retry-After for these, not 500.
				if !errors.Is(err, storage.ErrUnavailable) {
					t.Errorf("a write to a database that refuses connections: %v, want storage.ErrUnavailable", err)
				}
			}
		}
		if failed == 0 {
			t.Fatal("every write succeeded on a database that refuses connections")
		}
		c := errorCounts(t, s)
		if c["connection"]+c["unavailable"] < float64(failed) {
			t.Errorf("counts %v after %d failed writes, want them as connection or unavailable errors", c, failed)
		}
		if c["other"] != 0 || c["canceled"] != 0 {
			t.Errorf("counts %v: a lost database is not an other or canceled error", c)
		}
	})
}
