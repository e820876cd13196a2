package operatormetrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/kubescheme"
)

func withReady(status metav1.ConditionStatus, reason string) []metav1.Condition {
	return []metav1.Condition{{Type: oauthv1.ConditionReady, Status: status, Reason: reason}}
}

// TestObjectsCountsByReadiness: clients and servers are counted by their
// Ready condition's status and reason, one series per pair, and a client
// the operator has not reconciled yet counts as Unknown/NotReconciled.
func TestObjectsCountsByReadiness(t *testing.T) {
	scheme, err := kubescheme.New()
	if err != nil {
		t.Fatal(err)
	}
	client := func(name string, conds []metav1.Condition) *oauthv1.OAuthClient {
		return &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Status: oauthv1.OAuthClientStatus{Conditions: conds}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		client("a", withReady(metav1.ConditionTrue, "Ready")),
		client("b", withReady(metav1.ConditionTrue, "Ready")),
		client("c", withReady(metav1.ConditionFalse, "UnknownScope")),
		client("d", nil),
		&oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "gatehouse"},
			Status: oauthv1.AuthorizationServerStatus{Conditions: withReady(metav1.ConditionFalse, "InvalidKeys")}},
	).Build()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&Objects{Reader: c})
	want := `
# HELP gatehouse_authorizationservers AuthorizationServers by the status (True, False, Unknown) and reason of their Ready condition.
# TYPE gatehouse_authorizationservers gauge
gatehouse_authorizationservers{reason="InvalidKeys",status="False"} 1
# HELP gatehouse_oauthclients OAuthClients by the status (True, False, Unknown) and reason of their Ready condition.
# TYPE gatehouse_oauthclients gauge
gatehouse_oauthclients{reason="NotReconciled",status="Unknown"} 1
gatehouse_oauthclients{reason="Ready",status="True"} 2
gatehouse_oauthclients{reason="UnknownScope",status="False"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
