package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// A client created while the operator works through a fan-out (here a
// Scope edit that refuses hundreds of clients) goes ahead of it: with one
// worker, it is Ready while most of the fan-out is still queued. In a
// first-in-first-out queue it would wait for all of it.
func TestNewClientGoesAheadOfFanOut(t *testing.T) {
	const n = 200
	home, apps := newNamespace(t, nil), newNamespace(t, nil)
	clock := newFakeClock()
	startOperatorOpts(t, testenv.Get(t).Config, controllers.Options{Clock: clock, MaxConcurrentReconciles: 1}, home, apps)
	sc := openScope(t, home)
	for i := range n {
		create(t, oauthClient(apps, fmt.Sprintf("app-%03d", i), home, "auth", "orders:read"))
	}
	testenv.Eventually(t, 2*time.Minute, func() error {
		if ready, _ := countReasons(t, apps); ready != n {
			return fmt.Errorf("%d of %d clients Ready", ready, n)
		}
		return nil
	})

	// The edit: only the Scope's own namespace may request it now.
	get(t, sc)
	before := sc.DeepCopy()
	sc.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromSame
	if err := testenv.Get(t).Client.Patch(context.Background(), sc, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	fresh := oauthClient(home, "fresh", "", "auth", "orders:read")
	create(t, fresh)
	waitCondition(t, fresh, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	_, refused := countReasons(t, apps)
	t.Logf("the new client was Ready when %d of %d clients of the fan-out had been done", refused, n)
	if refused > n/2 {
		t.Errorf("the new client waited for %d of %d fan-out reconciles, want it ahead of most of them", refused, n)
	}
	testenv.Eventually(t, 2*time.Minute, func() error {
		if _, refused := countReasons(t, apps); refused != n {
			return fmt.Errorf("%d of %d clients refused after the Scope edit", refused, n)
		}
		return nil
	})
}

// countReasons counts the clients of ns that are Ready, and those refused
// with ScopeNotAllowed.
func countReasons(t *testing.T, ns string) (ready, refused int) {
	t.Helper()
	var list oauthv1.OAuthClientList
	if err := testenv.Get(t).Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, oc := range list.Items {
		c := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady)
		switch {
		case c == nil:
		case c.Status == metav1.ConditionTrue:
			ready++
		case c.Reason == "ScopeNotAllowed":
			refused++
		}
	}
	return ready, refused
}

// A Scope edit re-reconciles only the clients whose outcome it can change:
// none for a new description, none for a policy that admits the same
// namespaces, every requesting client for one that refuses them.
func TestScopeEditRequeuesOnlyAffectedClients(t *testing.T) {
	const n = 30
	home, apps := newNamespace(t, nil), newNamespace(t, map[string]string{"team": "apps"})
	op := startOperator(t, newFakeClock(), home, apps)
	sc := openScope(t, home)
	for i := range n {
		create(t, oauthClient(apps, fmt.Sprintf("app-%02d", i), home, "auth", "orders:read"))
	}
	testenv.Eventually(t, time.Minute, func() error {
		if ready, _ := countReasons(t, apps); ready != n {
			return fmt.Errorf("%d of %d clients Ready", ready, n)
		}
		return nil
	})
	edit := func(change func(*oauthv1.Scope)) int {
		t.Helper()
		settled(t, op, home, apps) // the echoes of the last writes
		before := reconciles(t)
		get(t, sc)
		orig := sc.DeepCopy()
		change(sc)
		if err := testenv.Get(t).Client.Patch(context.Background(), sc, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
		// The operator has seen the edit (the Scope's own reconcile
		// says so), and done what it queued.
		waitCondition(t, sc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
		settled(t, op, home, apps)
		return reconciles(t) - before
	}
	if got := edit(func(s *oauthv1.Scope) { s.Spec.Description = "Read the orders" }); got != 0 {
		t.Errorf("a description edit reconciled %d clients, want none", got)
	}
	if got := edit(func(s *oauthv1.Scope) {
		s.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromSelector
		s.Spec.AllowedClients.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "apps"}}
	}); got != 0 {
		t.Errorf("a policy admitting the same namespaces reconciled %d clients, want none", got)
	}
	if got := edit(func(s *oauthv1.Scope) {
		s.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromSame
		s.Spec.AllowedClients.Namespaces.Selector = nil
	}); got < n {
		t.Errorf("a policy refusing every client reconciled %d of them, want all %d", got, n)
	}
	testenv.Eventually(t, time.Minute, func() error {
		if _, refused := countReasons(t, apps); refused != n {
			return fmt.Errorf("%d of %d clients refused", refused, n)
		}
		return nil
	})
}

// reconciles is how many OAuthClient reconciles the operators of this
// process have run.
func reconciles(t *testing.T) int {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "oauthclient" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int(total)
}

// openScope creates, in home, the server "auth" and its Scope for
// "orders:read", both admitting clients from every namespace.
func openScope(t testing.TB, home string) *oauthv1.Scope {
	t.Helper()
	srv := server(home, "auth")
	srv.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromAll
	sc := scope(home, "read", "auth", "orders:read")
	sc.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromAll
	create(t, srv, sc)
	return sc
}
