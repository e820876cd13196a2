package controllers_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// requestCounter counts the operator's requests for single OAuthClients
// and Secrets (gets and writes; lists and watches feed the cache and are
// not per client).
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int // "GET secrets", "PATCH oauthclients", ...
}

func (c *requestCounter) config(base *rest.Config) *rest.Config {
	cfg := rest.CopyConfig(base)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			c.count(req)
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

func (c *requestCounter) count(req *http.Request) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	for i, p := range parts {
		if p != "oauthclients" && p != "secrets" && p != "events" {
			continue
		}
		named := i+1 < len(parts)
		if !named && req.Method != http.MethodPost {
			return // a list or a watch
		}
		if named && p == "secrets" && strings.HasSuffix(parts[i+1], "-oauth-client") {
			p = "client-secrets" // apart from the server's signing keys and users
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.counts[req.Method+" "+p]++
		return
	}
}

func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The operator reads from its cache unless that may be older than its own
// writes: a new client costs a handful of requests, not a GET of the client
// and its Secret on every one of the reconciles its own writes trigger; and
// a restarted operator with nothing to do sends none at all.
func TestOAuthClientAPIRequests(t *testing.T) {
	const n = 20
	ns := newNamespace(t, nil)
	clock := newFakeClock()
	counter := &requestCounter{counts: map[string]int{}}
	cfg := counter.config(testenv.Get(t).Config)
	first := startOperatorWith(t, clock, cfg, ns)
	srv := server(ns, "auth")
	create(t, srv)
	// The server's own key Events go out after its keys are ready, the one
	// for the key that signs at once last.
	waitCondition(t, srv, oauthv1.ConditionKeysReady, metav1.ConditionTrue, "KeysReady")
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, e := range eventsFor(t, ns, "auth") {
			if e.Reason == controllers.EventKeyPublished && strings.Contains(e.Note, "signs at once") {
				return nil
			}
		}
		return fmt.Errorf("no Event yet for the key that signs at once")
	})
	settled(t, first, ns)
	counter.take()

	var clients []*oauthv1.OAuthClient
	for i := range n {
		oc := oauthClient(ns, fmt.Sprintf("app-%02d", i), "", "auth")
		create(t, oc)
		clients = append(clients, oc)
	}
	for _, oc := range clients {
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	}
	settled(t, first, ns) // the reconciles the last writes trigger
	counts := counter.take()
	total := 0
	for _, v := range counts {
		total += v
	}
	// Create the Secret (without looking for one first: only if it exists
	// is it read), write the status. The echoes of those writes find the
	// cache fresh, or wait for it, and read nothing. No finalizer: the
	// operator deletes its own Secret after the client.
	t.Logf("requests for %d new clients: %v", n, counts)
	if counts["GET oauthclients"] > 0 {
		t.Errorf("%d uncached reads of OAuthClients (%v), want none", counts["GET oauthclients"], counts)
	}
	if counts["GET client-secrets"] > 0 {
		t.Errorf("%d uncached reads of client Secrets (%v), want none", counts["GET client-secrets"], counts)
	}
	if counts["POST events"] > 0 {
		t.Errorf("%d Events for %d new clients (%v), want none: their status says where the secret is", counts["POST events"], n, counts)
	}
	// A conflict retried now and then costs one or two more; reading
	// through on every reconcile cost about 12 per client, reading before
	// creating and a finalizer about 5.
	if total-counts["GET secrets"] > 2*n+5 { // the server's own Secrets read through aside
		t.Errorf("%d requests for %d new clients (%v), want 2 each", total, n, counts)
	}
	get(t, clients[0])
	if f := clients[0].Finalizers; len(f) > 0 {
		t.Errorf("a client with a Secret of the operator's got finalizers %v, want none", f)
	}

	// The restarted operator lists every client and reconciles each one
	// (at a lower priority than the new client, so the new one being Ready
	// says nothing about them): count until it has done all of them.
	first.stop()
	before := reconciles(t)
	second := startOperatorWith(t, clock, cfg, ns)
	marker := oauthClient(ns, "after-restart", "", "auth")
	create(t, marker)
	waitCondition(t, marker, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	testenv.Eventually(t, 30*time.Second, func() error {
		if done := reconciles(t) - before; done < n+1 {
			return fmt.Errorf("%d OAuthClient reconciles since the restart, want at least %d (every client)", done, n+1)
		}
		return nil
	})
	settled(t, second, ns)
	counts = counter.take()
	total = 0
	for _, v := range counts {
		total += v
	}
	t.Logf("requests after a restart with %d idle clients and one new one: %v", n, counts)
	if total > 5 {
		t.Errorf("a restart cost %d requests (%v): the idle clients should cost none", total, counts)
	}
}
