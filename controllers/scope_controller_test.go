package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestScopeServerNotFound(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	s := scope(ns, "orphan", "nowhere", "orders:read")
	create(t, s)
	waitCondition(t, s, oauthv1.ConditionReady, metav1.ConditionFalse, "ServerNotFound")
	if !strings.Contains(readyCondition(s).Message, "nowhere") {
		t.Errorf("message %q does not name the server", readyCondition(s).Message)
	}
	create(t, server(ns, "nowhere"))
	waitCondition(t, s, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
}

func TestScopeConflict(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	create(t, server(ns, "auth"), server(ns, "other"))
	first := scope(ns, "orders-read", "auth", "orders:read")
	create(t, first)
	waitCondition(t, first, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	// Creation timestamps have one-second resolution: make the second
	// Scope clearly younger. A sleep, not the fake clock: the API server
	// stamps creationTimestamp from its own clock, which no test can move.
	time.Sleep(1100 * time.Millisecond)
	second := scope(ns, "orders-read-again", "auth", "orders:read")
	elsewhere := scope(ns, "orders-read-other", "other", "orders:read")
	create(t, second, elsewhere)
	waitCondition(t, second, oauthv1.ConditionReady, metav1.ConditionFalse, "Conflict")
	if msg := readyCondition(second).Message; !strings.Contains(msg, "orders-read") || !strings.Contains(msg, `"orders:read"`) {
		t.Errorf("Conflict message %q should name the Scope that holds the name and the name", msg)
	}
	waitEvent(t, ns, "orders-read-again", "Conflict")
	// The same string on another server is no conflict, and the older
	// Scope keeps its name.
	waitCondition(t, elsewhere, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	waitCondition(t, first, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")

	// Deleting the holder hands the name over.
	if err := testenv.Get(t).Client.Delete(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, second, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
}

// The OpenID Connect scopes are built in: a Scope object claiming one is
// refused with a reason, rather than silently ignored by the server.
func TestScopeNamedLikeABuiltinScope(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	create(t, server(ns, "auth"))
	s := scope(ns, "my-email", "auth", "email")
	create(t, s)
	waitCondition(t, s, oauthv1.ConditionReady, metav1.ConditionFalse, "BuiltinScope")
	if msg := readyCondition(s).Message; !strings.Contains(msg, `"email"`) || !strings.Contains(msg, "built") {
		t.Errorf("message %q should say the scope is built in", msg)
	}
	waitEvent(t, ns, "my-email", "BuiltinScope")
}
