// Package cachetrim is the informer transform of the operator's cache:
// what no reconcile reads is dropped, and what thousands of objects repeat
// is shared.
package cachetrim

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/intern"
)

// lastApplied is the annotation in which `kubectl apply` keeps a copy of
// the whole object it applied.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Transform is the informer transform of every cached object. It drops
// what no reconcile reads: managedFields (often larger than the object),
// and on the Gatehouse kinds kubectl's last-applied copy of the spec.
// Nothing is lost on write: the operator only patches these objects (a
// patch names the fields it changes), and an update without managedFields
// leaves the server's as they are.
//
// It also interns the strings that thousands of clients and their Secrets
// repeat (namespaces, label and data keys, scope names, the issuer's URLs),
// which the decoder gives each object a copy of. The values stay equal, so
// reads and patches see no difference. At 10,000 clients these copies, and
// the fields dropped above, were most of the operator's heap.
func Transform(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil
	}
	o.SetManagedFields(nil)
	switch o := o.(type) {
	case *oauthv1.OAuthClient:
		dropLastApplied(o)
		internClient(o)
	case *oauthv1.Scope, *oauthv1.AuthorizationServer:
		dropLastApplied(o)
	case *corev1.Secret:
		internSecret(o)
	}
	return o, nil
}

func dropLastApplied(o client.Object) {
	if _, ok := o.GetAnnotations()[lastApplied]; ok {
		a := maps.Clone(o.GetAnnotations())
		delete(a, lastApplied)
		o.SetAnnotations(a)
	}
}

// internMeta interns what objects of a kind share: the namespace, label
// and annotation keys, the values of labels that repeat, owner kinds.
func internMeta(m *metav1.ObjectMeta) {
	m.Namespace = intern.String(m.Namespace)
	m.Labels = intern.Keys(m.Labels, func(k string) bool { return k == oauthv1.LabelManagedBy })
	m.Annotations = intern.Keys(m.Annotations, func(k string) bool { return k == oauthv1.AnnotationWrittenKeys })
	for i := range m.OwnerReferences {
		ref := &m.OwnerReferences[i]
		ref.APIVersion, ref.Kind = intern.String(ref.APIVersion), intern.String(ref.Kind)
	}
}

func internClient(oc *oauthv1.OAuthClient) {
	internMeta(&oc.ObjectMeta)
	sp := &oc.Spec
	sp.ServerRef.Name, sp.ServerRef.Namespace = intern.String(sp.ServerRef.Name), intern.String(sp.ServerRef.Namespace)
	sp.ClientType = intern.String(sp.ClientType)
	sp.TokenEndpointAuthMethod = intern.String(sp.TokenEndpointAuthMethod)
	sp.IDTokenSignedResponseAlg = intern.String(sp.IDTokenSignedResponseAlg)
	sp.GrantTypes = intern.Strings(sp.GrantTypes)
	sp.Scopes = intern.Strings(sp.Scopes)
	sp.Audience = intern.Strings(sp.Audience)
	for i := range oc.Status.Conditions {
		c := &oc.Status.Conditions[i]
		c.Type, c.Reason = intern.String(c.Type), intern.String(c.Reason)
		c.Status = intern.String(c.Status)
	}
}

// sharedSecretValues are the keys of a client's Secret whose values every
// client of a server has alike.
var sharedSecretValues = map[string]bool{
	oauthv1.SecretKeyIssuer:                true,
	oauthv1.SecretKeyAuthorizationEndpoint: true,
	oauthv1.SecretKeyTokenEndpoint:         true,
	oauthv1.SecretKeyJWKSURI:               true,
	oauthv1.SecretKeyOIDCDiscoveryURL:      true,
	// Not alike for all, but few distinct values across thousands.
	oauthv1.ConnectionKeyGrantTypes:        true,
	oauthv1.ConnectionKeySubjectTokenTypes: true,
	oauthv1.ConnectionKeyActorTokenTypes:   true,
	oauthv1.ConnectionKeyResources:         true,
}

// internSecret interns a Secret's metadata and data keys, and shares the
// bytes of the values all clients of a server have alike. Shared bytes
// must never be written into; nothing does: the cache hands out deep
// copies (controller-runtime's default), and the event handlers only read.
func internSecret(s *corev1.Secret) {
	internMeta(&s.ObjectMeta)
	if len(s.Data) == 0 {
		return
	}
	data := make(map[string][]byte, len(s.Data))
	for k, v := range s.Data {
		if sharedSecretValues[k] {
			v = intern.ReadOnlyBytes(v)
		}
		data[intern.String(k)] = v
	}
	s.Data = data
}
