package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/server/storage"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

// short are timeouts a test can wait out.
var short = postgres.Timeouts{Connect: time.Second, Acquire: 500 * time.Millisecond, Statement: time.Second}

// throughProxy opens a store whose connections pass through a proxy the
// test can take down or stall.
func throughProxy(t *testing.T) (*postgres.Store, *testpg.Proxy, string) {
	t.Helper()
	srv := testpg.Get(t)
	url := srv.NewDatabase(t)
	proxy, err := testpg.NewProxy(fmt.Sprintf("127.0.0.1:%d", srv.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	restore := postgres.SetListenerHeartbeat(time.Second)
	t.Cleanup(restore)
	viaProxy := strings.Replace(url, fmt.Sprintf(":%d/", srv.Port), fmt.Sprintf(":%d/", proxy.Port()), 1)
	s, err := postgres.Open(context.Background(), viaProxy, postgres.WithTimeouts(short))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, proxy, url
}

// boundedCall runs op and fails the test if it has not returned within a
// bound far above the store's timeouts: the property is that it returns,
// not how fast.
func boundedCall(t *testing.T, what string, op func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still waiting after 30s, with a statement timeout of %s", what, short.Statement)
		return nil
	}
}

func storedToken(t *testing.T, s storage.Store) storage.RefreshToken {
	t.Helper()
	now := time.Now()
	rt := storage.RefreshToken{Hash: storage.HashToken(fmt.Sprint("rt-", now.UnixNano())), FamilyID: fmt.Sprint("fam-", now.UnixNano()),
		ClientID: "c", Subject: "alice", IssuedAt: now, AuthTime: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateRefreshToken(context.Background(), rt); err != nil {
		t.Fatal(err)
	}
	return rt
}

// A database that goes away (connections reset and refused) makes every
// operation fail soon with storage.ErrUnavailable; when it is back, the
// same store serves again, with what it had stored, without reopening.
func TestUnreachableDatabaseThenReconnect(t *testing.T) {
	s, proxy, _ := throughProxy(t)
	rt := storedToken(t, s)

	proxy.Down()
	err := boundedCall(t, "GetRefreshToken while the database is down", func() error {
		_, err := s.GetRefreshToken(context.Background(), rt.Hash, time.Now())
		return err
	})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("GetRefreshToken while the database is down: %v, want storage.ErrUnavailable", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Ping while the database is down: %v, want storage.ErrUnavailable", err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if s.RevocationsLive() {
			return errors.New("the revocation copy is still trusted")
		}
		return nil
	})

	proxy.Up()
	testenv.Eventually(t, 30*time.Second, func() error {
		_, err := s.GetRefreshToken(context.Background(), rt.Hash, time.Now())
		return err
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		if !s.RevocationsLive() {
			return errors.New("the revocation listener has not reconnected")
		}
		return nil
	})
}

// A network that stalls (bytes held, no error) costs an operation its
// timeouts, never a hang; the revocation listener notices the silence and
// stops trusting its copy; once the network flows again the store serves.
func TestStalledDatabaseTimesOut(t *testing.T) {
	s, proxy, _ := throughProxy(t)
	rt := storedToken(t, s)

	proxy.Stall()
	for i := range 3 {
		err := boundedCall(t, "GetRefreshToken during a stall", func() error {
			_, err := s.GetRefreshToken(context.Background(), rt.Hash, time.Now())
			return err
		})
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("GetRefreshToken %d during a stall: %v, want storage.ErrUnavailable", i, err)
		}
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		if s.RevocationsLive() {
			return errors.New("the revocation copy is still trusted during the stall")
		}
		return nil
	})

	proxy.Resume()
	testenv.Eventually(t, 30*time.Second, func() error {
		_, err := s.GetRefreshToken(context.Background(), rt.Hash, time.Now())
		return err
	})
}

// A statement stuck behind a lock (another replica's transaction that
// stalls while holding it) ends at the statement timeout, as
// storage.ErrUnavailable, and changes nothing.
func TestLockWaitEndsAtStatementTimeout(t *testing.T) {
	s, _, url := throughProxy(t)
	rt := storedToken(t, s)
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM refresh_tokens WHERE hash = $1 FOR UPDATE", rt.Hash); err != nil {
		t.Fatal(err)
	}
	next := storage.RefreshToken{Hash: storage.HashToken("next"), FamilyID: rt.FamilyID, ClientID: "c", Subject: "alice",
		IssuedAt: time.Now(), ExpiresAt: rt.ExpiresAt}
	err = boundedCall(t, "RotateRefreshToken behind a lock", func() error {
		_, err := s.RotateRefreshToken(ctx, rt.Hash, next, time.Now())
		return err
	})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("RotateRefreshToken behind a lock: %v, want storage.ErrUnavailable", err)
	}
	_ = tx.Rollback(ctx)
	got, err := s.GetRefreshToken(ctx, rt.Hash, time.Now())
	if err != nil || got.RotatedAt != nil {
		t.Errorf("after the timed-out rotation the token is %+v, %v; want it unrotated", got, err)
	}
	if _, err := s.GetRefreshToken(ctx, next.Hash, time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the successor of a timed-out rotation: %v, want ErrNotFound", err)
	}
}
