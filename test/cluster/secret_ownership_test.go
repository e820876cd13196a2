package cluster

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// TestOperatorNeverDeletesForeignSecrets replays the confused-deputy attack
// with the garbage collector running (kube-controller-manager): an
// OAuthClient naming somebody's Secret must not get the operator to write
// into it, own it, or delete it, neither directly nor through the garbage
// collector once the client is gone. A Secret handed over with the adopt-by
// annotation keeps its owner's keys; the operator's own Secret goes with
// its client.
func TestOperatorNeverDeletesForeignSecrets(t *testing.T) {
	s := get(t)
	ctx := t.Context()
	s.applyT(t, ns, `apiVersion: v1
kind: Secret
metadata: {name: app-db-credentials, labels: {team: payments}}
stringData: {username: app, password: db-password-not-for-oauth}
---
apiVersion: v1
kind: Secret
metadata:
  name: app-config
  annotations: {oauth.gatehouse.dev/adopt-by: hosted}
stringData: {database_url: "postgres://db/app"}
---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: grabber}
spec:
  serverRef: {name: gatehouse}
  grantTypes: [client_credentials]
  secretName: app-db-credentials
---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: hosted}
spec:
  serverRef: {name: gatehouse}
  grantTypes: [client_credentials]
  secretName: app-config
---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: own-secret}
spec:
  serverRef: {name: gatehouse}
  grantTypes: [client_credentials]
`)
	s.kubectlT(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "oauthclient/hosted", "oauthclient/own-secret")
	waitReason(t, s, "grabber", "SecretNotAdoptable")

	db := s.secret(t, ns, "app-db-credentials")
	if got := slices.Sorted(maps.Keys(db)); !slices.Equal(got, []string{"password", "username"}) {
		t.Errorf("app-db-credentials holds %v, want only its own keys", got)
	}
	if cfg := s.secret(t, ns, "app-config"); len(cfg["client_secret"]) == 0 {
		t.Error("the hosted Secret did not get a client secret")
	}
	for _, name := range []string{"app-db-credentials", "app-config"} {
		var sec corev1.Secret
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sec); err != nil {
			t.Fatal(err)
		}
		if len(sec.OwnerReferences) != 0 {
			t.Errorf("Secret %s has owner references %+v: the garbage collector would delete it with its owner", name, sec.OwnerReferences)
		}
	}

	// A canary owned by all three clients: the garbage collector deletes
	// it only once it has seen every one of them go, so its deletion is
	// the proof that the collector has acted on the three deletions, and
	// on anything it thought those clients owned.
	canary := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "gc-canary", Namespace: ns}}
	for _, name := range []string{"grabber", "hosted", "own-secret"} {
		var oc oauthv1.OAuthClient
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &oc); err != nil {
			t.Fatal(err)
		}
		canary.OwnerReferences = append(canary.OwnerReferences, metav1.OwnerReference{
			APIVersion: oauthv1.GroupVersion.String(), Kind: "OAuthClient", Name: oc.Name, UID: oc.UID,
		})
	}
	if err := s.c.Create(ctx, canary); err != nil {
		t.Fatal(err)
	}

	s.kubectlT(t, "delete", "-n", ns, "--wait=true", "--timeout=60s", "oauthclient/grabber", "oauthclient/hosted", "oauthclient/own-secret")
	testenv.Eventually(t, time.Minute, func() error {
		for _, obj := range []client.Object{canary, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "own-secret-oauth-client"}}} {
			err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: obj.GetName()}, obj)
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("the garbage collector has not deleted %T %s, owned by the deleted clients, yet (%v)", obj, obj.GetName(), err)
			}
		}
		return nil
	})
	if got := s.secret(t, ns, "app-db-credentials"); !maps.EqualFunc(got, db, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("after the client's deletion app-db-credentials holds %v, want it unchanged", slices.Sorted(maps.Keys(got)))
	}
	if got := slices.Sorted(maps.Keys(s.secret(t, ns, "app-config"))); !slices.Equal(got, []string{"database_url"}) {
		t.Errorf("after the client's deletion app-config holds %v, want only database_url", got)
	}
	s.kubectlT(t, "delete", "-n", ns, "secret/app-db-credentials", "secret/app-config")
}

func waitReason(t *testing.T, s *suite, name, reason string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		var oc oauthv1.OAuthClient
		if err := s.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &oc); err != nil {
			return err
		}
		c := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady)
		if c == nil || c.Reason != reason {
			return fmt.Errorf("OAuthClient %s: Ready is %+v, want reason %s", name, c, reason)
		}
		return nil
	})
}
