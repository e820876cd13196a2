package controllers_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// A client whose own access- or ID-token lifetime is longer than the
// server's keeps a retired signing key published for that long (plus the
// clock skew), so none of its tokens outlives the key that signed it; a
// client of another server does not.
func TestRetentionCoversClientLifetimes(t *testing.T) {
	ns := newNamespace(t, nil)
	cp := testenv.Get(t)
	ctx := context.Background()
	clock := newFakeClock()
	r := &controllers.AuthorizationServerReconciler{Client: cp.Client, APIReader: cp.Client, Clock: clock, ServerImage: "gatehouse:test"}
	srv := server(ns, "keys")
	srv.Spec.Issuer = testIssuer + "/" + ns
	srv.Spec.Signing.RotationInterval = &metav1.Duration{Duration: 2 * time.Hour}
	srv.Spec.Signing.PrepublishPeriod = &metav1.Duration{Duration: 30 * time.Minute}
	srv.Spec.Tokens.AccessToken = &metav1.Duration{Duration: 10 * time.Minute}
	long := oauthClient(ns, "long", "", "keys")
	long.Spec.TokenLifetimes = &oauthv1.ClientTokenLifetimes{AccessToken: &metav1.Duration{Duration: 3 * time.Hour}, IDToken: &metav1.Duration{Duration: 6 * time.Hour}}
	other := oauthClient(ns, "other", "", "elsewhere")
	other.Spec.TokenLifetimes = &oauthv1.ClientTokenLifetimes{AccessToken: &metav1.Duration{Duration: 20 * time.Hour}}
	create(t, srv, long, other)

	retention := func() time.Duration {
		t.Helper()
		for range 10 {
			res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: objKey(ns, "keys")})
			if err != nil {
				t.Fatal(err)
			}
			set, _ := readKeySet(t, ns)
			for _, k := range set.Keys {
				if k.State == keyset.StateRetired && k.RetiredAt != nil && k.RemoveAfter != nil {
					return k.RemoveAfter.Sub(*k.RetiredAt)
				}
			}
			clock.Add(res.RequeueAfter)
		}
		t.Fatal("no key retired")
		return 0
	}
	if got, want := retention(), 6*time.Hour+controllers.ClockSkew; got != want {
		t.Errorf("a retired key stays %s, want the client's ID-token lifetime plus the skew, %s", got, want)
	}
}
