package testpg

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestDatabasesAreIsolated(t *testing.T) {
	srv := Get(t)
	ctx := context.Background()
	a := connect(t, srv.NewDatabase(t))
	b := connect(t, srv.NewDatabase(t))
	if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(ctx, "SELECT * FROM only_in_a"); err == nil {
		t.Fatal("a table created in one test database is visible in another")
	}
}

func TestServerSettings(t *testing.T) {
	srv := Get(t)
	conn := connect(t, srv.NewDatabase(t))
	for setting, want := range map[string]string{
		"listen_addresses":   "127.0.0.1", // loopback only
		"fsync":              "off",
		"server_version_num": "", // checked below
	} {
		var got string
		if err := conn.QueryRow(context.Background(), "SELECT current_setting($1)", setting).Scan(&got); err != nil {
			t.Fatalf("reading %s: %v", setting, err)
		}
		if setting == "server_version_num" {
			t.Logf("PostgreSQL %s from %s", got, srv.BinDir)
			continue
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}

func TestDatabaseDroppedAfterTest(t *testing.T) {
	srv := Get(t)
	var url string
	t.Run("uses a database", func(t *testing.T) { url = srv.NewDatabase(t) })
	if _, err := pgx.Connect(context.Background(), url); err == nil {
		t.Fatal("the test's database still exists after the test")
	}
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv(BinDirEnv, t.TempDir())
	_, err := findBinDir()
	var missing *MissingBinariesError
	if !errors.As(err, &missing) {
		t.Fatalf("findBinDir with an empty %s: got %v, want a MissingBinariesError", BinDirEnv, err)
	}
}

// A synchronous replica has every commit the primary acknowledged: after
// the primary crashes, the promoted replica serves them and takes writes;
// the crashed primary restarts from its own WAL.
func TestPrimaryReplicaFailover(t *testing.T) {
	if _, err := findBinDir(); err != nil {
		testenv.MissingDependency(t, err)
	}
	primary, err := StartPrimary(true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = primary.Stop() }()
	replica, err := primary.StartReplica()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = replica.Stop() }()
	ctx := context.Background()
	exec := func(s *Server, sql string) error {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(primary, "CREATE TABLE acked (n int); INSERT INTO acked SELECT generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	if err := exec(replica, "INSERT INTO acked VALUES (0)"); err == nil {
		t.Fatal("a standby took a write")
	}
	if err := primary.Crash(); err != nil {
		t.Fatal(err)
	}
	if err := replica.Promote(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, replica.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM acked").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("the promoted replica has %d of 1000 acknowledged rows (%v)", n, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO acked VALUES (0)"); err != nil {
		t.Fatalf("the promoted replica refuses writes: %v", err)
	}
	if err := primary.Restart(); err != nil {
		t.Fatalf("the crashed primary does not restart: %v", err)
	}
}
