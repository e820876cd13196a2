package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

// propagationBound is the most a revocation on one replica may take to
// reach the others (issue 13); it is a correctness bound, not a
// performance figure: NOTIFY takes milliseconds.
const propagationBound = time.Second

// Two replicas on one database: a revocation on one reaches the other
// within propagationBound, and the other answers revocation checks from
// memory, without a statement. A replica started later loads what was
// revoked before.
func TestRevocationReachesOtherReplicas(t *testing.T) {
	url := testpg.Get(t).NewDatabase(t)
	a := open(t, url)
	counter := &testpg.StatementCounter{}
	b, err := postgres.Open(context.Background(), url, postgres.WithQueryTracer(counter))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	now := time.Now()

	waitLive(t, b)
	before := counter.Count()
	if revoked, err := b.IsAccessTokenRevoked(ctx, "jti-1", "family-1", now); err != nil || revoked {
		t.Fatalf("before any revocation: %v, %v", revoked, err)
	}
	if n := counter.Count() - before; n != 0 {
		t.Errorf("a revocation check sent %d statements, want none (answered from memory)", n)
	}

	for _, c := range []struct {
		name   string
		revoke func() error
		jti    string
		family string
	}{
		{"access token", func() error { return a.RevokeAccessToken(ctx, "jti-1", now.Add(time.Hour)) }, "jti-1", ""},
		{"refresh family", func() error { return a.RevokeFamily(ctx, "family-1", now) }, "jti-2", "family-1"},
	} {
		began := time.Now()
		if err := c.revoke(); err != nil {
			t.Fatal(err)
		}
		for {
			revoked, err := b.IsAccessTokenRevoked(ctx, c.jti, c.family, now)
			if err != nil {
				t.Fatal(err)
			}
			if revoked {
				t.Logf("%s revocation reached the other replica in %s", c.name, time.Since(began))
				break
			}
			if time.Since(began) > propagationBound {
				t.Fatalf("%s revocation did not reach the other replica within %s", c.name, propagationBound)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if revoked, _ := b.IsAccessTokenRevoked(ctx, "jti-1", "", now.Add(2*time.Hour)); revoked {
		t.Error("a revoked access token is still reported revoked after it expired")
	}

	late := open(t, url)
	waitLive(t, late)
	for _, c := range [][2]string{{"jti-1", ""}, {"other", "family-1"}} {
		if revoked, err := late.IsAccessTokenRevoked(ctx, c[0], c[1], now); err != nil || !revoked {
			t.Errorf("a replica started after the revocation of %v: %v, %v", c, revoked, err)
		}
	}
}

// waitLive waits until a store answers from memory: its listener has
// loaded the revocations (Open does not wait for it).
func waitLive(t *testing.T, s *postgres.Store) {
	t.Helper()
	for began := time.Now(); !s.RevocationsLive(); time.Sleep(5 * time.Millisecond) {
		if time.Since(began) > 10*time.Second {
			t.Fatal("the revocation listener never became live")
		}
	}
}
