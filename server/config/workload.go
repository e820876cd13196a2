package config

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
)

// TrustedIssuer is an issuer of spec.workloadIdentity.trustedIssuers whose
// tokens authenticate the clients bound to it.
type TrustedIssuer struct {
	Name   string
	Issuer string
	// Keys verify its tokens; nil when they cannot be had (Problems says
	// why), and then every token is refused.
	Keys        jwtverify.KeySet
	Audiences   []string
	MaxLifetime time.Duration
	// SingleUse: each token once, by its jti (spec.reuse SingleUse).
	SingleUse bool

	namespace string
	from      oauthv1.FromNamespaces
}

// Admits applies the issuer's allowedClients to a client's namespace as far
// as the server can: for Selector, which needs namespace labels, the
// operator's Ready verdict stands alone.
func (t *TrustedIssuer) Admits(namespace string) bool {
	switch t.from {
	case oauthv1.NamespacesFromAll, oauthv1.NamespacesFromSelector:
		return true
	default:
		return namespace == t.namespace
	}
}

// ClientAssertion is how a client without a secret proves itself: exactly
// one of its fields is set.
type ClientAssertion struct {
	// ServiceAccount: the client's projected service-account token.
	ServiceAccount *ServiceAccountBinding
	// Keys verify the assertions the client signs (private_key_jwt).
	Keys jwtverify.KeySet
	// Federated: a trusted issuer's token with this subject and claims.
	Federated *FederatedBinding
	// Problem, when set, is why the client's credential cannot be checked
	// (keys that do not parse); every assertion is refused.
	Problem string
}

// ServiceAccountBinding is the ServiceAccount a client authenticates as.
type ServiceAccountBinding struct {
	Namespace, Name string
	// Subject is system:serviceaccount:<namespace>:<name>.
	Subject string
	// UID is the ServiceAccount's UID the operator resolved; empty until
	// it has, and then no token is accepted.
	UID string
}

// FederatedBinding is a client's binding to a trusted issuer's subject.
type FederatedBinding struct {
	Issuer  string
	Subject string
	Claims  map[string]string
}

// ServiceAccountSubject is the sub of the service-account tokens of
// namespace/name.
func ServiceAccountSubject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// compileAssertion is the client's ClientAssertion, nil for a client with
// a secret (or none).
func compileAssertion(oc *oauthv1.OAuthClient, server *Snapshot) *ClientAssertion {
	a := oc.Spec.Authentication
	if a == nil {
		return nil
	}
	switch {
	case a.ServiceAccount != nil:
		return &ClientAssertion{ServiceAccount: &ServiceAccountBinding{
			Namespace: oc.Namespace, Name: a.ServiceAccount.Name,
			Subject: ServiceAccountSubject(oc.Namespace, a.ServiceAccount.Name),
			UID:     oc.Status.ServiceAccountUID,
		}}
	case a.Federated != nil:
		return &ClientAssertion{Federated: &FederatedBinding{
			Issuer: a.Federated.Issuer, Subject: a.Federated.Subject, Claims: maps.Clone(a.Federated.Claims),
		}}
	case a.PrivateKeyJWT != nil:
		keys, err := privateKeyJWTKeys(a.PrivateKeyJWT, oc.Status.PublicKeys, server.keySets, oc.Status.ClientID)
		if err != nil {
			return &ClientAssertion{Problem: err.Error()}
		}
		return &ClientAssertion{Keys: keys}
	}
	return &ClientAssertion{Problem: "spec.authentication names no credential"}
}

func privateKeyJWTKeys(p *oauthv1.PrivateKeyJWTAuthentication, published []oauthv1.JSONWebKey, reg *jwtverify.Registry, clientID string) (jwtverify.KeySet, error) {
	switch {
	case len(p.Keys) > 0:
		return StaticKeys(p.Keys)
	case p.SecretRef != nil:
		if len(published) == 0 {
			return nil, fmt.Errorf("the operator has not published the keys of Secret %s yet", p.SecretRef.Name)
		}
		return StaticKeys(published)
	case p.JWKSURI != "":
		if reg == nil {
			return nil, fmt.Errorf("jwksURI %s: no key fetcher in this process", p.JWKSURI)
		}
		return reg.Get(jwtverify.RemoteOptions{JWKSURI: p.JWKSURI, Name: "client " + clientID}, nil)
	}
	return nil, fmt.Errorf("privateKeyJWT names no keys")
}

// StaticKeys parses JSON Web Keys of the API into a key set.
func StaticKeys(keys []oauthv1.JSONWebKey) (*jwtverify.Static, error) {
	doc, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		return nil, err
	}
	return jwtverify.ParseJWKS(doc)
}

// buildWorkloadIdentity makes the snapshot's trusted issuers. The CA
// ConfigMaps come from configMaps, by name.
func (b *Builder) buildWorkloadIdentity(s *Snapshot, as *oauthv1.AuthorizationServer, configMaps map[string]*corev1.ConfigMap) {
	wi := &as.Spec.WorkloadIdentity
	s.ServiceAccountTokenMaxLifetime = as.ServiceAccountTokenMaxLifetime()
	s.AssertionMaxExpiresIn = as.AssertionMaxExpiresIn()
	s.TrustedIssuers = map[string]*TrustedIssuer{}
	for i := range wi.TrustedIssuers {
		ti := &wi.TrustedIssuers[i]
		t := &TrustedIssuer{
			Name: ti.Name, Issuer: ti.Issuer, Audiences: ti.AcceptedAudiences(as.Spec.Issuer),
			MaxLifetime: ti.TokenMaxLifetime(), SingleUse: ti.TokenReuse() == oauthv1.TokenSingleUse,
			namespace: as.Namespace, from: ti.AllowedClients.Namespaces.From,
		}
		keys, err := b.trustedIssuerKeys(ti, configMaps)
		if err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("trusted issuer %s: %v; its tokens are refused", ti.Name, err))
		} else {
			t.Keys = keys
		}
		s.TrustedIssuers[ti.Name] = t
	}
}

func (b *Builder) trustedIssuerKeys(ti *oauthv1.TrustedIssuer, configMaps map[string]*corev1.ConfigMap) (jwtverify.KeySet, error) {
	if len(ti.Keys) > 0 {
		return StaticKeys(ti.Keys)
	}
	if b.KeySets == nil {
		return nil, fmt.Errorf("no key fetcher in this process")
	}
	var ca []byte
	if ref := ti.CAConfigMapRef; ref != nil {
		cm := configMaps[ref.Name]
		if cm == nil {
			return nil, fmt.Errorf("CA ConfigMap %s does not exist", ref.Name)
		}
		v, ok := cm.Data[ref.Key]
		if !ok || v == "" {
			return nil, fmt.Errorf("CA ConfigMap %s has no key %s", ref.Name, ref.Key)
		}
		ca = []byte(v)
	}
	o := jwtverify.RemoteOptions{Issuer: ti.Issuer, JWKSURI: ti.JWKSURI, Name: "trusted issuer " + ti.Name}
	if ti.JWKSURI == "" {
		o.DiscoveryURL = strings.TrimSuffix(ti.Issuer, "/") + "/.well-known/openid-configuration"
	}
	return b.KeySets.Get(o, ca)
}

// TrustedIssuerConfigMapNames are the ConfigMaps the trusted issuers read
// (their CAs).
func TrustedIssuerConfigMapNames(as *oauthv1.AuthorizationServer) []string {
	var names []string
	for _, ti := range as.Spec.WorkloadIdentity.TrustedIssuers {
		if ti.CAConfigMapRef != nil {
			names = append(names, ti.CAConfigMapRef.Name)
		}
	}
	return names
}

// configMapNames are every ConfigMap the server reads: the trusted
// issuers' CA bundles and the brand's logo (branding.go).
func configMapNames(as *oauthv1.AuthorizationServer) []string {
	names := TrustedIssuerConfigMapNames(as)
	if ref := as.Spec.Branding.LogoConfigMapRef; ref != nil {
		names = append(names, ref.Name)
	}
	return names
}

// trustedIssuerConfigMaps watches the trusted issuers' CA ConfigMaps, each
// by name, stops watching those no longer named, and returns the ones
// listed so far. Callers hold k.mu.
func (k *Kube) trustedIssuerConfigMaps(ctx context.Context, as *oauthv1.AuthorizationServer) map[string]*corev1.ConfigMap {
	want := map[string]bool{}
	for _, n := range configMapNames(as) {
		want[n] = true
	}
	for n, w := range k.cas {
		if !want[n] {
			w.stop()
			delete(k.cas, n)
		}
	}
	if k.cas == nil {
		k.cas = map[string]*namedWatch{}
	}
	out := map[string]*corev1.ConfigMap{}
	for n := range want {
		w, ok := k.cas[n]
		if !ok {
			w = k.watchConfigMap(ctx, n)
			k.cas[n] = w
		}
		if cm := w.getConfigMap(k.namespace); cm != nil {
			out[n] = cm
		}
	}
	return out
}

// NewTrustedIssuer makes a TrustedIssuer, for snapshots built by hand;
// namespace is the AuthorizationServer's, from its allowedClients policy.
func NewTrustedIssuer(name, issuer string, keys jwtverify.KeySet, audiences []string, maxLifetime time.Duration,
	singleUse bool, namespace string, from oauthv1.FromNamespaces) *TrustedIssuer {
	return &TrustedIssuer{Name: name, Issuer: issuer, Keys: keys, Audiences: audiences, MaxLifetime: maxLifetime,
		SingleUse: singleUse, namespace: namespace, from: from}
}
