package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Two AuthorizationServers cannot answer for one issuer: the second one is
// refused with IssuerConflict and runs nothing, until the first goes.
func TestAuthorizationServerIssuerConflict(t *testing.T) {
	nsA, nsB := newNamespace(t, nil), newNamespace(t, nil)
	startOperator(t, newFakeClock(), nsA, nsB)
	c := testenv.Get(t).Client
	ctx := context.Background()

	first := server(nsA, "auth")
	create(t, first)
	waitKeysPublished(t, first)

	// Creation times have a resolution of a second; ties go by namespace
	// and name, which are random here, so make the first one older. A
	// sleep, not the fake clock: the API server stamps creationTimestamp
	// from its own clock, which no test can move.
	time.Sleep(1100 * time.Millisecond)
	second := server(nsB, "copy")
	second.Spec.Issuer = testIssuer + "/" // the same issuer to a relying party
	create(t, second)
	waitCondition(t, second, oauthv1.ConditionReady, metav1.ConditionFalse, "IssuerConflict")
	if msg := readyCondition(second).Message; !strings.Contains(msg, nsA+"/auth") {
		t.Errorf("message %q does not name the server that has the issuer", msg)
	}
	if err := c.Get(ctx, objKey(nsB, keyset.SecretName("copy")), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused server got signing keys (%v)", err)
	}
	if err := c.Get(ctx, objKey(nsB, controllers.ServerObjectName(second)), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused server got a Deployment (%v)", err)
	}
	// The first one is not disturbed.
	get(t, first)
	if c := readyCondition(first); c != nil && c.Reason == "IssuerConflict" {
		t.Errorf("the older server was refused: %s", c.Message)
	}

	// When the first goes, the second takes the issuer over.
	if err := c.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitKeysPublished(t, second)
}

// waitKeysPublished waits until a server is past every refusal and has
// signing keys (Ready depends on a Deployment that no kubelet runs here).
func waitKeysPublished(t *testing.T, srv *oauthv1.AuthorizationServer) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() error {
		get(t, srv)
		if c := meta.FindStatusCondition(srv.Status.Conditions, "KeysReady"); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("AuthorizationServer %s: KeysReady is %+v", srv.Name, c)
		}
		if c := readyCondition(srv); c != nil && c.Reason == "IssuerConflict" {
			return fmt.Errorf("AuthorizationServer %s: %s", srv.Name, c.Message)
		}
		return nil
	})
}
