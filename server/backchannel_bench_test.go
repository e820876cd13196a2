package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
	"github.com/gatehouse-dev/gatehouse/server/storage/memory"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

// BenchmarkBackchannelLogout100RPs measures back-channel logout to 100
// relying parties, each its own HTTP server on 127.0.0.1, one of them
// dead: a person signed in to all 100 in one session signs out, and the
// clock runs from the end of the session (the outbox written, the page
// answered) to the logout token's arrival at each of the 99 live ones.
// The dead one either refuses connections or accepts them and never
// answers (the default 5 s per-attempt timeout applies). With the default
// options: 16 workers, 2 in flight per relying party.
//
// ns/op is the whole logout, to the 99th delivery; the reported metrics
// are the delays to the first, the median (50th) and the last (99th)
// delivery, in milliseconds, and the logout page's own time.
func BenchmarkBackchannelLogout100RPs(b *testing.B) {
	for _, store := range []string{"memory", "postgres"} {
		for _, dead := range []string{"refusing", "silent"} {
			b.Run(store+"/"+dead, func(b *testing.B) { benchmarkBackchannel(b, store, dead) })
		}
	}
}

func benchmarkBackchannel(b *testing.B, storeKind, dead string) {
	var store storage.Store = memory.New()
	if storeKind == "postgres" {
		s, err := postgres.Open(context.Background(), startPostgres(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		store = s
	}
	ts := &testServer{clock: &clock{t: time.Now()}}
	ts.Server = httptest.NewServer(nil)
	b.Cleanup(ts.Close)
	snap := testSnapshot(b, ts.URL, time.Now())
	ts.src = config.NewStatic(snap)
	srv, err := New(Options{Source: ts.src, Store: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.RunBackchannel(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })

	// 99 live relying parties and a dead one, each a client.
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	got := make(chan struct{}, 1000)
	clients := snap.Clients
	var ids []string
	for i := range 100 {
		id := fmt.Sprintf("apps.rp%03d", i)
		ids = append(ids, id)
		var uri string
		switch {
		case i != 50:
			rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				mu.Lock()
				arrived[id] = time.Now()
				mu.Unlock()
				got <- struct{}{}
			}))
			b.Cleanup(rp.Close)
			uri = rp.URL + "/backchannel-logout"
		case dead == "refusing":
			uri = unreachable(b)
		default:
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					b.Cleanup(func() { c.Close() })
				}
			}()
			uri = "http://" + l.Addr().String() + "/backchannel-logout"
		}
		clients = clients.With(&config.Client{ID: id, Namespace: "apps", AuthMethod: oauthv1.AuthClientSecretBasic,
			Backchannel: &config.Backchannel{URI: uri}})
	}
	cp := *snap
	cp.Clients = clients
	ts.src.Set(&cp)

	var first, median, last, page time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		now := time.Now()
		hash := storage.HashToken(fmt.Sprintf("bench-session-%d", i))
		sess := storage.Session{Hash: hash, ID: sessionID(hash), Subject: testSubject, AuthTime: now, ExpiresAt: now.Add(time.Hour)}
		if err := store.CreateSession(ctx, sess); err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			if err := store.AddSessionClient(ctx, sess.ID, id, now); err != nil {
				b.Fatal(err)
			}
		}
		mu.Lock()
		clear(arrived)
		mu.Unlock()
		b.StartTimer()

		began := time.Now()
		ended, err := srv.endSessions(ctx, &cp, storage.SessionSelector{Hash: hash}, storage.EndOptions{}, "benchmark")
		if err != nil || len(ended.Deliveries) != 100 {
			b.Fatalf("endSessions: %d deliveries, %v", len(ended.Deliveries), err)
		}
		page += time.Since(began)
		for range 99 {
			select {
			case <-got:
			case <-time.After(30 * time.Second):
				b.Fatal("logout tokens did not arrive")
			}
		}
		b.StopTimer()
		mu.Lock()
		var delays []time.Duration
		for _, at := range arrived {
			delays = append(delays, at.Sub(began))
		}
		mu.Unlock()
		slices.Sort(delays)
		first, median, last = first+delays[0], median+delays[len(delays)/2], last+delays[len(delays)-1]
		b.StartTimer()
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / float64(time.Millisecond) }
	b.ReportMetric(ms(page), "logout-ms")
	b.ReportMetric(ms(first), "first-ms")
	b.ReportMetric(ms(median), "median-ms")
	b.ReportMetric(ms(last), "99th-ms")
}
