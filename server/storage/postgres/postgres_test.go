package postgres_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/server/storage"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
	"github.com/gatehouse-dev/gatehouse/server/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(testpg.Run(m)) }

func open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newStore(t testing.TB) storage.Store { return open(t, testpg.Get(t).NewDatabase(t)) }

func TestConformance(t *testing.T) { storagetest.Run(t, newStore) }

// Behind a transaction pooler (PgBouncer) prepared statements cannot be
// cached per connection; the driver works without them.
func TestConformanceWithoutPreparedStatements(t *testing.T) {
	storagetest.Run(t, func(t testing.TB) storage.Store {
		return open(t, testpg.Get(t).NewDatabase(t)+"&default_query_exec_mode=exec")
	})
}

// Two Store instances are two token-server replicas: separate pools on one
// database. Of their concurrent redemptions of one code, exactly one wins.
func TestTwoInstancesRedeemCode(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	storagetest.RaceRedeemCode(t, open(t, url), open(t, url))
}

// Of two replicas' concurrent polls of one approved device code, exactly
// one redeems it.
func TestTwoInstancesPollDeviceAuthorization(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	storagetest.RacePollDeviceAuthorization(t, open(t, url), open(t, url))
}

func TestTwoInstancesRotateRefreshToken(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	storagetest.RaceRotateRefreshToken(t, open(t, url), open(t, url))
}

// Of two replicas ending one session at once, one ends it and queues its
// logout token.
func TestTwoInstancesEndSession(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	storagetest.RaceEndSession(t, open(t, url), open(t, url))
}

// Replicas claiming the logout outbox at once never claim one delivery
// twice.
func TestTwoInstancesClaimLogoutDeliveries(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	storagetest.RaceClaimLogoutDeliveries(t, open(t, url), open(t, url))
}

// Migration 0007 gives the sessions stored before it the sid the server
// derived for them (HashToken("sid:" + hash)); this is its expression.
func TestSessionIDBackfillMatchesServer(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	open(t, url)
	conn := connect(t, url)
	for _, cookie := range []string{"a", "cookie-with-/+=", strings.Repeat("x", 200)} {
		hash := storage.HashToken(cookie)
		var sid string
		err := conn.QueryRow(context.Background(),
			`SELECT rtrim(translate(encode(sha256(convert_to('sid:' || $1, 'UTF8')), 'base64'), '+/', '-_'), '=')`, hash).Scan(&sid)
		if err != nil {
			t.Fatal(err)
		}
		if want := storage.HashToken("sid:" + hash); sid != want {
			t.Errorf("backfilled sid %q, the server's %q", sid, want)
		}
	}
}

// A client assertion presented at two replicas at once is accepted by one.
func TestTwoInstancesUseAssertion(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	storagetest.RaceUseAssertion(t, open(t, url), open(t, url))
}

// A request_uri used at two replicas at once is honoured by one.
func TestTwoInstancesConsumePushedRequest(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	storagetest.RaceConsumePushedRequest(t, open(t, url), open(t, url))
}

// Replicas that start together on an empty database all come up, and each
// migration is applied once.
func TestConcurrentMigration(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	const replicas = 6
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), url)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Open: %v", i, err)
		}
	}

	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, url)
	var rows, distinct int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT version) FROM gatehouse_schema_migrations").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != len(entries) || distinct != len(entries) {
		t.Fatalf("gatehouse_schema_migrations has %d rows (%d versions), want one per migration file (%d)", rows, distinct, len(entries))
	}

	// Opening a migrated database applies nothing and keeps the data.
	s := open(t, url)
	if err := s.CreateSession(context.Background(), storage.Session{Hash: "h", ID: "sid-h", Subject: "alice", ExpiresAt: t0()}); err != nil {
		t.Fatal(err)
	}
	open(t, url)
	if _, err := s.GetSession(context.Background(), "h", t0().Add(-1)); err != nil {
		t.Fatalf("session lost by reopening: %v", err)
	}
}

// The bearer values themselves never reach the database, only their hashes.
func TestOnlyHashesStored(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	s := open(t, url)
	ctx := context.Background()
	code, refresh, cookie := "code-Zm9vYmFyYmF6cXV4", "refresh-cXV4YmF6YmFyZm9v", "cookie-YmF6cXV4Zm9vYmFy"
	deviceCode, userCode := "device-Zm9vcXV4YmF6YmFy", "WDJBMJHT"
	exp := t0()
	if err := s.CreateCode(ctx, storage.AuthCode{Hash: storage.HashToken(code), ClientID: "c", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: storage.HashToken(refresh), FamilyID: "f", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, storage.Session{Hash: storage.HashToken(cookie), ID: storage.HashToken("sid:" + storage.HashToken(cookie)), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{Hash: storage.HashToken(deviceCode), UserCode: storage.HashToken(userCode),
		ClientID: "c", ExpiresAt: exp, Interval: 5 * time.Second, Status: storage.DevicePending}, exp.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, url)
	var dump string
	err := conn.QueryRow(ctx, `SELECT concat_ws(' ',
		(SELECT string_agg(c::text, ' ') FROM auth_codes c),
		(SELECT string_agg(r::text, ' ') FROM refresh_tokens r),
		(SELECT string_agg(s::text, ' ') FROM sessions s),
		(SELECT string_agg(d::text, ' ') FROM device_authorizations d))`).Scan(&dump)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{code, refresh, cookie, deviceCode, userCode} {
		if strings.Contains(dump, secret) {
			t.Errorf("the database holds the plaintext %q", secret)
		}
		if !strings.Contains(dump, storage.HashToken(secret)) {
			t.Errorf("the database does not hold the hash of %q", secret)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://user:hunter2@127.0.0.1:notaport/db")
	if err == nil {
		t.Fatal("Open accepted a malformed URL")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error carries the password: %v", err)
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func BenchmarkRedeemCode(b *testing.B) { storagetest.BenchmarkRedeemCode(b, newStore) }

func BenchmarkRedeemCodeWithRefreshToken(b *testing.B) {
	storagetest.BenchmarkRedeemCodeWithRefreshToken(b, newStore)
}

func BenchmarkRotateRefreshToken(b *testing.B) { storagetest.BenchmarkRotateRefreshToken(b, newStore) }

// DeleteExpired removes a backlog larger than one batch, and counts it.
func TestDeleteExpiredInBatches(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	s := open(t, url)
	ctx := context.Background()
	const expired = 12_345 // more than two batches
	conn := connect(t, url)
	_, err := conn.Exec(ctx, `INSERT INTO sessions (hash, sid, subject, auth_time, expires_at)
		SELECT 'h' || i, 'sid' || i, 'alice', $1, $1 FROM generate_series(1, $2) AS i`, t0().Add(-time.Hour), expired)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, storage.Session{Hash: "live", ID: "sid-live", Subject: "bob", ExpiresAt: t0().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpired(ctx, t0())
	if err != nil {
		t.Fatal(err)
	}
	if n != expired {
		t.Fatalf("DeleteExpired removed %d rows, want %d", n, expired)
	}
	var left int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM sessions").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 1 {
		t.Fatalf("%d sessions left, want the live one", left)
	}
}

// In a database shared with other applications, search_path keeps
// Gatehouse's tables in a schema of their own.
func TestSchemaFromSearchPath(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	conn := connect(t, url)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA gatehouse"); err != nil {
		t.Fatal(err)
	}
	s := open(t, url+"&search_path=gatehouse")
	if err := s.CreateSession(ctx, storage.Session{Hash: "h", ID: "sid-h", Subject: "alice", ExpiresAt: t0()}); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := conn.QueryRow(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'sessions'").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if schema != "gatehouse" {
		t.Fatalf("sessions table is in schema %q, want gatehouse", schema)
	}
}

// A database shared with an application migrated by golang-migrate (its
// own schema_migrations table) still gets Gatehouse's schema.
func TestMigrationsBesideAnotherTool(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	conn := connect(t, url)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);
		INSERT INTO schema_migrations VALUES (20240101120000, false)`); err != nil {
		t.Fatal(err)
	}
	s := open(t, url)
	if err := s.CreateSession(ctx, storage.Session{Hash: "h", ID: "sid-h", Subject: "alice", ExpiresAt: t0()}); err != nil {
		t.Fatalf("the schema was not applied: %v", err)
	}
}
