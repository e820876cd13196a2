package cachetrim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

func TestTransform(t *testing.T) {
	fields := []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}
	annotations := map[string]string{lastApplied: `{"spec":{}}`, oauthv1.AnnotationRotateSecret: "v1"}
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "web", ManagedFields: fields, Annotations: annotations}}
	got, err := Transform(oc)
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
	got, _ = Transform(sec)
	if s := got.(*corev1.Secret); s.ManagedFields != nil || s.Annotations[lastApplied] != "{}" || string(s.Data["client_secret"]) != "s" {
		t.Errorf("Secret trimmed to %+v", s.ObjectMeta)
	}
}

// Interning changes no value, and a cached Secret read and written by a
// reconcile never writes into the bytes other cached Secrets share.
func TestTransformInternsWithoutChangingValues(t *testing.T) {
	secret := func(client string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: client + "-oauth-client",
				Labels: map[string]string{oauthv1.LabelManagedBy: oauthv1.LabelManagedByValue, oauthv1.LabelClient: client}},
			Data: map[string][]byte{
				oauthv1.SecretKeyClientID:     []byte("id-" + client),
				oauthv1.SecretKeyClientSecret: []byte("secret-" + client),
				oauthv1.SecretKeyIssuer:       []byte("https://auth.example.com"),
			},
		}
	}
	a, _ := Transform(secret("web"))
	b, _ := Transform(secret("api"))
	sa, sb := a.(*corev1.Secret), b.(*corev1.Secret)
	if want := secret("web"); !equality.Semantic.DeepEqual(sa, want) {
		t.Errorf("trimmed Secret %+v, want %+v", sa, want)
	}
	if &sa.Data[oauthv1.SecretKeyIssuer][0] != &sb.Data[oauthv1.SecretKeyIssuer][0] {
		t.Error("the issuer's bytes are not shared between two clients' cached Secrets")
	}
	if &sa.Data[oauthv1.SecretKeyClientSecret][0] == &sb.Data[oauthv1.SecretKeyClientSecret][0] {
		t.Error("client secrets shared")
	}
	// What a reconcile reads is a deep copy: writing into it leaves the
	// shared bytes alone.
	read := sa.DeepCopy()
	read.Data[oauthv1.SecretKeyIssuer][0] = 'X'
	if string(sb.Data[oauthv1.SecretKeyIssuer]) != "https://auth.example.com" {
		t.Error("writing into a deep copy changed the shared bytes")
	}

	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "auth"}, Scopes: []oauthv1.ScopeName{"orders:read"}}}
	got, _ := Transform(oc.DeepCopy())
	if !equality.Semantic.DeepEqual(got, oc) {
		t.Errorf("trimmed client %+v, want %+v", got, oc)
	}
}
