package controllers

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// The API schema refuses several replicas with Memory storage, so this
// reaches the reconciler's own guard directly: an object admitted by an
// older schema must get a condition and leave the Deployment alone.
func TestMemoryStorageRefusesReplicas(t *testing.T) {
	cp := testenv.Get(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gh-"}}
	if err := cp.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	srv := &oauthv1.AuthorizationServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "mem"},
		// An issuer of its own: this reconciler sees every test's servers.
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://127.0.0.1:8443/" + ns.Name},
	}
	if err := cp.Client.Create(ctx, srv); err != nil {
		t.Fatal(err)
	}
	r := &AuthorizationServerReconciler{Client: cp.Client, APIReader: cp.Client, Clock: RealClock{}, ServerImage: "gatehouse:test"}
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(srv)}); err != nil {
		t.Fatal(err)
	}
	dep := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: ns.Name, Name: ServerObjectName(srv)}
	if err := cp.Client.Get(ctx, key, dep); err != nil {
		t.Fatal(err)
	}
	rv := dep.ResourceVersion

	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(srv), srv); err != nil {
		t.Fatal(err)
	}
	three := int32(3)
	srv.Spec.Replicas = &three // as an older schema might have admitted
	if err := r.reconcileRuntime(ctx, srv); err != nil {
		t.Fatal(err)
	}
	summarizeServerReady(srv) // as Reconcile does before patching status
	c := meta.FindStatusCondition(srv.Status.Conditions, oauthv1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != oauthv1.ReasonUnsupportedReplicas {
		t.Fatalf("Ready = %+v, want False/%s", c, oauthv1.ReasonUnsupportedReplicas)
	}
	if err := cp.Client.Get(ctx, key, dep); err != nil {
		t.Fatal(err)
	}
	if dep.ResourceVersion != rv || *dep.Spec.Replicas != 1 {
		t.Errorf("the Deployment was changed: replicas %d", *dep.Spec.Replicas)
	}
}

// The token server gets the default resources unless spec.resources says
// otherwise, and then exactly what it says.
func TestServerResources(t *testing.T) {
	r := &AuthorizationServerReconciler{ServerImage: "gatehouse:test"}
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "auth"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://127.0.0.1:8443/auth"}}
	dep := &appsv1.Deployment{}
	r.mutateDeployment(srv, dep, 1)
	got := dep.Spec.Template.Spec.Containers[0].Resources
	if got.Limits.Memory().Cmp(resource.MustParse("512Mi")) < 0 || got.Requests.Memory().IsZero() || got.Requests.Cpu().IsZero() {
		t.Errorf("default resources %+v: want requests and at least a 512Mi memory limit", got)
	}
	own := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}
	srv.Spec.Resources = &own
	r.mutateDeployment(srv, dep, 1)
	if got := dep.Spec.Template.Spec.Containers[0].Resources; !equality.Semantic.DeepEqual(got, own) {
		t.Errorf("spec.resources %+v became %+v", own, got)
	}
}
