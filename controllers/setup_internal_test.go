package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

func TestTrimForCache(t *testing.T) {
	fields := []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}
	annotations := map[string]string{lastApplied: `{"spec":{}}`, oauthv1.AnnotationRotateSecret: "v1"}
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "web", ManagedFields: fields, Annotations: annotations}}
	got, err := trimForCache(oc)
	if err != nil {
		t.Fatal(err)
	}
	trimmed := got.(*oauthv1.OAuthClient)
	if trimmed.ManagedFields != nil {
		t.Error("managedFields kept in the cache")
	}
	if _, ok := trimmed.Annotations[lastApplied]; ok {
		t.Error("kubectl's last-applied copy kept in the cache")
	}
	if trimmed.Annotations[oauthv1.AnnotationRotateSecret] != "v1" {
		t.Error("an annotation the operator reads was dropped")
	}
	if _, ok := annotations[lastApplied]; !ok {
		t.Error("the original annotation map was changed in place")
	}

	// Only the Gatehouse kinds lose last-applied: other objects may be
	// written back whole.
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ManagedFields: fields, Annotations: map[string]string{lastApplied: "{}"}},
		Data: map[string][]byte{"client_secret": []byte("s")}}
	got, _ = trimForCache(sec)
	if s := got.(*corev1.Secret); s.ManagedFields != nil || s.Annotations[lastApplied] != "{}" || string(s.Data["client_secret"]) != "s" {
		t.Errorf("Secret trimmed to %+v", s.ObjectMeta)
	}
}
