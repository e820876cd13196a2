package controllers_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// An OAuthClient naming somebody else's Secret must not let the operator,
// which may write every Secret, take it over: not write into it, not own
// it, and above all not delete it with the client (the confused deputy
// behind issue 14, item 0).
func TestOAuthClientLeavesAnUnrelatedSecretAlone(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"))

	dbCreds := map[string][]byte{"username": []byte("app"), "password": []byte("db-password-not-for-oauth")}
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-db-credentials", Labels: map[string]string{"team": "payments"}},
		Data:       maps.Clone(dbCreds),
	})
	original := appSecret(t, ns, "app-db-credentials")

	oc := oauthClient(ns, "grabber", "", "auth")
	oc.Spec.SecretName = "app-db-credentials"
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "SecretNotAdoptable")
	msg := readyCondition(oc).Message
	for _, want := range []string{"app-db-credentials", "not created by Gatehouse", oauthv1.AnnotationAdoptBy + "=grabber"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Ready message %q should say %q", msg, want)
		}
	}
	reconciled(t, oc) // one more reconcile: still nothing may have been written
	assertUnchanged(t, original)
	if get(t, oc); len(oc.Status.SecretHashes) != 0 || oc.Status.SecretName != "" {
		t.Errorf("status took the Secret over: secretName %q, %d hashes", oc.Status.SecretName, len(oc.Status.SecretHashes))
	}

	// Deleting the client deletes nothing of the Secret's.
	if err := c.Delete(ctx, oc); err != nil {
		t.Fatal(err)
	}
	waitGone(t, oc)
	assertUnchanged(t, original)
}

// The owner of a Secret can hand it to a client with the adopt-by
// annotation: the operator then writes the credentials into it, but never
// owns it, and on deletion takes out only what it wrote.
func TestOAuthClientHostedSecret(t *testing.T) {
	ns := newNamespace(t, nil)
	op := startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"))

	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-config", Labels: map[string]string{"team": "payments"}},
		Data:       map[string][]byte{"database_url": []byte("postgres://db/app")},
	})
	oc := oauthClient(ns, "webapp", "", "auth")
	oc.Spec.SecretName = "app-config"
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "SecretNotAdoptable")

	// The Secret's owner hands it over. The operator does not watch that
	// Secret (it did not label it): the client's recheck finds the change.
	sec := appSecret(t, ns, "app-config")
	sec.Annotations = map[string]string{oauthv1.AnnotationAdoptBy: "webapp"}
	if err := c.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	waitRecheck(t, op, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	sec = appSecret(t, ns, "app-config")
	generated := string(sec.Data["client_secret"])
	if len(generated) < 43 || string(sec.Data["client_id"]) != ns+".webapp" || string(sec.Data["database_url"]) != "postgres://db/app" {
		t.Errorf("hosted Secret holds %v", keysOf(sec))
	}
	if ctl := metav1.GetControllerOf(sec); ctl != nil || len(sec.OwnerReferences) != 0 {
		t.Errorf("the operator took ownership of a hosted Secret: %+v", sec.OwnerReferences)
	}
	if err := checkHashes(oc, map[string]*time.Time{generated: nil}); err != nil {
		t.Error(err)
	}
	assertNoPlaintext(t, op, ns, generated)

	// Deletion removes the keys, label and annotations the operator added,
	// and nothing else.
	if err := c.Delete(ctx, oc); err != nil {
		t.Fatal(err)
	}
	waitGone(t, oc)
	sec = appSecret(t, ns, "app-config")
	if got := keysOf(sec); len(got) != 1 || got[0] != "database_url" {
		t.Errorf("after deletion the hosted Secret holds %v, want only database_url", got)
	}
	if want := map[string]string{"team": "payments"}; !maps.Equal(sec.Labels, want) {
		t.Errorf("after deletion labels are %v, want %v", sec.Labels, want)
	}
	if want := map[string]string{oauthv1.AnnotationAdoptBy: "webapp"}; !maps.Equal(sec.Annotations, want) {
		t.Errorf("after deletion annotations are %v, want the owner's own %v", sec.Annotations, want)
	}
}

// A Secret with a client_secret to adopt but a client_id (or issuer, ...)
// of its own is refused rather than overwritten.
func TestOAuthClientAdoptionKeepsForeignKeys(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	create(t, server(ns, "auth"))
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "github-oauth"},
		Data: map[string][]byte{
			"client_id":     []byte("Iv1.8a61f9b3a7aba766"),
			"client_secret": []byte(strings.Repeat("9f86d081884c7d659a2feaa0c55ad015", 2)),
		},
	})
	original := appSecret(t, ns, "github-oauth")
	oc := oauthClient(ns, "confused", "", "auth")
	oc.Spec.SecretName = "github-oauth"
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "SecretConflict")
	if msg := readyCondition(oc).Message; !strings.Contains(msg, "client_id") {
		t.Errorf("message %q should name the key", msg)
	}
	assertUnchanged(t, original)
	if err := testenv.Get(t).Client.Delete(context.Background(), oc); err != nil {
		t.Fatal(err)
	}
	waitGone(t, oc)
	assertUnchanged(t, original)
}

// assertUnchanged fails unless the Secret still exists exactly as it was.
func assertUnchanged(t *testing.T, was *corev1.Secret) {
	t.Helper()
	now := &corev1.Secret{}
	if err := testenv.Get(t).Client.Get(context.Background(), objKey(was.Namespace, was.Name), now); err != nil {
		t.Fatalf("Secret %s: %v", was.Name, err)
	}
	if now.ResourceVersion != was.ResourceVersion || !equality.Semantic.DeepEqual(now.Data, was.Data) ||
		!maps.Equal(now.Labels, was.Labels) || !maps.Equal(now.Annotations, was.Annotations) || len(now.OwnerReferences) != 0 {
		t.Errorf("Secret %s was changed: keys %v, labels %v, annotations %v, owners %+v",
			was.Name, keysOf(now), now.Labels, now.Annotations, now.OwnerReferences)
	}
}

func waitGone(t *testing.T, oc *oauthv1.OAuthClient) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := testenv.Get(t).Client.Get(context.Background(), objKey(oc.Namespace, oc.Name), &oauthv1.OAuthClient{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("OAuthClient %s still there (%v)", oc.Name, err)
		}
		return nil
	})
}
