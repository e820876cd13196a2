package config

import (
	"fmt"
	"runtime"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

var benchSizes = []int{100, 10_000, 50_000}

// benchClients are n Ready clients as the informer keeps them (leanClient),
// spread over 50 namespaces.
func benchClients(n int) []*oauthv1.OAuthClient {
	out := make([]*oauthv1.OAuthClient, n)
	for i := range out {
		obj, _ := leanClient(fullClient(fmt.Sprintf("team-%02d", i%50), fmt.Sprintf("app-%06d", i)))
		out[i] = obj.(*oauthv1.OAuthClient)
	}
	return out
}

func benchServer() Inputs {
	return Inputs{
		Server: &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
			Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example"}},
		Scopes: []oauthv1.Scope{{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "orders-read"},
			Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "main"}, Name: "orders:read", Audience: "https://orders.example",
				AllowedClients: oauthv1.AllowedClients{Namespaces: oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromAll}}}}},
	}
}

func benchBuilder(b *testing.B, clients []*oauthv1.OAuthClient) *Builder {
	b.Helper()
	bl := &Builder{}
	if _, err := bl.SetServer(benchServer()); err != nil {
		b.Fatal(err)
	}
	for _, c := range clients {
		bl.SetClient(c)
	}
	if got := bl.Snapshot().Clients.Len(); got != len(clients) {
		b.Fatalf("%d clients served, want %d", got, len(clients))
	}
	return bl
}

// BenchmarkClientUpdate is what the token server does for one OAuthClient
// event (here a secret rotation changing its hashes) and the snapshot it
// publishes: the cost must not grow with the number of clients.
func BenchmarkClientUpdate(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			clients := benchClients(n)
			bl := benchBuilder(b, clients)
			v1 := clients[n/2]
			v2 := v1.DeepCopy()
			v2.Status.SecretHashes = append(v2.Status.SecretHashes, oauthv1.SecretHash{Hash: "sha256:rotated"})
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 {
					bl.SetClient(v2)
				} else {
					bl.SetClient(v1)
				}
			}
		})
	}
}

// BenchmarkClientCreateDelete: a new client appears, then goes.
func BenchmarkClientCreateDelete(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			bl := benchBuilder(b, benchClients(n))
			extra := benchClients(n + 1)[n]
			for b.Loop() {
				bl.SetClient(extra)
				bl.DeleteClient(extra.Namespace, extra.Name)
			}
		})
	}
}

// BenchmarkClientLookup is the request path's read: a client by client_id.
func BenchmarkClientLookup(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			clients := benchClients(n)
			snap := benchBuilder(b, clients).Snapshot()
			ids := make([]string, n)
			for i, c := range clients {
				ids[i] = c.Status.ClientID
			}
			for i := 0; b.Loop(); i++ {
				if snap.Clients.Get(ids[i%n]) == nil {
					b.Fatal("client missing")
				}
			}
		})
	}
}

// BenchmarkFullBuild is what every OAuthClient event cost before the
// snapshot was updated incrementally: a build from all clients.
func BenchmarkFullBuild(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			in := benchServer()
			for _, c := range benchClients(n) {
				in.Clients = append(in.Clients, *c)
			}
			for b.Loop() {
				var bl Builder
				if _, err := bl.Build(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeapPerClient reports the heap 10,000 clients take in the token
// server's configuration: the lean objects the informer keeps (without the
// informer's own index) and the builder's state and client map. The
// whole-process figure is hack/benchscale's.
func BenchmarkHeapPerClient(b *testing.B) {
	const n = 10_000
	var perClient float64
	for b.Loop() {
		before := heapAlloc()
		clients := benchClients(n)
		bl := benchBuilder(b, clients)
		after := heapAlloc()
		runtime.KeepAlive(bl)
		runtime.KeepAlive(clients)
		perClient = float64(after-before) / n
	}
	b.ReportMetric(perClient, "heap-B/client")
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
