package controllers_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// BenchmarkBulkClients applies GATEHOUSE_BENCH_CLIENTS (default 1,000)
// OAuthClients at once to an operator running in this process against the
// envtest control plane, with the operator's default QPS, burst and
// concurrency, and reports:
//
//   - clients/s: clients Ready (Secret written, hash published) per second,
//     from the first create to the last Ready;
//
//   - requests/client: the operator's requests for OAuthClients and
//     Secrets (reads and writes; lists and watches feed the cache);
//
//   - heap-B/client: live heap after GC, grown per client, which is the
//     operator's cache, indexes and queue (the test's own client keeps no
//     cache);
//
//   - fanout-new-ms: how long a client created right after a Scope edit
//     that refuses every one of them takes to be Ready.
//
//     go test ./controllers/ -run '^$' -bench BulkClients -benchtime 1x
func BenchmarkBulkClients(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("GATEHOUSE_BENCH_CLIENTS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		benchBulkClients(b, n)
	}
}

func benchBulkClients(b *testing.B, n int) {
	home, apps := newNamespace(b, nil), newNamespace(b, nil)
	counter := &requestCounter{counts: map[string]int{}}
	cfg := counter.config(testenv.Get(b).Config)
	cfg.QPS, cfg.Burst = controllers.DefaultKubeAPIQPS, controllers.DefaultKubeAPIBurst
	if os.Getenv("GATEHOUSE_BENCH_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 4096 // fine enough to tell what each client costs
	}
	heapBefore := liveHeap()
	startOperatorOpts(b, cfg, controllers.Options{Clock: newFakeClock()}, home, apps)
	sc := openScope(b, home)
	counter.take()

	began := time.Now()
	createMany(b, apps, home, n)
	created := time.Since(began)
	waitClients(b, apps, n, func(c *metav1.Condition) bool { return c.Status == metav1.ConditionTrue })
	elapsed := time.Since(began)
	total := 0
	for _, v := range counter.take() {
		total += v
	}
	heap := liveHeap() - heapBefore
	if path := os.Getenv("GATEHOUSE_BENCH_HEAPPROFILE"); path != "" {
		writeHeapProfile(b, path) // what the operator holds with n clients Ready
	}

	// A fan-out of n, and a new client in the middle of it.
	get(b, sc)
	before := sc.DeepCopy()
	sc.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromSame
	if err := testenv.Get(b).Client.Patch(context.Background(), sc, client.MergeFrom(before)); err != nil {
		b.Fatal(err)
	}
	newAt := time.Now()
	fresh := oauthClient(home, "fresh", "", "auth", "orders:read")
	create(b, fresh)
	waitClients(b, home, 1, func(c *metav1.Condition) bool { return c.Status == metav1.ConditionTrue })
	newLatency := time.Since(newAt)
	waitClients(b, apps, n, func(c *metav1.Condition) bool { return c.Reason == "ScopeNotAllowed" })

	b.ReportMetric(float64(n)/elapsed.Seconds(), "clients/s")
	b.ReportMetric(float64(total)/float64(n), "requests/client")
	b.ReportMetric(float64(heap)/float64(n), "heap-B/client")
	b.ReportMetric(float64(newLatency.Milliseconds()), "fanout-new-ms")
	b.Logf("%d clients created in %s, all Ready in %s; %d requests; operator heap +%d KiB; new client during the fan-out Ready in %s",
		n, created.Round(time.Millisecond), elapsed.Round(time.Millisecond), total, heap/1024, newLatency.Round(time.Millisecond))
}

// createMany creates n clients in ns from 16 goroutines, like kubectl
// apply of a large manifest.
func createMany(b *testing.B, ns, serverNS string, n int) {
	cfg := rest.CopyConfig(testenv.Get(b).Config)
	cfg.QPS = -1 // the applier is not what is measured
	c, err := client.New(cfg, client.Options{Scheme: testenv.Get(b).Scheme})
	if err != nil {
		b.Fatal(err)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				if err := c.Create(context.Background(), oauthClient(ns, fmt.Sprintf("app-%05d", i), serverNS, "auth", "orders:read")); err != nil {
					b.Errorf("creating client %d: %v", i, err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// waitClients waits until n clients of ns have a Ready condition that ok
// accepts.
func waitClients(b *testing.B, ns string, n int, ok func(*metav1.Condition) bool) {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var list oauthv1.OAuthClientList
		if err := testenv.Get(b).Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		done := 0
		for _, oc := range list.Items {
			if c := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady); c != nil && ok(c) {
				done++
			}
		}
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d clients of %s done", done, n, ns)
		}
		time.Sleep(200 * time.Millisecond) // a list of thousands is not free: the control plane shares the CPU
	}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	err = pprof.Lookup("heap").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatalf("writing the heap profile: %v", err)
	}
}
