package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IdentityProvider is an upstream source of the people who log in: an
// OpenID Provider (the company's Okta, Entra ID, Keycloak, another
// Gatehouse…) or an LDAP directory. The token server calls it only while a
// person logs in; tokens, refreshes, introspection and the JWKS never wait
// on it.
//
// Subjects: a person from a provider gets the sub
// "idp:<name>:<hash>", where hash is the unpadded base64url SHA-256 of what
// identifies them upstream (the issuer and sub for OIDC, the idAttribute
// value for LDAP). The same upstream person always gets the same sub, two
// providers never share one, and the users Secret may not use the "idp:"
// prefix. Renaming a provider therefore gives its people new subjects.
//
// +kubebuilder:validation:XValidation:rule="[has(self.oidc), has(self.ldap)].exists_one(x, x)",message="an identity provider needs exactly one of oidc or ldap"
type IdentityProvider struct {
	// Name identifies the provider in subjects, status conditions and
	// logs: a DNS label such as "corp" or "ad". Changing it changes every
	// subject it produced.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="name must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit"
	Name string `json:"name"`

	// DisplayName is shown on the login page's button ("Sign in with
	// DisplayName"). Defaults to the name.
	//
	// +kubebuilder:validation:MaxLength=64
	// +optional
	DisplayName string `json:"displayName,omitempty"`

	// OIDC logs people in at an OpenID Provider with the authorization-code
	// flow (PKCE, state and nonce).
	//
	// +optional
	OIDC *OIDCIdentityProvider `json:"oidc,omitempty"`

	// LDAP checks usernames and passwords against an LDAP directory (also
	// Active Directory), typed into the login page's form.
	//
	// +optional
	LDAP *LDAPIdentityProvider `json:"ldap,omitempty"`

	// Recheck asks the provider again, at refresh, whether the person may
	// still sign in, so that someone removed or disabled upstream loses
	// access within minutes instead of when their refresh token expires.
	//
	// +kubebuilder:default={}
	// +optional
	Recheck UpstreamRecheck `json:"recheck,omitempty"`
}

// UpstreamRecheck is how often a refresh asks the identity provider about
// the person again. LDAP: the person's entry is searched for with
// userSearch's filter (so an entry that is gone, or no longer matches the
// filter, e.g. a disabled account, is refused) and their groups are read
// again. OpenID Connect: the provider's refresh token from the person's
// login is used (this server asks for offline_access when the provider
// offers it); a refused refresh token refuses the person, and the new ID
// token's (or userinfo's) claims update their groups. A provider that
// issued no refresh token cannot be asked: its people are not re-checked.
type UpstreamRecheck struct {
	// Interval: a refresh asks the provider when its last answer about
	// the person is older than this. Between 1m and 24h; 0s turns
	// re-checks off (people keep access until their refresh token
	// expires, whatever happens upstream). Default 10m.
	//
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="interval must be a duration such as 10m"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) == duration('0s') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="interval must be 0s (off) or between 1m and 24h"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// GracePeriod: while the provider cannot be reached, refreshes go on
	// with its last answer until that answer is this old; after that
	// they are refused (temporarily_unavailable) until the provider
	// answers again. At most 72h; one shorter than the interval counts as
	// the interval. Default 1h.
	//
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="gracePeriod must be a duration such as 1h"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('72h')",message="gracePeriod must be at most 72h"
	// +optional
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// Default re-check timing of an identity provider (UpstreamRecheck).
const (
	DefaultRecheckInterval    = 10 * time.Minute
	DefaultRecheckGracePeriod = time.Hour
)

// RecheckTiming is the provider's re-check interval (0: off) and grace
// period, defaults filled in.
func (p *IdentityProvider) RecheckTiming() (interval, grace time.Duration) {
	interval, grace = DefaultRecheckInterval, DefaultRecheckGracePeriod
	if d := p.Recheck.Interval; d != nil {
		interval = d.Duration
	}
	if d := p.Recheck.GracePeriod; d != nil {
		grace = d.Duration
	}
	return interval, max(grace, interval)
}

// OIDCIdentityProvider is an upstream OpenID Provider, found by discovery
// (OpenID Connect Discovery 1.0) from its issuer. Register this server at
// the provider as a confidential client with the redirect URI
// <spec.issuer>/login/callback.
type OIDCIdentityProvider struct {
	// Issuer is the provider's issuer URL; its discovery document is at
	// <issuer>/.well-known/openid-configuration. https, except on loopback
	// hosts.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && size(url(self).getHost()) > 0",message="issuer must be an absolute URL with a host, e.g. https://login.example.com"
	// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['127.0.0.1', '::1', 'localhost'])",message="issuer must use https; http is allowed only on loopback hosts (127.0.0.1, [::1], localhost)"
	Issuer string `json:"issuer"`

	// ClientID is this server's client_id at the provider.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ClientID string `json:"clientID"`

	// ClientSecretRef selects the Secret key (in the server's namespace)
	// holding the client secret.
	ClientSecretRef SecretKeyReference `json:"clientSecretRef"`

	// Scopes requested from the provider. openid is always requested.
	// Defaults to openid, profile and email.
	//
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	Scopes []string `json:"scopes,omitempty"`

	// Claims says which ID-token claims carry the username, email and
	// groups.
	//
	// +kubebuilder:default={}
	// +optional
	Claims OIDCClaimMappings `json:"claims,omitempty"`

	// AllowedGroups, when set, admits only people in at least one of these
	// groups (as the groups claim names them); others see "not allowed".
	//
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	AllowedGroups []string `json:"allowedGroups,omitempty"`

	// CASecretRef selects a Secret key holding PEM CA certificates to
	// trust for the provider instead of the system's (a private CA).
	//
	// +optional
	CASecretRef *SecretKeyReference `json:"caSecretRef,omitempty"`
}

// OIDCClaimMappings names the ID-token claims read for a person.
type OIDCClaimMappings struct {
	// Username is the claim shown as the username (preferred_username in
	// Gatehouse's own tokens). Default preferred_username; when the token
	// lacks it, email, then sub, is used.
	//
	// +kubebuilder:default=preferred_username
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Username string `json:"username,omitempty"`

	// Email is the claim with the email address. Default email; its
	// email_verified is passed on as the provider said.
	//
	// +kubebuilder:default=email
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Email string `json:"email,omitempty"`

	// Groups is the claim with the list of groups. Default groups.
	//
	// +kubebuilder:default=groups
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Groups string `json:"groups,omitempty"`
}

// LDAPSecurity is how the connection to the directory is protected.
//
// +kubebuilder:validation:Enum=TLS;StartTLS
type LDAPSecurity string

const (
	// LDAPSecurityTLS is LDAP over TLS (ldaps, usually port 636).
	LDAPSecurityTLS LDAPSecurity = "TLS"
	// LDAPSecurityStartTLS upgrades a plain connection (usually port 389)
	// with the StartTLS extended operation (RFC 4511 §4.14) before binding.
	LDAPSecurityStartTLS LDAPSecurity = "StartTLS"
)

// LDAPIdentityProvider is an LDAP directory. A login searches for the
// person with the service account (bindDN), then binds as the person with
// the password typed, then searches for their groups.
type LDAPIdentityProvider struct {
	// Host is the directory's host:port, e.g. ldap.example.com:636.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^[^:/\\s]+:[0-9]{1,5}$') || self.matches(r'^\\[[0-9a-fA-F:.]+\\]:[0-9]{1,5}$')",message="host must be host:port, e.g. ldap.example.com:636 or [::1]:636, without a scheme"
	Host string `json:"host"`

	// Security is TLS (default) or StartTLS. The connection is always
	// encrypted: passwords cross it.
	//
	// +kubebuilder:default=TLS
	// +optional
	Security LDAPSecurity `json:"security,omitempty"`

	// CASecretRef selects a Secret key holding PEM CA certificates to
	// trust for the directory instead of the system's.
	//
	// +optional
	CASecretRef *SecretKeyReference `json:"caSecretRef,omitempty"`

	// BindDN is the service account that searches the directory, e.g.
	// cn=gatehouse,ou=services,dc=example,dc=com.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	BindDN string `json:"bindDN"`

	// BindPasswordRef selects the Secret key holding BindDN's password.
	BindPasswordRef SecretKeyReference `json:"bindPasswordRef"`

	// UserSearch finds the person by username.
	UserSearch LDAPUserSearch `json:"userSearch"`

	// GroupSearch finds the person's groups. Without it people have no
	// groups.
	//
	// +optional
	GroupSearch *LDAPGroupSearch `json:"groupSearch,omitempty"`
}

// LDAPUserSearch finds a person: (&filter(usernameAttribute=typed name))
// under baseDN, the typed name escaped (RFC 4515).
type LDAPUserSearch struct {
	// BaseDN is where people are, e.g. ou=people,dc=example,dc=com.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	BaseDN string `json:"baseDN"`

	// Filter narrows the search, e.g. (objectClass=inetOrgPerson).
	//
	// +kubebuilder:default="(objectClass=person)"
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('(') && self.endsWith(')')",message="filter must be an LDAP filter in parentheses, e.g. (objectClass=person)"
	// +optional
	Filter string `json:"filter,omitempty"`

	// UsernameAttribute holds the username people type. Default uid
	// (sAMAccountName on Active Directory).
	//
	// +kubebuilder:default=uid
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z][-A-Za-z0-9]*$')",message="an attribute name is letters, digits and '-', starting with a letter"
	// +optional
	UsernameAttribute string `json:"usernameAttribute,omitempty"`

	// IDAttribute identifies the person for good; its value becomes the
	// subject (hashed). Default: usernameAttribute. entryUUID (OpenLDAP)
	// or objectGUID (Active Directory) survive renames.
	//
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z][-A-Za-z0-9]*$')",message="an attribute name is letters, digits and '-', starting with a letter"
	// +optional
	IDAttribute string `json:"idAttribute,omitempty"`

	// EmailAttribute holds the email address. Default mail.
	//
	// +kubebuilder:default=mail
	// +kubebuilder:validation:MaxLength=64
	// +optional
	EmailAttribute string `json:"emailAttribute,omitempty"`

	// NameAttribute holds the display name. Default cn.
	//
	// +kubebuilder:default=cn
	// +kubebuilder:validation:MaxLength=64
	// +optional
	NameAttribute string `json:"nameAttribute,omitempty"`
}

// LDAPGroupSearch finds groups: (&filter(memberAttribute=person's DN))
// under baseDN, the DN escaped.
type LDAPGroupSearch struct {
	// BaseDN is where groups are, e.g. ou=groups,dc=example,dc=com.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	BaseDN string `json:"baseDN"`

	// Filter narrows the search. Default (objectClass=groupOfNames).
	//
	// +kubebuilder:default="(objectClass=groupOfNames)"
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('(') && self.endsWith(')')",message="filter must be an LDAP filter in parentheses, e.g. (objectClass=groupOfNames)"
	// +optional
	Filter string `json:"filter,omitempty"`

	// MemberAttribute is the group attribute listing members' DNs.
	// Default member.
	//
	// +kubebuilder:default=member
	// +kubebuilder:validation:MaxLength=64
	// +optional
	MemberAttribute string `json:"memberAttribute,omitempty"`

	// NameAttribute is the group's name as it appears in the groups
	// claim. Default cn.
	//
	// +kubebuilder:default=cn
	// +kubebuilder:validation:MaxLength=64
	// +optional
	NameAttribute string `json:"nameAttribute,omitempty"`
}

// SecretNames are the Secrets (in the server's namespace) the provider
// reads: the token server watches them, and its Role may read them.
func (p *IdentityProvider) SecretNames() []string {
	var refs []*SecretKeyReference
	switch {
	case p.OIDC != nil:
		refs = []*SecretKeyReference{&p.OIDC.ClientSecretRef, p.OIDC.CASecretRef}
	case p.LDAP != nil:
		refs = []*SecretKeyReference{&p.LDAP.BindPasswordRef, p.LDAP.CASecretRef}
	}
	var names []string
	for _, r := range refs {
		if r != nil && r.Name != "" {
			names = append(names, r.Name)
		}
	}
	return names
}
