package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthorizationServerSpec describes one OAuth 2.0 authorization server: its
// issuer identity, signing keys, token lifetimes, storage, the people who can
// log in, and which namespaces may register clients with it.
//
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas <= 1 || (has(self.storage.type) && self.storage.type == 'Postgres')",message="Memory storage keeps codes and refresh tokens inside one process: use storage type Postgres to run more than one replica"
// +kubebuilder:validation:XValidation:rule="!has(self.tls) || self.issuer.startsWith('https://')",message="spec.tls makes the server speak HTTPS: the issuer must be an https URL"
type AuthorizationServerSpec struct {
	// Issuer is the server's identifier and the base URL of its endpoints
	// (RFC 8414 §2), e.g. https://auth.example.com. It is the `iss` claim of
	// every token. It must use https, except on loopback hosts (127.0.0.1,
	// [::1], localhost) where http is allowed for development, and must not
	// have a query or fragment.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && size(url(self).getHost()) > 0",message="issuer must be an absolute URL with a host, e.g. https://auth.example.com"
	// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['127.0.0.1', '::1', 'localhost'])",message="issuer must use https; http is allowed only on loopback hosts (127.0.0.1, [::1], localhost)"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="issuer must not have a query or fragment (RFC 8414 §2)"
	Issuer string `json:"issuer"`

	// Replicas is the number of token-server pods. More than one requires
	// Postgres storage; from two on, the operator also writes a
	// PodDisruptionBudget for them. The scale subresource sets it, so a
	// HorizontalPodAutoscaler can target the AuthorizationServer.
	//
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Image is the token server's container image. It defaults to the image
	// the operator itself runs, so operator and server are always one version.
	//
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// Resources are the token-server container's compute resources. The
	// operator sets modest requests when this is empty.
	//
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// Signing configures the keys that sign access tokens.
	//
	// +kubebuilder:default={}
	// +optional
	Signing SigningSpec `json:"signing,omitempty"`

	// Tokens sets the lifetimes of the tokens and codes the server issues.
	//
	// +kubebuilder:default={}
	// +optional
	Tokens TokenLifetimes `json:"tokens,omitempty"`

	// RefreshTokenRetry says which clients may retry a refresh whose answer
	// they never got: the rotation committed, but the client was answered
	// 503 (a database crash or failover between the commit and the
	// answer) or lost the connection. Within 2 minutes of the rotation,
	// while the successor is unused, such a retry gets that same successor
	// instead of counting as reuse, which would revoke the whole family.
	// ConfidentialClients (default): clients that authenticate, where a
	// stolen refresh token is useless without the client's credential.
	// AllClients adds public clients: a thief presenting a rotated token
	// in that window gets the successor too, and the theft is detected
	// only when both have used it. Disabled: every second presentation is
	// reuse, and a lost answer costs the person a new sign-in.
	//
	// +kubebuilder:default=ConfidentialClients
	// +optional
	RefreshTokenRetry RefreshTokenRetry `json:"refreshTokenRetry,omitempty"`

	// Storage is where the server keeps state that must outlive a request:
	// authorization codes, refresh tokens, consents, sessions and revocations.
	//
	// +kubebuilder:default={}
	// +optional
	Storage StorageSpec `json:"storage,omitempty"`

	// Users is where the people who log in come from. Without it nobody can
	// log in, and only the client_credentials grant is useful.
	//
	// +optional
	Users *UsersSpec `json:"users,omitempty"`

	// IdentityProviders are upstream sources of people (OpenID Providers,
	// LDAP directories), next to or instead of the users Secret. The login
	// page offers each.
	//
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	IdentityProviders []IdentityProvider `json:"identityProviders,omitempty"`

	// ClientAssertions bounds the JWT client assertions clients sign
	// themselves (private_key_jwt).
	//
	// +kubebuilder:default={}
	// +optional
	ClientAssertions ClientAssertions `json:"clientAssertions,omitempty"`

	// PushedAuthorizationRequests configures the pushed authorization
	// request endpoint (RFC 9126), which every client may use.
	//
	// +kubebuilder:default={}
	// +optional
	PushedAuthorizationRequests PushedAuthorizationRequests `json:"pushedAuthorizationRequests,omitempty"`

	// ClaimMapping changes the groups and adds claims of every token
	// about a person this server issues, in CEL (see ClaimMapping). None
	// by default: tokens carry what the identity source gave.
	//
	// +optional
	ClaimMapping *ClaimMapping `json:"claimMapping,omitempty"`

	// WorkloadIdentity says which workload tokens may authenticate clients
	// that have no secret: the cluster's service-account tokens and those
	// of further trusted issuers (OAuthClient spec.authentication).
	//
	// +kubebuilder:default={}
	// +optional
	WorkloadIdentity WorkloadIdentity `json:"workloadIdentity,omitempty"`

	// AllowedClients decides which namespaces may register OAuthClients with
	// this server.
	//
	// +kubebuilder:default={}
	// +optional
	AllowedClients AllowedClients `json:"allowedClients,omitempty"`

	// Network describes the path from clients to the token server: which
	// proxies stand in front of it.
	//
	// +optional
	Network NetworkSpec `json:"network,omitempty"`

	// TLS makes the token server serve HTTPS itself. Without it the server
	// speaks plain http and TLS ends in front of it (an Ingress, a
	// Gateway). Relying parties that reach the server directly need it,
	// e.g. a kube-apiserver trusting Gatehouse ID tokens.
	//
	// +optional
	TLS *TLSSpec `json:"tls,omitempty"`

	// Branding is how the browser pages (sign-in, consent, device, sign-out,
	// errors) look and which language they speak when the person's
	// browser asks for none Gatehouse has.
	//
	// +kubebuilder:default={}
	// +optional
	Branding Branding `json:"branding,omitempty"`
}

// TLSSpec is the token server's serving certificate.
type TLSSpec struct {
	// SecretRef names a kubernetes.io/tls Secret (tls.crt, tls.key) in the
	// server's namespace, e.g. one cert-manager keeps renewed. It is
	// mounted into the token-server pods, which serve a renewed
	// certificate without a restart. The certificate must name the
	// issuer's host.
	SecretRef LocalObjectReference `json:"secretRef"`
}

// NetworkSpec describes what stands between clients and the token server.
type NetworkSpec struct {
	// TrustedProxies are the proxies in front of the token server (the
	// ingress controller's pods, a load balancer), as CIDR prefixes such as
	// 10.0.0.0/8 or fd00::/8. Only from them is the client's address read
	// from forwardedHeader; the login throttle limits failures per client
	// address. Leave it empty when clients connect to the server directly.
	// Behind a proxy, without it, every client shares the proxy's address,
	// and anyone failing to log in often enough holds up everyone's
	// logins. Never list addresses clients can connect from directly: they
	// could then choose the address the throttle sees.
	//
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	TrustedProxies []CIDR `json:"trustedProxies,omitempty"`

	// ForwardedHeader is the header the trusted proxies write the client's
	// address to: X-Forwarded-For (default; ingress-nginx, Envoy, most
	// load balancers) or Forwarded (RFC 7239). The other is ignored, since
	// a proxy passes on a header it does not write with whatever the
	// client put in it.
	//
	// +kubebuilder:default=X-Forwarded-For
	// +optional
	ForwardedHeader ForwardedHeader `json:"forwardedHeader,omitempty"`

	// Policy, when set, makes the operator write a NetworkPolicy for the
	// token-server pods (see NetworkPolicySpec); `policy: {}` takes the
	// defaults. Unset, the operator writes none: a cluster without a CNI
	// that enforces NetworkPolicy gains nothing from one, and teams that
	// keep their own policies do not want a second.
	//
	// +optional
	Policy *NetworkPolicySpec `json:"policy,omitempty"`
}

// CIDR is an IPv4 or IPv6 prefix in CIDR notation, without host bits.
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=49
// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be a CIDR prefix such as 10.0.0.0/8 or fd00::/8 (a single host is 192.0.2.7/32)"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).masked() == cidr(self)",message="must not have host bits set: write the network address, e.g. 10.0.0.0/8 rather than 10.1.2.3/8"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).prefixLength() > 0",message="must not trust every address (/0): any client could then choose the address the login throttle sees"
type CIDR string

// ForwardedHeader names the header proxies report the client address in.
//
// +kubebuilder:validation:Enum=X-Forwarded-For;Forwarded
type ForwardedHeader string

const (
	// ForwardedHeaderXForwardedFor is the de facto X-Forwarded-For.
	ForwardedHeaderXForwardedFor ForwardedHeader = "X-Forwarded-For"
	// ForwardedHeaderForwarded is RFC 7239's Forwarded.
	ForwardedHeaderForwarded ForwardedHeader = "Forwarded"
)

// SigningAlgorithm is a JWS algorithm (RFC 7518) for access tokens.
//
// +kubebuilder:validation:Enum=ES256;RS256;EdDSA
type SigningAlgorithm string

const (
	// SigningES256 is ECDSA on P-256 with SHA-256: small, fast, the default.
	SigningES256 SigningAlgorithm = "ES256"
	// SigningRS256 is RSASSA-PKCS1-v1_5 with SHA-256, for validators that
	// know nothing else.
	SigningRS256 SigningAlgorithm = "RS256"
	// SigningEdDSA is Ed25519 (RFC 8037).
	SigningEdDSA SigningAlgorithm = "EdDSA"
)

// SigningSpec configures signing keys and their rotation. A new key is
// published in the JWKS for PrepublishPeriod before it signs anything, and a
// retired key stays published until every token it signed has expired, so
// rotation never breaks a validator that caches the JWKS.
//
// +kubebuilder:validation:XValidation:rule="!has(self.rotationInterval) || !has(self.prepublishPeriod) || !self.rotationInterval.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || !self.prepublishPeriod.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.prepublishPeriod) < duration(self.rotationInterval)",message="prepublishPeriod must be shorter than rotationInterval"
type SigningSpec struct {
	// Algorithm signs access tokens: ES256 (default), RS256 or EdDSA.
	// Changing it takes effect at the next rotation.
	//
	// +kubebuilder:default=ES256
	// +optional
	Algorithm SigningAlgorithm `json:"algorithm,omitempty"`

	// RotationInterval is how long a key signs before the next one takes
	// over, between 1h and 8760h (a year). Default 720h (30 days).
	//
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="rotationInterval must be a duration such as 720h or 168h30m"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h') && duration(self) <= duration('8760h'))",message="rotationInterval must be between 1h and 8760h"
	// +optional
	RotationInterval *metav1.Duration `json:"rotationInterval,omitempty"`

	// PrepublishPeriod is how long a new key is in the JWKS before it signs,
	// so validators that cache the JWKS learn it in time. Between 1m and
	// 720h, and shorter than rotationInterval. Default 24h.
	//
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="prepublishPeriod must be a duration such as 24h or 90m"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('720h'))",message="prepublishPeriod must be between 1m and 720h"
	// +optional
	PrepublishPeriod *metav1.Duration `json:"prepublishPeriod,omitempty"`
}

// TokenLifetimes bounds how long what the server issues stays valid.
//
// +kubebuilder:validation:XValidation:rule="!has(self.accessToken) || !has(self.refreshToken) || !self.accessToken.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || !self.refreshToken.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.refreshToken) > duration(self.accessToken)",message="refreshToken lifetime must be longer than accessToken lifetime"
type TokenLifetimes struct {
	// AccessToken is the lifetime of a JWT access token, between 1m and
	// 24h. Default 10m. Access tokens cannot be recalled from resource
	// servers that validate them offline, so keep it short.
	//
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="accessToken lifetime must be a duration such as 10m or 1h"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="accessToken lifetime must be between 1m and 24h"
	// +optional
	AccessToken *metav1.Duration `json:"accessToken,omitempty"`

	// RefreshToken is the lifetime of a refresh token family, counted from
	// the login that started it, between 1h and 8760h. Default 720h
	// (30 days). Each use rotates the token but does not extend the family.
	//
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="refreshToken lifetime must be a duration such as 720h"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h') && duration(self) <= duration('8760h'))",message="refreshToken lifetime must be between 1h and 8760h"
	// +optional
	RefreshToken *metav1.Duration `json:"refreshToken,omitempty"`

	// AuthorizationCode is how long an authorization code can be redeemed,
	// between 10s and 10m (RFC 6749 §4.1.2). Default 60s.
	//
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="authorizationCode lifetime must be a duration such as 60s"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('10s') && duration(self) <= duration('10m'))",message="authorizationCode lifetime must be between 10s and 10m"
	// +optional
	AuthorizationCode *metav1.Duration `json:"authorizationCode,omitempty"`

	// DeviceCode is how long a device authorization (RFC 8628 §3.2: its
	// device_code and user_code) waits for the person to enter the code
	// and approve, between 1m and 30m. Default 10m.
	//
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="deviceCode lifetime must be a duration such as 10m"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('30m'))",message="deviceCode lifetime must be between 1m and 30m"
	// +optional
	DeviceCode *metav1.Duration `json:"deviceCode,omitempty"`
}

// StorageType selects a storage driver.
//
// +kubebuilder:validation:Enum=Memory;Postgres
type StorageType string

// RefreshTokenRetry is spec.refreshTokenRetry.
//
// +kubebuilder:validation:Enum=ConfidentialClients;AllClients;Disabled
type RefreshTokenRetry string

// The values of spec.refreshTokenRetry: whose retry of a lost refresh
// answer gets the same successor.
const (
	RefreshTokenRetryConfidentialClients RefreshTokenRetry = "ConfidentialClients"
	RefreshTokenRetryAllClients          RefreshTokenRetry = "AllClients"
	RefreshTokenRetryDisabled            RefreshTokenRetry = "Disabled"
)

// Covers says whether a client's retry of a refresh whose answer was lost
// gets the same successor; the empty value is the default,
// ConfidentialClients.
func (r RefreshTokenRetry) Covers(public bool) bool {
	switch r {
	case RefreshTokenRetryAllClients:
		return true
	case RefreshTokenRetryDisabled:
		return false
	default:
		return !public
	}
}

const (
	// StorageMemory keeps state in the server process: for development and
	// single-replica servers; state is lost on restart.
	StorageMemory StorageType = "Memory"
	// StoragePostgres keeps state in PostgreSQL: durable, shared by replicas.
	StoragePostgres StorageType = "Postgres"
)

// StorageSpec selects where server state lives.
//
// +kubebuilder:validation:XValidation:rule="(has(self.type) && self.type == 'Postgres') == has(self.postgres)",message="postgres must be set when, and only when, type is Postgres"
type StorageSpec struct {
	// Type is Memory (default; one replica, state lost on restart) or
	// Postgres (durable, for several replicas).
	//
	// +kubebuilder:default=Memory
	// +optional
	Type StorageType `json:"type,omitempty"`

	// Postgres configures the PostgreSQL driver.
	//
	// +optional
	Postgres *PostgresStorage `json:"postgres,omitempty"`
}

// PostgresStorage points at a PostgreSQL database.
type PostgresStorage struct {
	// URLSecretRef selects the Secret key (in the server's namespace) that
	// holds the connection URL, e.g.
	// postgres://gatehouse:PASSWORD@db:5432/gatehouse?sslmode=verify-full.
	// The URL carries a password, so it lives in a Secret, not here.
	URLSecretRef SecretKeyReference `json:"urlSecretRef"`
}

// UsersSpec says where users come from.
type UsersSpec struct {
	// SecretRef names a Secret in the server's namespace that lists users
	// with bcrypt password hashes.
	SecretRef LocalObjectReference `json:"secretRef"`
}

// FromNamespaces says which namespaces may register clients, in the manner
// of Gateway API's allowedRoutes.
//
// +kubebuilder:validation:Enum=Same;All;Selector
type FromNamespaces string

const (
	// NamespacesFromSame admits clients in the server's own namespace only.
	NamespacesFromSame FromNamespaces = "Same"
	// NamespacesFromAll admits clients in every namespace.
	NamespacesFromAll FromNamespaces = "All"
	// NamespacesFromSelector admits clients in namespaces whose labels match
	// the selector.
	NamespacesFromSelector FromNamespaces = "Selector"
)

// AllowedClients decides which OAuthClients a server accepts.
type AllowedClients struct {
	// Namespaces from which OAuthClients may reference this server.
	//
	// +kubebuilder:default={}
	// +optional
	Namespaces ClientNamespaces `json:"namespaces,omitempty"`
}

// ClientNamespaces selects namespaces.
//
// +kubebuilder:validation:XValidation:rule="(has(self.from) && self.from == 'Selector') == has(self.selector)",message="selector must be set when, and only when, from is Selector"
type ClientNamespaces struct {
	// From is Same (default: the server's namespace only), All, or Selector
	// (namespaces whose labels match selector).
	//
	// +kubebuilder:default=Same
	// +optional
	From FromNamespaces `json:"from,omitempty"`

	// Selector picks namespaces by label when from is Selector.
	//
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// AuthorizationServerStatus is what the operator observed and did.
type AuthorizationServerStatus struct {
	// ObservedGeneration is the generation this status describes.
	//
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready summarizes the parts Accepted (no older server has
	// this issuer), KeysReady (a signing key is active and published) and
	// Available (the token server answers). Ready is True when all three
	// are; otherwise it carries the reason and message of the first part
	// that is not.
	//
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Issuer the server is serving as.
	//
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// JWKSURI is where resource servers fetch the public keys.
	//
	// +optional
	JWKSURI string `json:"jwksURI,omitempty"`

	// ActiveKeyID is the kid of the key that signs new tokens.
	//
	// +optional
	ActiveKeyID string `json:"activeKeyID,omitempty"`

	// NextRotationTime is when the next key takes over signing.
	//
	// +optional
	NextRotationTime *metav1.Time `json:"nextRotationTime,omitempty"`

	// Replicas is the number of token-server pods that exist (the
	// Deployment's status.replicas): the scale subresource's status.
	//
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// Selector is the label selector of the token-server pods, as a
	// string (app.kubernetes.io/instance=<name>,...): what a
	// HorizontalPodAutoscaler reads through the scale subresource to find
	// the pods whose metrics it averages.
	//
	// +optional
	Selector string `json:"selector,omitempty"`
}

// AuthorizationServer is an OAuth 2.0 authorization server run by the
// Gatehouse operator: signing keys, a published JWKS, and a token server
// Deployment that serves authorize, token, revocation, introspection and
// metadata endpoints for the OAuthClients and Scopes that reference it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=as,categories=gatehouse
// +kubebuilder:printcolumn:name="Issuer",type=string,JSONPath=`.spec.issuer`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Active Key",type=string,JSONPath=`.status.activeKeyID`
// +kubebuilder:printcolumn:name="Next Rotation",type=string,JSONPath=`.status.nextRotationTime`,priority=1
// +kubebuilder:printcolumn:name="Storage",type=string,JSONPath=`.spec.storage.type`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AuthorizationServer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AuthorizationServerSpec   `json:"spec"`
	Status AuthorizationServerStatus `json:"status,omitempty"`
}

// AuthorizationServerList is a list of AuthorizationServers.
//
// +kubebuilder:object:root=true
type AuthorizationServerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthorizationServer `json:"items"`
}
