package config

import (
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// partitionProxy forwards TCP connections to the API server until it is
// partitioned: then it drops every open connection and refuses new ones,
// as a network partition between a token server and the API server would.
type partitionProxy struct {
	ln     net.Listener
	target string

	mu          sync.Mutex
	partitioned bool
	conns       []net.Conn
	refused     atomic.Int64 // connections refused while partitioned
}

func newPartitionProxy(t *testing.T, target string) *partitionProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &partitionProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.partition(true) })
	go p.serve()
	return p
}

func (p *partitionProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.partitioned {
			p.mu.Unlock()
			p.refused.Add(1)
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

func (p *partitionProxy) partition(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partitioned = on
	if on {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestKubeSourceVerifiesFreshness shows that VerifiedAt, which the
// configuration-freshness alert reads, keeps advancing while the source
// follows the API server, and stops while the server is cut off from it
// (still serving its last snapshot), then advances again after.
func TestKubeSourceVerifiesFreshness(t *testing.T) {
	cp := testenv.Get(t)
	ctx := t.Context()
	const ns = "fresh-auth"
	keyData, _ := keysSecretData(t, time.Now())
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Create(ctx, &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "http://127.0.0.1:8080"}}); err != nil {
		t.Fatal(err)
	}
	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: keyset.SecretName("auth")}, Data: keyData}
	if err := cp.Client.Create(ctx, keys); err != nil {
		t.Fatal(err)
	}

	host, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPartitionProxy(t, host.Host)
	cfg := rest.CopyConfig(cp.Config)
	cfg.Host = "https://" + proxy.ln.Addr().String()
	cfg.Timeout = 2 * time.Second
	logs := &testenv.LogBuffer{}
	src, err := NewKube(cfg, cp.Scheme, ns, "auth", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	src.verifyInterval = 200 * time.Millisecond
	runSource(ctx, t, src)

	advancing := func(what string) {
		t.Helper()
		since := time.Now()
		waitFor(t, since, 10*time.Second, what, func() bool { return src.VerifiedAt().After(since) })
	}
	advancing("first confirmation")

	// A change to the keys reaches the cache, and the source confirms it.
	keyData, _ = keysSecretData(t, time.Now())
	keys.Data = keyData
	if err := cp.Client.Update(ctx, keys); err != nil {
		t.Fatal(err)
	}
	advancing("confirmation after a key change")

	proxy.partition(true)
	cutOff := time.Now()
	// The keys change while the server cannot see it.
	keyData, newKID := keysSecretData(t, time.Now())
	keys.Data = keyData
	if err := cp.Client.Update(ctx, keys); err != nil {
		t.Fatal(err)
	}
	// The source notices (it warns once), and keeps trying: a few more
	// connections refused, then it still has not confirmed anything.
	waitFor(t, cutOff, 20*time.Second, "the stale-configuration warning", func() bool {
		return strings.Contains(logs.String(), "configuration may be stale")
	})
	refused := proxy.refused.Load()
	waitFor(t, time.Now(), 20*time.Second, "more attempts to reach the API server", func() bool { return proxy.refused.Load() >= refused+5 })
	if at := src.VerifiedAt(); at.After(cutOff) {
		t.Fatalf("confirmed at %v while cut off from the API server (since %v)", at, cutOff)
	}
	if src.Current() == nil {
		t.Fatal("the source dropped its snapshot while cut off; it must keep serving it")
	}

	// Healed: the source confirms again only once its snapshot has the
	// keys written during the partition.
	proxy.partition(false)
	waitFor(t, time.Now(), time.Minute, "confirmation after the partition healed", func() bool { return src.VerifiedAt().After(cutOff) })
	if k, ok := src.Current().SigningKey(time.Now()); !ok || k.ID != newKID {
		t.Fatalf("confirmed fresh while signing with %v, not the key written during the partition (%s)", k, newKID)
	}
}
