package controllers_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// TestManyClientsBecomeReady creates 200 OAuthClients at once and waits
// for all of them to be Ready. The time is logged, not asserted.
func TestManyClientsBecomeReady(t *testing.T) {
	const n = 200
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"), scope(ns, "read", "auth", "orders:read"))

	began := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int32
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := c.Create(ctx, oauthClient(ns, fmt.Sprintf("app-%03d", i), "", "auth", "orders:read")); err != nil {
					t.Errorf("creating client %d: %v", i, err)
					failed.Add(1)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	created := time.Since(began)

	deadline := time.Now().Add(3 * time.Minute)
	for {
		var list oauthv1.OAuthClientList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, oc := range list.Items {
			if meta.IsStatusConditionTrue(oc.Status.Conditions, oauthv1.ConditionReady) && len(oc.Status.SecretHashes) == 1 {
				ready++
			}
		}
		if ready == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d clients Ready after %s", ready, n, time.Since(began))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace(ns), client.HasLabels{oauthv1.LabelClient}); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != n {
		t.Errorf("%d client Secrets, want %d", len(secrets.Items), n)
	}
	t.Logf("%d OAuthClients: created in %s, all Ready %s after the first create", n, created.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// TestOperatorRestartRegeneratesNothing stops the operator and starts a new
// one: no client secret, hash or signing key may change.
func TestOperatorRestartRegeneratesNothing(t *testing.T) {
	ns := newNamespace(t, nil)
	clock := newFakeClock()
	first := startOperator(t, clock, ns)

	srv := server(ns, "auth")
	create(t, srv)
	rotating := oauthClient(ns, "rotating", "", "auth")
	rotating.Spec.SecretRotation = &oauthv1.SecretRotation{Interval: &metav1.Duration{Duration: 48 * time.Hour}}
	rotating.Annotations = map[string]string{oauthv1.AnnotationRotateSecret: "v1"}
	clients := []*oauthv1.OAuthClient{rotating}
	for i := 0; i < 5; i++ {
		clients = append(clients, oauthClient(ns, fmt.Sprintf("app-%d", i), "", "auth"))
	}
	for _, oc := range clients {
		create(t, oc)
	}
	for _, oc := range clients {
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	}
	waitCondition(t, srv, oauthv1.ConditionKeysReady, metav1.ConditionTrue, "KeysReady")
	// Let the first operator settle: a Secret it wrote can still be in its
	// queue.
	settled(t, first, ns)

	type snapshot struct {
		secretRV, secret string
		hashes           []oauthv1.SecretHash
	}
	take := func() (map[string]snapshot, string) {
		out := map[string]snapshot{}
		for _, oc := range clients {
			get(t, oc)
			sec := appSecret(t, ns, oc.Status.SecretName)
			out[oc.Name] = snapshot{sec.ResourceVersion, string(sec.Data["client_secret"]), oc.Status.SecretHashes}
		}
		keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: keyset.SecretName("auth")}}
		get(t, keys)
		return out, keys.ResourceVersion + "/" + string(keys.Data[keyset.SecretDataKey])
	}
	before, keysBefore := take()
	first.stop()

	// A second operator, with time moved on a little (less than any interval).
	clock.Add(time.Hour)
	counter := &requestCounter{counts: map[string]int{}}
	reconcilesBefore := reconciles(t)
	second := startOperatorWith(t, clock, counter.config(testenv.Get(t).Config), ns)
	for _, oc := range clients {
		poke(t, oc)
	}
	poke(t, srv)
	marker := oauthClient(ns, "after-restart", "", "auth")
	create(t, marker)
	waitCondition(t, marker, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	// Every client, not only the new one, has been reconciled by the new
	// operator, and what that wrote has come back to it.
	testenv.Eventually(t, 30*time.Second, func() error {
		if done := reconciles(t) - reconcilesBefore; done < len(clients)+1 {
			return fmt.Errorf("%d OAuthClient reconciles since the restart, want at least %d (every client)", done, len(clients)+1)
		}
		return nil
	})
	settled(t, second, ns)

	// The idle clients cost no write at all: only the new one is written
	// (its Secret and its status).
	counts := counter.take()
	t.Logf("requests of the restarted operator: %v", counts)
	for req, want := range map[string]int{"PATCH oauthclients": 1, "POST secrets": 1, "PATCH client-secrets": 0, "PATCH secrets": 0,
		"PUT oauthclients": 0, "PUT client-secrets": 0, "DELETE client-secrets": 0, "GET oauthclients": 0, "GET client-secrets": 0} {
		if counts[req] > want {
			t.Errorf("after the restart: %d %s requests, want at most %d (those of the new client)", counts[req], req, want)
		}
	}

	after, keysAfter := take()
	for name, b := range before {
		a := after[name]
		if a.secret != b.secret {
			t.Errorf("client %s: the secret was regenerated by the restart", name)
		}
		if a.secretRV != b.secretRV {
			t.Errorf("client %s: the Secret was rewritten by the restart", name)
		}
		if !equality.Semantic.DeepEqual(a.hashes, b.hashes) {
			t.Errorf("client %s: hashes changed from %+v to %+v", name, b.hashes, a.hashes)
		}
	}
	if keysAfter != keysBefore {
		t.Error("the signing keys changed on restart")
	}
	generated := 0
	for _, e := range eventsFor(t, ns, "rotating") {
		if e.Reason == "Generated" || e.Reason == "Rotated" {
			generated++
		}
	}
	// Its first secret got no Event; a rotation or regeneration would.
	if generated != 0 {
		t.Errorf("client rotating has %d Generated/Rotated events, want none: the restart rotated or regenerated its secret", generated)
	}
}
