package config

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	"github.com/gatehouse-dev/gatehouse/server/identity"
)

// upstreamTimeout bounds each request to an upstream identity provider:
// a login waits at most this long for a provider that does not answer.
const upstreamTimeout = 10 * time.Second

// identityCache keeps each provider's Source from one build to the next
// while its spec and Secrets are unchanged, so that an OpenID Provider's
// discovery document, fetched at the first login, is not fetched again on
// every configuration change.
type identityCache map[string]cachedSource

type cachedSource struct {
	fingerprint string
	source      identity.Source
}

// IdentitySecretNames are the Secrets the AuthorizationServer's identity
// providers read.
func IdentitySecretNames(as *oauthv1.AuthorizationServer) []string {
	var names []string
	for i := range as.Spec.IdentityProviders {
		names = append(names, as.Spec.IdentityProviders[i].SecretNames()...)
	}
	return names
}

// buildIdentity makes the snapshot's identity sources: the users Secret
// first, then the providers in spec order. A provider whose Secrets are
// missing is still listed (its people's grants go on) but cannot log
// anyone in; the problem says why.
func (b *Builder) buildIdentity(s *Snapshot, as *oauthv1.AuthorizationServer, secrets map[string]*corev1.Secret) {
	var sources []identity.Source
	if s.Users != nil {
		sources = append(sources, identity.SecretSource{Dir: s.Users})
	}
	next := identityCache{}
	for i := range as.Spec.IdentityProviders {
		p := &as.Spec.IdentityProviders[i]
		fp := fingerprint(p, secrets)
		if c, ok := b.identity[p.Name]; ok && c.fingerprint == fp {
			next[p.Name] = c
			sources = append(sources, c.source)
			continue
		}
		src, err := NewIdentitySource(p, secrets)
		if err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("identity provider %s: %v", p.Name, err))
		}
		next[p.Name] = cachedSource{fingerprint: fp, source: src}
		sources = append(sources, src)
	}
	b.identity = next
	s.Identity = identity.NewSet(sources...)
	for i := range as.Spec.IdentityProviders {
		p := &as.Spec.IdentityProviders[i]
		if every, grace := p.RecheckTiming(); every > 0 {
			if s.Rechecks == nil {
				s.Rechecks = map[string]Recheck{}
			}
			s.Rechecks[p.Name] = Recheck{Interval: every, Grace: grace}
		}
		c := meta.FindStatusCondition(as.Status.Conditions, oauthv1.ConditionIdentityProviderPrefix+p.Name)
		if c != nil && c.Status == metav1.ConditionFalse && c.Reason == oauthv1.ReasonIdentityProviderUnreachable {
			if s.Unreachable == nil {
				s.Unreachable = map[string]string{}
			}
			s.Unreachable[p.Name] = c.Message
		}
	}
}

// Recheck is when a refresh asks an identity provider about the person
// again: once the last answer is Interval old; while the provider cannot
// be asked, the last answer stands until it is Grace old.
type Recheck struct {
	Interval, Grace time.Duration
}

// RecheckOf returns provider's re-check timing; ok is false when its
// people are not re-checked.
func (s *Snapshot) RecheckOf(provider string) (Recheck, bool) {
	r, ok := s.Rechecks[provider]
	return r, ok
}

// IdentitySet returns the snapshot's identity sources; for a snapshot
// made by hand (tests), the users Secret alone.
func (s *Snapshot) IdentitySet() *identity.Set {
	if s.Identity != nil {
		return s.Identity
	}
	if s.Users != nil {
		return identity.NewSet(identity.SecretSource{Dir: s.Users})
	}
	return identity.NewSet()
}

// upstreamSubject answers Subject for a person from the provider named
// name: active while the provider is configured (upstreams are never
// asked outside login), removed with it.
func (s *Snapshot) upstreamSubject(name string) SubjectStatus {
	if s.IdentitySet().Has(name) {
		return SubjectActive
	}
	return SubjectRemoved
}

func fingerprint(p *oauthv1.IdentityProvider, secrets map[string]*corev1.Secret) string {
	spec, _ := json.Marshal(p)
	fp := string(spec)
	for _, n := range p.SecretNames() {
		if sec := secrets[n]; sec != nil {
			fp += "\x00" + n + "@" + cmp.Or(sec.ResourceVersion, fmt.Sprint(sec.Data))
		}
	}
	return fp
}

// NewIdentitySource makes the Source of one provider from its Secrets (by
// name). On error it returns a Source that refuses every login with why.
func NewIdentitySource(p *oauthv1.IdentityProvider, secrets map[string]*corev1.Secret) (identity.Source, error) {
	display := cmp.Or(p.DisplayName, p.Name)
	broken := identity.Broken{ProviderName: p.Name, Display: display}
	switch {
	case p.OIDC != nil:
		every, _ := p.RecheckTiming()
		src, err := newOIDC(p.Name, display, p.OIDC, secrets, every > 0)
		if err != nil {
			broken.Err = err
			return &identity.BrokenRedirect{Broken: broken}, err
		}
		return src, nil
	case p.LDAP != nil:
		src, err := newLDAP(p.Name, display, p.LDAP, secrets)
		if err != nil {
			broken.Err = err
			return &identity.BrokenPassword{Broken: broken}, err
		}
		return src, nil
	}
	broken.Err = fmt.Errorf("neither oidc nor ldap is set")
	return &identity.BrokenPassword{Broken: broken}, broken.Err
}

func newOIDC(name, display string, o *oauthv1.OIDCIdentityProvider, secrets map[string]*corev1.Secret, recheckOn bool) (identity.Source, error) {
	secret, err := secretValue(secrets, &o.ClientSecretRef)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := caConfig(secrets, o.CASecretRef)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	return identity.NewOIDC(identity.OIDCConfig{
		Name: name, DisplayName: display, Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: string(secret),
		Scopes: o.Scopes, UsernameClaim: o.Claims.Username, EmailClaim: o.Claims.Email, GroupsClaim: o.Claims.Groups,
		AllowedGroups: o.AllowedGroups, OfflineAccess: recheckOn,
		HTTPClient: &http.Client{Transport: tracing.Transport(transport), Timeout: upstreamTimeout},
	}), nil
}

func newLDAP(name, display string, l *oauthv1.LDAPIdentityProvider, secrets map[string]*corev1.Secret) (identity.Source, error) {
	password, err := secretValue(secrets, &l.BindPasswordRef)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := caConfig(secrets, l.CASecretRef)
	if err != nil {
		return nil, err
	}
	cfg := identity.LDAPConfig{
		Name: name, DisplayName: display, Host: l.Host, StartTLS: l.Security == oauthv1.LDAPSecurityStartTLS,
		TLS: tlsConfig, BindDN: l.BindDN, BindPassword: string(password),
		UserBaseDN: l.UserSearch.BaseDN, UserFilter: cmp.Or(l.UserSearch.Filter, "(objectClass=person)"),
		UsernameAttr: cmp.Or(l.UserSearch.UsernameAttribute, "uid"), IDAttr: l.UserSearch.IDAttribute,
		EmailAttr: cmp.Or(l.UserSearch.EmailAttribute, "mail"), NameAttr: cmp.Or(l.UserSearch.NameAttribute, "cn"),
		Timeout: upstreamTimeout,
	}
	if g := l.GroupSearch; g != nil {
		cfg.GroupBaseDN, cfg.GroupFilter = g.BaseDN, cmp.Or(g.Filter, "(objectClass=groupOfNames)")
		cfg.MemberAttr, cfg.GroupNameAttr = cmp.Or(g.MemberAttribute, "member"), cmp.Or(g.NameAttribute, "cn")
	}
	return identity.NewLDAP(cfg), nil
}

// secretValue reads a Secret key. Errors name the Secret and key, never
// the value.
func secretValue(secrets map[string]*corev1.Secret, ref *oauthv1.SecretKeyReference) ([]byte, error) {
	sec := secrets[ref.Name]
	if sec == nil {
		return nil, fmt.Errorf("the Secret %s does not exist", ref.Name)
	}
	v, ok := sec.Data[ref.Key]
	if !ok || len(v) == 0 {
		return nil, fmt.Errorf("the Secret %s has no key %s", ref.Name, ref.Key)
	}
	return v, nil
}

// caConfig trusts the PEM CAs ref selects, or the system's without one.
func caConfig(secrets map[string]*corev1.Secret, ref *oauthv1.SecretKeyReference) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ref == nil {
		return cfg, nil
	}
	pem, err := secretValue(secrets, ref)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA: Secret %s key %s holds no PEM certificate", ref.Name, ref.Key)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// identitySecrets watches the Secrets the identity providers read, each by
// name (the server's Role grants Secrets by name only), stops watching
// those no longer named, and returns the ones listed so far. A watch that
// lists later triggers a rebuild. Callers hold k.mu.
func (k *Kube) identitySecrets(ctx context.Context, as *oauthv1.AuthorizationServer) map[string]*corev1.Secret {
	want := map[string]bool{}
	for _, n := range IdentitySecretNames(as) {
		want[n] = true
	}
	for n, w := range k.idp {
		if !want[n] {
			w.stop()
			delete(k.idp, n)
		}
	}
	if k.idp == nil {
		k.idp = map[string]*namedWatch{}
	}
	out := map[string]*corev1.Secret{}
	for n := range want {
		w, ok := k.idp[n]
		if !ok {
			w = k.watchSecret(ctx, n)
			k.idp[n] = w
		}
		if sec := w.get(k.namespace); sec != nil {
			out[n] = sec
		}
	}
	return out
}
