package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadIdentity says which workload tokens the server accepts as client
// credentials (OAuthClient spec.authentication): the cluster's own
// service-account tokens, and tokens of the further issuers the platform
// team trusts here. The token server verifies them offline, with keys it
// fetches in the background; no request waits on an issuer.
type WorkloadIdentity struct {
	// ServiceAccountTokens tunes how the cluster's own service-account
	// tokens are accepted.
	//
	// +kubebuilder:default={}
	// +optional
	ServiceAccountTokens ServiceAccountTokens `json:"serviceAccountTokens,omitempty"`

	// TrustedIssuers are further JWT issuers whose tokens may authenticate
	// OAuthClients that bind themselves to one of their subjects
	// (spec.authentication.federated): another cluster's service-account
	// issuer, a CI system's OIDC tokens (GitHub Actions, GitLab), a cloud's
	// workload identity.
	//
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	TrustedIssuers []TrustedIssuer `json:"trustedIssuers,omitempty"`
}

// ServiceAccountTokens tunes the trust in the cluster's service-account issuer, found by
// discovery from the kube-apiserver (/.well-known/openid-configuration and
// /openid/v1/jwks, read with the token server's own credentials).
type ServiceAccountTokens struct {
	// MaxTokenLifetime refuses a token whose lifetime (exp - iat) is
	// longer, between 10m and 48h. Default 1h, Kubernetes' default for
	// projected tokens; legacy Secret-based tokens (no expiry) and tokens
	// extended to a year are always refused. This bounds how long a token
	// taken from a deleted pod still authenticates its client.
	//
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="maxTokenLifetime must be a duration such as 1h or 10m"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('10m') && duration(self) <= duration('48h'))",message="maxTokenLifetime must be between 10m and 48h"
	// +optional
	MaxTokenLifetime *metav1.Duration `json:"maxTokenLifetime,omitempty"`
}

// TokenReuse says whether one token of a trusted issuer may authenticate
// more than one request.
//
// +kubebuilder:validation:Enum=SingleUse;UntilExpiry
type TokenReuse string

const (
	// TokenSingleUse accepts each token once (by its jti, across
	// replicas); a token without a jti is refused. For issuers that mint a
	// fresh token per use, such as GitHub Actions' getIDToken.
	TokenSingleUse TokenReuse = "SingleUse"
	// TokenUntilExpiry accepts a token until it expires, like the
	// cluster's own service-account tokens, which a pod reuses until the
	// kubelet replaces them. For another cluster's service-account issuer.
	TokenUntilExpiry TokenReuse = "UntilExpiry"
)

// TrustedIssuer is a JWT issuer whose tokens may authenticate clients that
// bind themselves to it.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.jwksURI) && has(self.keys))",message="set at most one of jwksURI and keys (neither: the keys are found by OpenID discovery from the issuer)"
// +kubebuilder:validation:XValidation:rule="!(has(self.keys) && has(self.caConfigMapRef))",message="caConfigMapRef is for fetching keys over https; with inline keys nothing is fetched"
type TrustedIssuer struct {
	// Name identifies the issuer in OAuthClients
	// (spec.authentication.federated.issuer): a DNS label.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="name must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit"
	Name string `json:"name"`

	// Issuer is the tokens' iss, matched exactly, e.g.
	// https://token.actions.githubusercontent.com.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && size(url(self).getHost()) > 0",message="issuer must be an absolute URL with a host"
	// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['127.0.0.1', '::1', 'localhost'])",message="issuer must use https; http is allowed only on loopback hosts (127.0.0.1, [::1], localhost)"
	Issuer string `json:"issuer"`

	// JWKSURI is where the issuer's keys are. Default: the jwks_uri of its
	// discovery document (<issuer>/.well-known/openid-configuration).
	//
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && size(url(self).getHost()) > 0",message="jwksURI must be an absolute URL with a host"
	// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['127.0.0.1', '::1', 'localhost'])",message="jwksURI must use https; http is allowed only on loopback hosts (127.0.0.1, [::1], localhost)"
	// +optional
	JWKSURI string `json:"jwksURI,omitempty"`

	// Keys are the issuer's public keys, for an issuer the server cannot
	// reach (e.g. another cluster's service-account keys).
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Keys []JSONWebKey `json:"keys,omitempty"`

	// CAConfigMapRef selects a ConfigMap key (in the server's namespace)
	// with PEM CA certificates to trust, instead of the system's, when
	// fetching the issuer's discovery document and keys.
	//
	// +optional
	CAConfigMapRef *ConfigMapKeyReference `json:"caConfigMapRef,omitempty"`

	// Audiences the token's aud must contain one of. Default: this
	// server's issuer.
	//
	// +kubebuilder:validation:MaxItems=8
	// +listType=set
	// +optional
	Audiences []Audience `json:"audiences,omitempty"`

	// MaxTokenLifetime refuses a token whose lifetime (exp - iat) is
	// longer, between 1m and 48h. Default 1h.
	//
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="maxTokenLifetime must be a duration such as 1h or 10m"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('48h'))",message="maxTokenLifetime must be between 1m and 48h"
	// +optional
	MaxTokenLifetime *metav1.Duration `json:"maxTokenLifetime,omitempty"`

	// Reuse is SingleUse (default: each token once, by its jti, across
	// replicas; tokens without a jti are refused) or UntilExpiry (a token
	// works until it expires, as service-account tokens do).
	//
	// +kubebuilder:default=SingleUse
	// +optional
	Reuse TokenReuse `json:"reuse,omitempty"`

	// AllowedClients decides which namespaces' OAuthClients may bind to
	// this issuer. Default: the server's namespace only.
	//
	// +kubebuilder:default={}
	// +optional
	AllowedClients AllowedClients `json:"allowedClients,omitempty"`
}

// ConfigMapKeyReference selects one key of a ConfigMap in the same
// namespace.
type ConfigMapKeyReference struct {
	// Name of the ConfigMap.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key within the ConfigMap's data.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}
