package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// podTemplate runs an app that reads the client's Secret from its
// environment.
func podTemplate(app, secret string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1",
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}}}},
	}
}

func deployment(ns, name, secret string, annotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, secret)},
	}
}

// templateRevision is the revision annotation of a workload's pod
// template, and its resourceVersion.
func templateRevision(t *testing.T, o client.Object) (string, string) {
	t.Helper()
	get(t, o)
	switch w := o.(type) {
	case *appsv1.Deployment:
		return w.Spec.Template.Annotations[oauthv1.AnnotationClientSecretRevision], w.ResourceVersion
	case *appsv1.StatefulSet:
		return w.Spec.Template.Annotations[oauthv1.AnnotationClientSecretRevision], w.ResourceVersion
	case *appsv1.DaemonSet:
		return w.Spec.Template.Annotations[oauthv1.AnnotationClientSecretRevision], w.ResourceVersion
	}
	t.Fatalf("not a workload: %T", o)
	return "", ""
}

// waitRevisionChange waits for a workload's pod template revision to
// differ from old, and returns it.
func waitRevisionChange(t *testing.T, o client.Object, old string) string {
	t.Helper()
	var now string
	testenv.Eventually(t, 10*time.Second, func() error {
		if now, _ = templateRevision(t, o); now == "" || now == old {
			return fmt.Errorf("%s %s: revision %q, not changed from %q", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), now, old)
		}
		return nil
	})
	return now
}

// Workloads that opt in with oauth.gatehouse.dev/restart-on-secret-rotation
// are rolled (their pod template annotated) when they opt in and whenever
// the secret of a client they name changes, by rotation or by a deleted
// Secret being regenerated; a workload that did not opt in, or names
// another client, is never written to; the revision carries no secret.
func TestWorkloadsRolledOnSecretRotation(t *testing.T) {
	ns := newNamespace(t, nil)
	op := startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"))
	web, other := oauthClient(ns, "web", "", "auth"), oauthClient(ns, "other", "", "auth")
	create(t, web, other)
	waitCondition(t, web, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	waitCondition(t, other, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	first := string(appSecret(t, ns, "web-oauth-client").Data["client_secret"])

	optIn := map[string]string{oauthv1.AnnotationRestartOnSecretRotation: "web"}
	opted := deployment(ns, "web", "web-oauth-client", optIn)
	bystander := deployment(ns, "bystander", "web-oauth-client", map[string]string{"team": "shop"})
	otherApp := deployment(ns, "other-app", "other-oauth-client", map[string]string{oauthv1.AnnotationRestartOnSecretRotation: "other"})
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker", Annotations: map[string]string{oauthv1.AnnotationRestartOnSecretRotation: "other, web"}},
		Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "worker"}}, Template: podTemplate("worker", "web-oauth-client")}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent", Annotations: optIn},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}}, Template: podTemplate("agent", "web-oauth-client")}}
	create(t, opted, bystander, otherApp, sts, ds)

	// Opting in rolls each once.
	rev := waitRevisionChange(t, opted, "")
	stsRev := waitRevisionChange(t, sts, "")
	dsRev := waitRevisionChange(t, ds, "")
	otherRev := waitRevisionChange(t, otherApp, "")
	if rev != dsRev || rev == stsRev {
		t.Errorf("revisions: web %s, agent %s (same clients), worker %s (two clients)", rev, dsRev, stsRev)
	}
	if got := opted.Annotations[oauthv1.AnnotationClientSecretRevision]; got != rev {
		t.Errorf("the Deployment's own annotation %q, its template's %q", got, rev)
	}
	_, bystanderVersion := templateRevision(t, bystander)
	_, otherVersion := templateRevision(t, otherApp)

	// A rotation of web's secret rolls exactly the workloads naming web.
	setAnnotation(t, web, oauthv1.AnnotationRotateSecret, "2030-01-01")
	second := waitSecretChange(t, ns, "web-oauth-client", first)
	rev2 := waitRevisionChange(t, opted, rev)
	waitRevisionChange(t, sts, stsRev)
	waitRevisionChange(t, ds, dsRev)
	time.Sleep(time.Second)
	if r, v := templateRevision(t, otherApp); r != otherRev || v != otherVersion {
		t.Errorf("a workload naming only another client was written to: revision %s, resourceVersion %s -> %s", r, otherVersion, v)
	}
	if r, v := templateRevision(t, bystander); r != "" || v != bystanderVersion {
		t.Errorf("a workload that did not opt in was written to (revision %q)", r)
	}
	if !eventSeen(t, ns, "web", "RestartedForClientSecret") {
		t.Error("no Event on the restarted Deployment")
	}

	// Deleting the Secret regenerates the secret (revoking the old one at
	// once): the workload is rolled again.
	if err := c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-oauth-client"}}); err != nil {
		t.Fatal(err)
	}
	third := waitSecretChange(t, ns, "web-oauth-client", second)
	waitRevisionChange(t, opted, rev2)

	// A re-reconcile with nothing new writes nothing.
	_, v := templateRevision(t, opted)
	poke(t, web)
	time.Sleep(time.Second)
	if _, again := templateRevision(t, opted); again != v {
		t.Error("an unchanged secret restarted the workload again")
	}

	// A name of no client in the namespace is reported, not guessed at.
	typo := deployment(ns, "typo", "web-oauth-client", map[string]string{oauthv1.AnnotationRestartOnSecretRotation: "wbe"})
	create(t, typo)
	testenv.Eventually(t, 10*time.Second, func() error {
		if !eventSeen(t, ns, "typo", "OAuthClientNotFound") {
			return fmt.Errorf("no OAuthClientNotFound Event")
		}
		return nil
	})
	if r, _ := templateRevision(t, typo); r != "" {
		t.Errorf("a workload naming no existing client was restarted (%s)", r)
	}
	for _, s := range []string{first, second, third} {
		assertNoPlaintext(t, op, ns, s)
	}
}

func eventSeen(t *testing.T, ns, name, reason string) bool {
	for _, e := range eventsFor(t, ns, name) {
		if e.Reason == reason {
			return true
		}
	}
	return false
}
