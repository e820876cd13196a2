package controllers_test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func postgresServer(ns, name string, replicas int32) *oauthv1.AuthorizationServer {
	srv := server(ns, name)
	srv.Spec.Replicas = ptr(replicas)
	srv.Spec.Storage = oauthv1.StorageSpec{Type: oauthv1.StoragePostgres, Postgres: &oauthv1.PostgresStorage{
		URLSecretRef: oauthv1.SecretKeyReference{Name: "db", Key: "url"},
	}}
	return srv
}

// scaleTo sets the server's replicas through its scale subresource, as
// `kubectl scale` and a HorizontalPodAutoscaler do.
func scaleTo(t *testing.T, srv *oauthv1.AuthorizationServer, replicas int32) error {
	t.Helper()
	sc := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	return testenv.Get(t).Client.SubResource("scale").Update(context.Background(), srv, client.WithSubResourceBody(sc))
}

// waitDeleted waits until obj does not exist.
func waitDeleted(t *testing.T, obj client.Object) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() error {
		err := testenv.Get(t).Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("%T %s still there (%v)", obj, obj.GetName(), err)
	})
}

func waitExists(t *testing.T, obj client.Object) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() error {
		return testenv.Get(t).Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
	})
}

// podsMatch fails unless sel selects the token-server pods of dep.
func podsMatch(t *testing.T, what string, sel *metav1.LabelSelector, dep *appsv1.Deployment) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("%s selector: %v", what, err)
	}
	if s.Empty() || !s.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("%s selector %s does not select the pods (%v)", what, s, dep.Spec.Template.Labels)
	}
}

func controlledBy(t *testing.T, obj client.Object, srv *oauthv1.AuthorizationServer) {
	t.Helper()
	get(t, srv)
	if !metav1.IsControlledBy(obj, srv) {
		t.Errorf("%T %s is not controlled by the AuthorizationServer: %+v", obj, obj.GetName(), obj.GetOwnerReferences())
	}
}

// From two replicas on, the operator writes a PodDisruptionBudget that
// lets one token-server pod at a time go, and removes it at one replica;
// the scale subresource (kubectl scale, an HPA) drives it, and reports
// the selector an HPA uses to find the pods.
func TestPodDisruptionBudgetFromTwoReplicas(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	srv := postgresServer(ns, "ha", 1)
	create(t, srv)
	waitCondition(t, srv, oauthv1.ConditionPolicies, metav1.ConditionTrue, oauthv1.ReasonPoliciesWritten)
	name := controllers.ServerObjectName(srv)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := testenv.Get(t).Client.Get(context.Background(), client.ObjectKeyFromObject(pdb), pdb); !apierrors.IsNotFound(err) {
		t.Fatalf("a PodDisruptionBudget at one replica (%v)", err)
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	get(t, dep)
	spread := dep.Spec.Template.Spec.TopologySpreadConstraints
	if len(spread) != 2 || spread[0].TopologyKey != corev1.LabelHostname || spread[1].TopologyKey != corev1.LabelTopologyZone ||
		spread[0].WhenUnsatisfiable != corev1.ScheduleAnyway || spread[1].WhenUnsatisfiable != corev1.ScheduleAnyway {
		t.Errorf("topology spread = %+v, want nodes and zones, ScheduleAnyway", spread)
	}
	for _, c := range spread {
		podsMatch(t, "topology spread", c.LabelSelector, dep)
	}
	template := dep.Spec.Template.DeepCopy()

	if err := scaleTo(t, srv, 2); err != nil {
		t.Fatalf("scaling to 2 through the scale subresource: %v", err)
	}
	waitExists(t, pdb)
	if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget maxUnavailable %v minAvailable %v, want maxUnavailable 1", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
	}
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
		t.Errorf("unhealthyPodEvictionPolicy = %v, want AlwaysAllow", p)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		get(t, dep)
		if *dep.Spec.Replicas != 2 {
			return fmt.Errorf("Deployment has %d replicas", *dep.Spec.Replicas)
		}
		return nil
	})
	podsMatch(t, "PodDisruptionBudget", pdb.Spec.Selector, dep)
	controlledBy(t, pdb, srv)
	if !equalTemplates(template, &dep.Spec.Template) {
		t.Error("scaling from one replica to two changed the pod template, which rolls every pod")
	}
	waitCondition(t, srv, oauthv1.ConditionPolicies, metav1.ConditionTrue, oauthv1.ReasonPoliciesWritten)

	// What an HPA reads: the replicas and the pods' selector.
	sc := &autoscalingv1.Scale{}
	if err := testenv.Get(t).Client.SubResource("scale").Get(context.Background(), srv, sc); err != nil {
		t.Fatal(err)
	}
	sel, err := labels.Parse(sc.Status.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("scale status selector %q (%v) does not select the pods %v", sc.Status.Selector, err, dep.Spec.Template.Labels)
	}
	if sc.Spec.Replicas != 2 {
		t.Errorf("scale spec.replicas = %d, want 2", sc.Spec.Replicas)
	}

	// kubectl scale goes through the same subresource.
	cp := testenv.Get(t)
	out, err := exec.Command(cp.Kubectl(t), "--kubeconfig", cp.Kubeconfig, "-n", ns, "scale", "authorizationserver/ha", "--replicas=1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "scaled") {
		t.Fatalf("kubectl scale authorizationserver/ha --replicas=1: %v\n%s", err, out)
	}
	waitDeleted(t, pdb)
	waitCondition(t, srv, oauthv1.ConditionPolicies, metav1.ConditionTrue, oauthv1.ReasonPoliciesWritten)
}

func equalTemplates(a, b *corev1.PodTemplateSpec) bool {
	return a.String() == b.String()
}

// The scale subresource goes through the same validation as the spec: a
// server with Memory storage cannot be scaled past one replica.
func TestScaleSubresourceKeepsValidation(t *testing.T) {
	ns := newNamespace(t, nil)
	srv := server(ns, "mem")
	create(t, srv)
	err := scaleTo(t, srv, 2)
	if !apierrors.IsInvalid(err) {
		t.Fatalf("scaling a Memory-storage server to 2: %v, want Invalid", err)
	}
	get(t, srv)
	if *srv.Spec.Replicas != 1 {
		t.Errorf("replicas = %d after a refused scale", *srv.Spec.Replicas)
	}
}

// spec.network.policy makes the operator write a NetworkPolicy: the token
// port open, the metrics port for the server's namespace and the named
// ones, egress to DNS, the API server, PostgreSQL and upstreams only. It
// goes when the field goes.
func TestNetworkPolicyWhenAsked(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	srv := postgresServer(ns, "np", 1)
	srv.Spec.Network.Policy = &oauthv1.NetworkPolicySpec{MetricsNamespaces: []oauthv1.NamespaceName{"monitoring"}}
	create(t, srv)
	name := controllers.ServerObjectName(srv)
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	waitExists(t, np)
	controlledBy(t, np, srv)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	waitExists(t, dep)
	podsMatch(t, "NetworkPolicy", &np.Spec.PodSelector, dep)
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("policy types %v", np.Spec.PolicyTypes)
	}

	if got := fmt.Sprint(rulePorts(np.Spec.Ingress[0].Ports)); len(np.Spec.Ingress) != 2 || got != "[TCP/8080]" || len(np.Spec.Ingress[0].From) != 0 {
		t.Fatalf("ingress = %+v, want the token port from anywhere and the metrics port", np.Spec.Ingress)
	}
	metrics := np.Spec.Ingress[1]
	if got := fmt.Sprint(rulePorts(metrics.Ports)); got != "[TCP/9090]" || len(metrics.From) != 2 {
		t.Fatalf("metrics ingress = %+v", metrics)
	}
	if own := metrics.From[0]; own.PodSelector == nil || len(own.PodSelector.MatchLabels)+len(own.PodSelector.MatchExpressions) != 0 || own.NamespaceSelector != nil {
		t.Errorf("first metrics peer %+v, want every pod of the server's namespace", own)
	}
	nsSel, err := metav1.LabelSelectorAsSelector(metrics.From[1].NamespaceSelector)
	if err != nil || !nsSel.Matches(labels.Set{corev1.LabelMetadataName: "monitoring"}) || nsSel.Matches(labels.Set{corev1.LabelMetadataName: "apps"}) {
		t.Errorf("metrics namespaces selector %v (%v), want exactly namespace monitoring", nsSel, err)
	}

	var egress []string
	for _, e := range np.Spec.Egress {
		var to []string
		for _, p := range e.To {
			if p.IPBlock != nil {
				to = append(to, p.IPBlock.CIDR)
			} else {
				to = append(to, "peer")
			}
		}
		egress = append(egress, fmt.Sprint(rulePorts(e.Ports), to))
	}
	apiServer := apiServerRule(t)
	want := []string{"[UDP/53 TCP/53] []", apiServer, "[TCP/5432] []", "[TCP/443] []"}
	if !slices.Equal(egress, want) {
		t.Errorf("egress = %q, want %q", egress, want)
	}

	// A reconcile that changes nothing the policy depends on writes
	// nothing: no update per reconcile.
	rv := np.ResourceVersion
	if err := testenv.Get(t).Client.Patch(context.Background(), srv, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"network":{"forwardedHeader":"Forwarded"}}}`))); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, srv, oauthv1.ConditionPolicies, metav1.ConditionTrue, oauthv1.ReasonPoliciesWritten)
	get(t, np)
	if np.ResourceVersion != rv {
		t.Errorf("the NetworkPolicy was rewritten by a reconcile that changed nothing it depends on")
	}

	// Dropping the field drops the policy.
	if err := testenv.Get(t).Client.Patch(context.Background(), srv, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"network":{"policy":null}}}`))); err != nil {
		t.Fatal(err)
	}
	waitDeleted(t, np)
}

// apiServerRule is the egress rule the API server's EndpointSlice calls
// for, as egress in TestNetworkPolicyWhenAsked prints it.
func apiServerRule(t *testing.T) string {
	slice := &discoveryv1.EndpointSlice{}
	if err := testenv.Get(t).Client.Get(context.Background(), objKey("default", "kubernetes"), slice); err != nil {
		t.Logf("no EndpointSlice default/kubernetes (%v): want the fallback rule", err)
		return "[TCP/443 TCP/6443] []"
	}
	var ports, to []string
	for _, p := range slice.Ports {
		ports = append(ports, fmt.Sprintf("TCP/%d", *p.Port))
	}
	for _, e := range slice.Endpoints {
		for _, a := range e.Addresses {
			to = append(to, a+"/32")
		}
	}
	t.Logf("the API server is at %v %v", to, ports)
	return fmt.Sprint(ports, to)
}

func rulePorts(ports []networkingv1.NetworkPolicyPort) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = fmt.Sprintf("%s/%s", *p.Protocol, p.Port.String())
	}
	return out
}

// A PodDisruptionBudget or NetworkPolicy of the same name that the
// operator did not create is the user's: it is not changed, not deleted,
// and the Policies condition and a Warning Event say why the operator's
// own is missing. Once the user's is gone, the operator writes its own.
func TestPoliciesLeaveUsersObjectsAlone(t *testing.T) {
	ns := newNamespace(t, nil)
	op := startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	name := controllers.ServerObjectName(&oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Name: "mine"}})
	two := intstr.FromInt32(2)
	userPDB := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &two, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "own"}}},
	}
	userNP := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "own"}}},
	}
	create(t, userPDB, userNP)

	srv := postgresServer(ns, "mine", 2)
	srv.Spec.Network.Policy = &oauthv1.NetworkPolicySpec{}
	create(t, srv)
	waitCondition(t, srv, oauthv1.ConditionPolicies, metav1.ConditionFalse, oauthv1.ReasonPolicyNameTaken)
	t.Logf("Policies: %s", readCondition(srv, oauthv1.ConditionPolicies))
	waitEvent(t, ns, "mine", oauthv1.ReasonPolicyNameTaken)
	if ready := readyCondition(srv); ready != nil && ready.Reason == oauthv1.ReasonPolicyNameTaken {
		t.Errorf("Ready = %+v: a name taken by the user's policy must not make the server unready", ready)
	}

	unchanged := func() {
		t.Helper()
		for _, o := range []client.Object{userPDB.DeepCopy(), userNP.DeepCopy()} {
			rv := o.GetResourceVersion()
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
				t.Fatalf("the user's %T is gone: %v", o, err)
			}
			if o.GetResourceVersion() != rv || len(o.GetOwnerReferences()) != 0 {
				t.Errorf("the operator changed the user's %T %s", o, o.GetName())
			}
		}
	}
	unchanged()

	// Going to one replica without a policy removes only what is the
	// operator's: nothing here.
	if err := c.Patch(ctx, srv, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":1,"network":{"policy":null}}}`))); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, srv, oauthv1.ConditionPolicies, metav1.ConditionTrue, oauthv1.ReasonPoliciesWritten)
	unchanged()

	// Back to two, then the user deletes their budget: the operator,
	// which does not watch objects it did not label, finds out on its
	// next look and writes its own.
	if err := scaleTo(t, srv, 2); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, srv, oauthv1.ConditionPolicies, metav1.ConditionFalse, oauthv1.ReasonPolicyNameTaken)
	if err := c.Delete(ctx, userPDB); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		op.clock.Add(time.Minute)
		return conditionIs(t, srv, oauthv1.ConditionPolicies, metav1.ConditionTrue, oauthv1.ReasonPoliciesWritten)
	})
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	get(t, pdb)
	controlledBy(t, pdb, srv)
}

func readCondition(o client.Object, typ string) string {
	for _, c := range conditionsOf(o) {
		if c.Type == typ {
			return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	return "none"
}
