package v1alpha1

import (
	"cmp"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of the AuthorizationServer and OAuthClient CRDs
// (+kubebuilder:default markers), for objects stored before a default
// existed or built without the API server (tests, `gatehouse dev` demo
// data). The operator and the token server both read lifetimes through
// the methods below, so that the two can never disagree.
const (
	DefaultAccessTokenLifetime       = 10 * time.Minute
	DefaultRefreshTokenLifetime      = 720 * time.Hour
	DefaultAuthorizationCodeLifetime = 60 * time.Second
	DefaultDeviceCodeLifetime        = 10 * time.Minute
	DefaultRotationInterval          = 720 * time.Hour
	DefaultPrepublishPeriod          = 24 * time.Hour
	DefaultSigningAlgorithm          = SigningES256
	DefaultSecretGracePeriod         = 24 * time.Hour
	// DefaultServiceAccountTokenMaxLifetime is Kubernetes' default
	// lifetime of a projected service-account token.
	DefaultServiceAccountTokenMaxLifetime = time.Hour
	DefaultTrustedIssuerMaxTokenLifetime  = time.Hour
	DefaultTokenReuse                     = TokenSingleUse
	// DefaultAssertionMaxExpiresIn: how far away a private_key_jwt
	// assertion's exp may be.
	DefaultAssertionMaxExpiresIn = 5 * time.Minute
	DefaultClientType            = ClientConfidential
	DefaultRequirePKCE           = true
	// DefaultRequestURILifetime: how long a pushed authorization
	// request's request_uri may be used.
	DefaultRequestURILifetime = 60 * time.Second
)

// DefaultGrantTypes is spec.grantTypes' default: the authorization code
// flow.
func DefaultGrantTypes() []GrantType { return []GrantType{GrantAuthorizationCode} }

// orDefault is d, or def when d is unset or not positive (the CRD refuses
// zero lifetimes; an object that bypassed it gets the default).
func orDefault(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}

// AccessTokenLifetime is spec.tokens.accessToken, defaulted.
func (s *AuthorizationServer) AccessTokenLifetime() time.Duration {
	return orDefault(s.Spec.Tokens.AccessToken, DefaultAccessTokenLifetime)
}

// RefreshTokenLifetime is spec.tokens.refreshToken, defaulted.
func (s *AuthorizationServer) RefreshTokenLifetime() time.Duration {
	return orDefault(s.Spec.Tokens.RefreshToken, DefaultRefreshTokenLifetime)
}

// RefreshTokenRetryMode is spec.refreshTokenRetry, defaulted.
func (s *AuthorizationServer) RefreshTokenRetryMode() RefreshTokenRetry {
	if s.Spec.RefreshTokenRetry == "" {
		return RefreshTokenRetryConfidentialClients
	}
	return s.Spec.RefreshTokenRetry
}

// AuthorizationCodeLifetime is spec.tokens.authorizationCode, defaulted.
func (s *AuthorizationServer) AuthorizationCodeLifetime() time.Duration {
	return orDefault(s.Spec.Tokens.AuthorizationCode, DefaultAuthorizationCodeLifetime)
}

// DeviceCodeLifetime is spec.tokens.deviceCode, defaulted.
func (s *AuthorizationServer) DeviceCodeLifetime() time.Duration {
	return orDefault(s.Spec.Tokens.DeviceCode, DefaultDeviceCodeLifetime)
}

// RotationInterval is spec.signing.rotationInterval, defaulted.
func (s *AuthorizationServer) RotationInterval() time.Duration {
	return orDefault(s.Spec.Signing.RotationInterval, DefaultRotationInterval)
}

// PrepublishPeriod is spec.signing.prepublishPeriod, defaulted.
func (s *AuthorizationServer) PrepublishPeriod() time.Duration {
	return orDefault(s.Spec.Signing.PrepublishPeriod, DefaultPrepublishPeriod)
}

// SigningAlgorithm is spec.signing.algorithm, defaulted.
func (s *AuthorizationServer) SigningAlgorithm() SigningAlgorithm {
	return cmp.Or(s.Spec.Signing.Algorithm, DefaultSigningAlgorithm)
}

// ServerKey is "<namespace>/<name>" of the server, the form
// OAuthClient.ServerKey returns.
func (s *AuthorizationServer) ServerKey() string {
	return s.Namespace + "/" + s.Name
}

// ServerNamespace is the namespace of the client's AuthorizationServer:
// spec.serverRef.namespace, which defaults to the client's own.
func (c *OAuthClient) ServerNamespace() string {
	return cmp.Or(c.Spec.ServerRef.Namespace, c.Namespace)
}

// ServerKey is "<namespace>/<name>" of the client's AuthorizationServer.
func (c *OAuthClient) ServerKey() string {
	return c.ServerNamespace() + "/" + c.Spec.ServerRef.Name
}

// References reports whether the client's serverRef names the server
// namespace/name.
func (c *OAuthClient) References(namespace, name string) bool {
	return c.ServerNamespace() == namespace && c.Spec.ServerRef.Name == name
}

// SecretGracePeriod is how long a replaced client secret keeps working:
// spec.secretRotation.gracePeriod, defaulted. Zero is a valid choice (the
// old secret stops at once), so only an unset field gets the default.
func (c *OAuthClient) SecretGracePeriod() time.Duration {
	if r := c.Spec.SecretRotation; r != nil && r.GracePeriod != nil {
		return max(r.GracePeriod.Duration, 0)
	}
	return DefaultSecretGracePeriod
}

// SecretRotationInterval is spec.secretRotation.interval; zero means
// rotation on demand only.
func (c *OAuthClient) SecretRotationInterval() time.Duration {
	if r := c.Spec.SecretRotation; r != nil && r.Interval != nil {
		return max(r.Interval.Duration, 0)
	}
	return 0
}

// CompareScopeClaims orders Scopes that claim one scope name of a server
// by their right to it: the oldest first, ties broken by object name, so
// that creating a duplicate never takes a name away from the Scope that
// clients already use, and every replica and the operator pick the same
// one.
func CompareScopeClaims(a, b *Scope) int {
	return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), strings.Compare(a.Name, b.Name))
}

// ScopeOwner picks, among Scopes claiming one name, the one that holds it
// (CompareScopeClaims), ignoring Scopes being deleted; nil when none.
func ScopeOwner(scopes []Scope) *Scope {
	var owner *Scope
	for i := range scopes {
		s := &scopes[i]
		if !s.DeletionTimestamp.IsZero() {
			continue
		}
		if owner == nil || CompareScopeClaims(s, owner) < 0 {
			owner = s
		}
	}
	return owner
}

// SortScopeClaims sorts scopes in place, holders first (CompareScopeClaims).
func SortScopeClaims(scopes []Scope) {
	slices.SortFunc(scopes, func(a, b Scope) int { return CompareScopeClaims(&a, &b) })
}

// IsPublic reports whether the client cannot keep a secret:
// spec.clientType, defaulted (DefaultClientType, confidential).
func (c *OAuthClient) IsPublic() bool {
	return cmp.Or(c.Spec.ClientType, DefaultClientType) == ClientPublic
}

// ShownName is what the consent page calls the client: spec.displayName,
// or the object's name.
func (c *OAuthClient) ShownName() string {
	return cmp.Or(c.Spec.DisplayName, c.Name)
}

// PKCERequired is spec.requirePKCE, defaulted (DefaultRequirePKCE), and
// always true for a public client: PKCE is the only protection a public
// client's code has (RFC 9700 §2.1.1); CEL refuses the opt-out, this
// holds for an object that bypassed it.
func (c *OAuthClient) PKCERequired() bool {
	switch {
	case c.IsPublic():
		return true
	case c.Spec.RequirePKCE == nil:
		return DefaultRequirePKCE
	}
	return *c.Spec.RequirePKCE
}

// Grants is spec.grantTypes, defaulted (DefaultGrantTypes), without the
// grants a public client cannot use: client_credentials and token
// exchange need a client that authenticates itself.
func (c *OAuthClient) Grants() []GrantType {
	grants := c.Spec.GrantTypes
	if len(grants) == 0 {
		return DefaultGrantTypes()
	}
	if !c.IsPublic() {
		return grants
	}
	return slices.DeleteFunc(slices.Clone(grants), func(g GrantType) bool {
		return g == GrantClientCredentials || g == GrantTokenExchange
	})
}

// AuthMethod is how the client authenticates at the token, introspection
// and revocation endpoints: spec.tokenEndpointAuthMethod, or when unset
// the method spec.authentication implies, client_secret_basic for a
// confidential client and none for a public one. The operator and the
// token server both read it here.
func (c *OAuthClient) AuthMethod() TokenEndpointAuthMethod {
	if m := c.Spec.TokenEndpointAuthMethod; m != "" {
		return m
	}
	switch a := c.Spec.Authentication; {
	case a != nil && a.PrivateKeyJWT != nil:
		return AuthPrivateKeyJWT
	case a != nil:
		return AuthFederatedJWT
	case c.IsPublic():
		return AuthNone
	}
	return AuthClientSecretBasic
}

// AuthMethods are the methods the client may authenticate with, AuthMethod
// first. A client with a secret whose spec.tokenEndpointAuthMethod is
// unset may send it either way RFC 6749 §2.3.1 defines, in the
// Authorization header (client_secret_basic) or in the body
// (client_secret_post): relying-party libraries pick one or the other by
// default, and OpenID Connect certification tests both. Setting the field
// pins that one method and refuses the other. Every other client has
// exactly one method.
func (c *OAuthClient) AuthMethods() []TokenEndpointAuthMethod {
	if c.Spec.TokenEndpointAuthMethod == "" && c.HasSecret() {
		return []TokenEndpointAuthMethod{AuthClientSecretBasic, AuthClientSecretPost}
	}
	return []TokenEndpointAuthMethod{c.AuthMethod()}
}

// HasSecret reports whether the client authenticates with a client secret,
// and so gets one in its Secret: a confidential client without
// spec.authentication.
func (c *OAuthClient) HasSecret() bool {
	return !c.IsPublic() && c.Spec.Authentication == nil
}

// AssertionMaxExpiresIn is spec.clientAssertions.maxExpiresIn, defaulted.
func (s *AuthorizationServer) AssertionMaxExpiresIn() time.Duration {
	return orDefault(s.Spec.ClientAssertions.MaxExpiresIn, DefaultAssertionMaxExpiresIn)
}

// RequestURILifetime is
// spec.pushedAuthorizationRequests.requestURILifetime, defaulted.
func (s *AuthorizationServer) RequestURILifetime() time.Duration {
	return orDefault(s.Spec.PushedAuthorizationRequests.RequestURILifetime, DefaultRequestURILifetime)
}

// ServiceAccountTokenMaxLifetime is
// spec.workloadIdentity.serviceAccountTokens.maxTokenLifetime, defaulted.
func (s *AuthorizationServer) ServiceAccountTokenMaxLifetime() time.Duration {
	return orDefault(s.Spec.WorkloadIdentity.ServiceAccountTokens.MaxTokenLifetime, DefaultServiceAccountTokenMaxLifetime)
}

// TrustedIssuer returns the trusted issuer called name, or nil.
func (s *AuthorizationServer) TrustedIssuer(name string) *TrustedIssuer {
	for i := range s.Spec.WorkloadIdentity.TrustedIssuers {
		if t := &s.Spec.WorkloadIdentity.TrustedIssuers[i]; t.Name == name {
			return t
		}
	}
	return nil
}

// TokenMaxLifetime is spec.maxTokenLifetime, defaulted.
func (t *TrustedIssuer) TokenMaxLifetime() time.Duration {
	return orDefault(t.MaxTokenLifetime, DefaultTrustedIssuerMaxTokenLifetime)
}

// TokenReuse is spec.reuse, defaulted.
func (t *TrustedIssuer) TokenReuse() TokenReuse {
	return cmp.Or(t.Reuse, DefaultTokenReuse)
}

// AcceptedAudiences is spec.audiences, or when empty serverIssuer, the
// issuer of the AuthorizationServer that trusts t.
func (t *TrustedIssuer) AcceptedAudiences(serverIssuer string) []string {
	if len(t.Audiences) == 0 {
		return []string{serverIssuer}
	}
	out := make([]string, len(t.Audiences))
	for i, a := range t.Audiences {
		out[i] = string(a)
	}
	return out
}
