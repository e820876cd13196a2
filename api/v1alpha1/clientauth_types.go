package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClientAuthentication is the credential a client proves itself with
// instead of a client secret: a JWT client assertion (RFC 7523 §2.2,
// client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer)
// at the token, introspection and revocation endpoints. A client with one
// has no client_secret anywhere: the operator publishes its client_id and
// the server's endpoints in a ConfigMap (spec.configMapName), not a Secret.
//
// +kubebuilder:validation:XValidation:rule="[has(self.serviceAccount), has(self.privateKeyJWT), has(self.federated)].exists_one(x, x)",message="authentication needs exactly one of serviceAccount, privateKeyJWT or federated"
type ClientAuthentication struct {
	// ServiceAccount makes a Kubernetes ServiceAccount in the client's own
	// namespace the client's credential: the workload sends its projected
	// service-account token (audience: the server's issuer) as the client
	// assertion, with its client_id. The token server verifies it offline
	// against the cluster's service-account issuer: signature, issuer,
	// audience, expiry, the subject
	// system:serviceaccount:<namespace>:<name> and the ServiceAccount's
	// UID (status.serviceAccountUID), so a deleted and re-created
	// ServiceAccount's old tokens are refused. Method federated_jwt.
	//
	// +optional
	ServiceAccount *ServiceAccountAuthentication `json:"serviceAccount,omitempty"`

	// PrivateKeyJWT: the client signs its own assertions with a private key
	// whose public half is registered here (RFC 7523 §2.2, OpenID Connect
	// Core §9 private_key_jwt): for clients outside the cluster. Method
	// private_key_jwt.
	//
	// +optional
	PrivateKeyJWT *PrivateKeyJWTAuthentication `json:"privateKeyJWT,omitempty"`

	// Federated binds the client to tokens of an issuer the
	// AuthorizationServer trusts (spec.workloadIdentity.trustedIssuers:
	// another cluster, a CI system, a cloud's workload identity) whose
	// subject and claims match exactly. Method federated_jwt.
	//
	// +optional
	Federated *FederatedAuthentication `json:"federated,omitempty"`
}

// ClientAssertions bounds private_key_jwt assertions.
type ClientAssertions struct {
	// MaxExpiresIn refuses an assertion whose exp is further away than
	// this when it arrives, between 1m and 1h. Default 5m: an assertion
	// is made for one request, and its jti is kept until it expires. Some
	// client libraries sign assertions valid for an hour (zitadel/oidc's
	// relying party for code exchange, refresh and revocation); raise it
	// for them.
	//
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="maxExpiresIn must be a duration such as 5m"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('1h'))",message="maxExpiresIn must be between 1m and 1h"
	// +optional
	MaxExpiresIn *metav1.Duration `json:"maxExpiresIn,omitempty"`
}

// ServiceAccountAuthentication names the client's ServiceAccount.
type ServiceAccountAuthentication struct {
	// Name of a ServiceAccount in the OAuthClient's namespace. Until it
	// exists the client is Ready=False with reason ServiceAccountNotFound.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="name must be a valid ServiceAccount name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	Name string `json:"name"`
}

// PrivateKeyJWTAuthentication says where the client's public keys are.
// Assertions are signed with ES256, RS256 or EdDSA (never none or an HMAC
// algorithm), name the client as iss and sub, the server's issuer or token
// endpoint as aud, expire at most 5 minutes after they are sent (the
// server's spec.clientAssertions.maxExpiresIn), and carry a jti that is
// accepted once.
//
// +kubebuilder:validation:XValidation:rule="[has(self.keys), has(self.jwksURI), has(self.secretRef)].exists_one(x, x)",message="privateKeyJWT needs exactly one of keys, jwksURI or secretRef"
type PrivateKeyJWTAuthentication struct {
	// Keys are the client's public keys, as JSON Web Keys (RFC 7517).
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Keys []JSONWebKey `json:"keys,omitempty"`

	// JWKSURI is where the client publishes its JWK Set: https (http only
	// on loopback hosts), at most 256 KiB. The token server fetches it in
	// the background, again per its Cache-Control (between 1 minute and 1
	// hour) and at most every 10 seconds when an assertion names a key it
	// does not know. It never fetches while a request waits: publish a new
	// key a few minutes before signing with it.
	//
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && size(url(self).getHost()) > 0",message="jwksURI must be an absolute URL with a host"
	// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['127.0.0.1', '::1', 'localhost'])",message="jwksURI must use https; http is allowed only on loopback hosts (127.0.0.1, [::1], localhost)"
	// +optional
	JWKSURI string `json:"jwksURI,omitempty"`

	// SecretRef selects a key of a Secret in the client's namespace holding
	// the public keys: a JWK Set, PEM public keys or certificates (e.g. a
	// cert-manager Certificate's tls.crt). The token server never reads app
	// Secrets: the operator reads this one and publishes the public keys in
	// status.publicKeys, checking it again every 30 seconds. A PEM private
	// key is refused (Ready=False, reason InvalidClientKeys): only public
	// halves belong here.
	//
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`
}

// FederatedAuthentication binds a client to one subject of a trusted
// issuer. The match is exact: no prefixes, no patterns.
type FederatedAuthentication struct {
	// Issuer is the name of an entry of the AuthorizationServer's
	// spec.workloadIdentity.trustedIssuers that admits this namespace.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="issuer is the name of a trusted issuer: a DNS label"
	Issuer string `json:"issuer"`

	// Subject the token's sub must equal, e.g.
	// repo:example-org/app:ref:refs/heads/main for GitHub Actions, or
	// system:serviceaccount:shop:deployer for another cluster.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Subject string `json:"subject"`

	// Claims the token must also carry with exactly these string values,
	// e.g. repository: example-org/app and ref: refs/heads/main. Top-level
	// claims only; the registered claims (iss, sub, aud, exp, nbf, iat,
	// jti) are checked by the server and cannot be listed.
	//
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti']))",message="claims cannot list iss, sub, aud, exp, nbf, iat or jti: the server checks those itself (use subject for sub)"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) > 0 && size(k) <= 128)",message="a claim name must have 1 to 128 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(self[k]) <= 1024)",message="a claim value must have at most 1024 characters"
	// +optional
	Claims map[string]string `json:"claims,omitempty"`
}

// JSONWebKey is a public key in JSON Web Key form (RFC 7517): an EC P-256
// key (ES256), an RSA key of at least 2048 bits (RS256) or an Ed25519 key
// (EdDSA). Private members (d, p, q, ...) are not part of the schema. In
// YAML, quote the member names "y" and "n": YAML 1.1, which kubectl
// reads, takes a bare y for true and n for false.
//
// +kubebuilder:validation:XValidation:rule="self.kty != 'EC' || (has(self.crv) && self.crv == 'P-256' && has(self.x) && has(self.y) && !has(self.n) && !has(self.e))",message="an EC key needs crv P-256, x and y (in YAML quote the name y, as 'y': YAML 1.1, which kubectl reads, takes a bare y for true)"
// +kubebuilder:validation:XValidation:rule="self.kty != 'RSA' || (has(self.n) && has(self.e) && !has(self.crv) && !has(self.x) && !has(self.y))",message="an RSA key needs n and e (in YAML quote the name n, as 'n': YAML 1.1, which kubectl reads, takes a bare n for false)"
// +kubebuilder:validation:XValidation:rule="self.kty != 'OKP' || (has(self.crv) && self.crv == 'Ed25519' && has(self.x) && !has(self.y) && !has(self.n) && !has(self.e))",message="an OKP key needs crv Ed25519 and x"
// +kubebuilder:validation:XValidation:rule="!has(self.alg) || (self.kty == 'EC' && self.alg == 'ES256') || (self.kty == 'RSA' && self.alg == 'RS256') || (self.kty == 'OKP' && self.alg == 'EdDSA')",message="alg must fit the key: ES256 for EC, RS256 for RSA, EdDSA for OKP"
type JSONWebKey struct {
	// Kty is the key type: EC, RSA or OKP.
	//
	// +kubebuilder:validation:Enum=EC;RSA;OKP
	Kty string `json:"kty"`

	// Kid identifies the key; assertions name it in their kid header. It
	// may be left out when there is only one key.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Kid string `json:"kid,omitempty"`

	// Alg is the one algorithm the key verifies; by default the one its
	// type allows.
	//
	// +kubebuilder:validation:Enum=ES256;RS256;EdDSA
	// +optional
	Alg string `json:"alg,omitempty"`

	// Use must be sig when set.
	//
	// +kubebuilder:validation:Enum=sig
	// +optional
	Use string `json:"use,omitempty"`

	// Crv is the curve: P-256 (EC) or Ed25519 (OKP).
	//
	// +kubebuilder:validation:Enum=P-256;Ed25519
	// +optional
	Crv string `json:"crv,omitempty"`

	// X is the base64url x coordinate (EC) or public key (OKP).
	//
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	// +optional
	X string `json:"x,omitempty"`

	// Y is the base64url y coordinate (EC).
	//
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	// +optional
	Y string `json:"y,omitempty"`

	// N is the base64url RSA modulus.
	//
	// +kubebuilder:validation:MaxLength=1400
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	// +optional
	N string `json:"n,omitempty"`

	// E is the base64url RSA public exponent.
	//
	// +kubebuilder:validation:MaxLength=8
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	// +optional
	E string `json:"e,omitempty"`
}
