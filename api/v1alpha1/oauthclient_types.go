package v1alpha1

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClientType is an OAuth client type (RFC 6749 §2.1).
//
// +kubebuilder:validation:Enum=confidential;public
type ClientType string

const (
	// ClientConfidential can keep a secret: a web app's back end, a service.
	ClientConfidential ClientType = "confidential"
	// ClientPublic cannot keep a secret: a single-page app, a native or CLI
	// app. It authenticates with nothing but PKCE.
	ClientPublic ClientType = "public"
)

// GrantType is an OAuth grant the client may use at the token endpoint.
//
// +kubebuilder:validation:Enum=authorization_code;refresh_token;client_credentials;"urn:ietf:params:oauth:grant-type:device_code";"urn:ietf:params:oauth:grant-type:token-exchange"
type GrantType string

// The grant types, named as at the token endpoint (RFC 6749 §4.1.3,
// §6, §4.4.2).
const (
	GrantAuthorizationCode GrantType = "authorization_code"
	GrantRefreshToken      GrantType = "refresh_token"
	GrantClientCredentials GrantType = "client_credentials"
	// GrantDeviceCode is the device authorization grant (RFC 8628): a
	// device without a browser, or a command line on a remote host, shows
	// a code that the person enters on another device's browser.
	GrantDeviceCode GrantType = "urn:ietf:params:oauth:grant-type:device_code"
	// GrantTokenExchange is OAuth 2.0 Token Exchange (RFC 8693): the
	// client trades a token it was given for an access token of this
	// server. It needs spec.tokenExchange.
	GrantTokenExchange GrantType = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// ExchangeableTokenType is a kind of token a client may present in a
// token exchange.
//
// +kubebuilder:validation:Enum=AccessToken;ServiceAccount;TrustedIssuer
type ExchangeableTokenType string

const (
	// ExchangeAccessToken is an access token this AuthorizationServer
	// issued, sent with token type
	// urn:ietf:params:oauth:token-type:access_token.
	ExchangeAccessToken ExchangeableTokenType = "AccessToken"
	// ExchangeServiceAccount is a projected service-account token of the
	// cluster (audience: the server's issuer) of one of the named
	// ServiceAccounts, sent with token type
	// urn:ietf:params:oauth:token-type:jwt. Its subject in Gatehouse
	// tokens is system:serviceaccount:<namespace>:<name>.
	ExchangeServiceAccount ExchangeableTokenType = "ServiceAccount"
	// ExchangeTrustedIssuer is a JWT of one of the AuthorizationServer's
	// trusted issuers (spec.workloadIdentity.trustedIssuers) with one of
	// the named subjects, sent with token type
	// urn:ietf:params:oauth:token-type:jwt. Its subject in Gatehouse
	// tokens is federated:<issuer name>:<sub>.
	ExchangeTrustedIssuer ExchangeableTokenType = "TrustedIssuer"
)

// RFC 8693 §3's token type identifiers.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// URN is the RFC 8693 §3 token type identifier a client sends for tokens
// of this type.
func (t ExchangeableTokenType) URN() string {
	switch t {
	case ExchangeAccessToken:
		return TokenTypeAccessToken
	case ExchangeServiceAccount, ExchangeTrustedIssuer:
		return TokenTypeJWT
	}
	return ""
}

// ExchangeableToken names tokens a client may present in a token exchange.
//
// +kubebuilder:validation:XValidation:rule="self.type == 'AccessToken' || !has(self.audiences)",message="audiences is for type AccessToken"
// +kubebuilder:validation:XValidation:rule="self.type != 'ServiceAccount' || (has(self.serviceAccounts) && size(self.serviceAccounts) > 0)",message="type ServiceAccount needs serviceAccounts: the ServiceAccounts whose tokens the client may present"
// +kubebuilder:validation:XValidation:rule="self.type == 'ServiceAccount' || !has(self.serviceAccounts)",message="serviceAccounts is for type ServiceAccount"
// +kubebuilder:validation:XValidation:rule="self.type != 'TrustedIssuer' || (has(self.issuer) && has(self.subjects) && size(self.subjects) > 0)",message="type TrustedIssuer needs issuer and subjects: whose tokens the client may present"
// +kubebuilder:validation:XValidation:rule="self.type == 'TrustedIssuer' || (!has(self.issuer) && !has(self.subjects))",message="issuer and subjects are for type TrustedIssuer"
type ExchangeableToken struct {
	// Type of the token. AccessToken: an access token of this
	// AuthorizationServer, unexpired and unrevoked. The client may always
	// present an access token that was issued to it; one issued to another
	// client only when its aud holds one of Audiences.
	Type ExchangeableTokenType `json:"type"`

	// Audiences (for AccessToken) are the APIs this client serves: it may
	// also present access tokens issued to other clients for these APIs,
	// typically to call another API on the caller's behalf. Each must be
	// the audience of a Scope of the server that admits this client's
	// namespace, as for spec.audience (otherwise Ready=False,
	// AudienceNotAllowed).
	//
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Audiences []Audience `json:"audiences,omitempty"`

	// ServiceAccounts (for ServiceAccount) are ServiceAccounts of the
	// client's own namespace whose projected tokens, with the server's
	// issuer as audience, the client may present.
	//
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`

	// Issuer (for TrustedIssuer) is the name of an entry of the
	// AuthorizationServer's spec.workloadIdentity.trustedIssuers that
	// admits this namespace.
	//
	// +kubebuilder:validation:MaxLength=32
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// Subjects (for TrustedIssuer) are the exact sub values whose tokens
	// the client may present, e.g. repo:example-org/app:ref:refs/heads/main.
	//
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=1024
	// +optional
	Subjects []string `json:"subjects,omitempty"`
}

// TokenExchange is what a client may do with OAuth 2.0 Token Exchange
// (RFC 8693). Nothing is allowed that is not listed: the tokens it may
// present, and whether the new token may hide that it acts for someone.
//
// +kubebuilder:validation:XValidation:rule="!has(self.allowImpersonation) || !self.allowImpersonation || self.subjectTokens.exists(t, t.type != 'AccessToken' || (has(t.audiences) && size(t.audiences) > 0))",message="allowImpersonation has no effect here: the client may exchange only access tokens issued to itself, which never get an act claim; list in subjectTokens[].audiences the APIs whose callers' tokens it may exchange"
type TokenExchange struct {
	// SubjectTokens are the tokens the client may present as
	// subject_token: whom the new token is about. Anything else is
	// refused.
	//
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	SubjectTokens []ExchangeableToken `json:"subjectTokens"`

	// ActorTokens are the tokens the client may present as actor_token:
	// who acts. The new token names the actor in its act claim (RFC 8693
	// §4.1), nested below an act the subject token already had. Without
	// ActorTokens an actor_token is refused, and the client itself is the
	// actor (act.sub is client:<client_id>).
	//
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +optional
	ActorTokens []ExchangeableToken `json:"actorTokens,omitempty"`

	// AllowImpersonation lets the client exchange another client's token
	// without an actor_token for one without a new act claim: a token that
	// looks like the subject's own (RFC 8693 §1.1). Default false: every
	// exchanged token says who acted.
	//
	// +optional
	AllowImpersonation bool `json:"allowImpersonation,omitempty"`
}

// TokenEndpointAuthMethod is how a client authenticates to the token,
// revocation and introspection endpoints (RFC 7591 §2).
//
// +kubebuilder:validation:Enum=client_secret_basic;client_secret_post;none;private_key_jwt;federated_jwt
type TokenEndpointAuthMethod string

// The client authentication methods, named as in RFC 7591 §2 (a client
// secret in HTTP Basic or in the form body, or none for a public client),
// and the two that sign a JWT assertion instead.
const (
	AuthClientSecretBasic TokenEndpointAuthMethod = "client_secret_basic"
	AuthClientSecretPost  TokenEndpointAuthMethod = "client_secret_post"
	AuthNone              TokenEndpointAuthMethod = "none"
	// AuthPrivateKeyJWT is a JWT client assertion the client signs with its
	// own private key (RFC 7523 §2.2, OpenID Connect Core §9).
	AuthPrivateKeyJWT TokenEndpointAuthMethod = "private_key_jwt"
	// AuthFederatedJWT is a JWT client assertion issued by someone the server
	// trusts, not by the client: the cluster's service-account token, or a
	// trusted issuer's token (RFC 7523 §2.2 with a third-party issuer). A
	// Gatehouse name; the request is the same as for private_key_jwt, with
	// the client_id.
	AuthFederatedJWT TokenEndpointAuthMethod = "federated_jwt"
)

// ClientAssertionTypeJWTBearer is the client_assertion_type of a JWT
// client assertion (RFC 7523 §2.2).
const ClientAssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// RedirectURI is where the server sends the browser back with the code. It
// is matched exactly, character for character (RFC 9700 §4.1.3), so it
// cannot hold a wildcard or a pattern. The one exception is a native app's
// loopback URI on the IP literal 127.0.0.1 or [::1] (not localhost): it
// matches on any port, since the app listens on whichever port it gets
// (RFC 8252 §7.3). It must be absolute, without a fragment or userinfo,
// and use https, except http on loopback hosts (127.0.0.1, [::1],
// localhost) and private-use schemes of native apps such as
// com.example.app:/callback (RFC 8252 §7).
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=2048
// +kubebuilder:validation:XValidation:rule="isURL(self) && size(url(self).getScheme()) > 0",message="a redirect URI must be an absolute URL, e.g. https://app.example.com/callback"
// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="a redirect URI must not contain a fragment (RFC 6749 §3.1.2)"
// +kubebuilder:validation:XValidation:rule="!self.contains('*')",message="a redirect URI must not contain a wildcard '*': redirect URIs are matched exactly, character for character, so a pattern such as https://*.example.com/cb or https://app.example.com/* would never match; register each URI in full"
// +kubebuilder:validation:XValidation:rule="!self.matches(r'^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@')",message="a redirect URI must not contain userinfo (user@ before the host): browsers drop or refuse credentials in URLs (RFC 3986 §3.2.1), so the exact match could never work, and user@host can disguise the real host"
// +kubebuilder:validation:XValidation:rule="!isURL(self) || (self.startsWith('https://') && size(url(self).getHost()) > 0) || self.matches(r'^http://(127\\.0\\.0\\.1|\\[::1\\]|localhost)(:[0-9]{1,5})?([/?]|$)') || self.matches(r'^[a-z][a-z0-9+-]*(\\.[a-z0-9+-]+)+:/')",message="a redirect URI must use https; http is allowed only on loopback hosts (127.0.0.1, [::1], localhost), and native apps may use a private-use scheme in reverse-domain form such as com.example.app:/callback (RFC 8252 §7)"
type RedirectURI string

// OAuthClientSpec registers an application with an AuthorizationServer.
//
// +kubebuilder:validation:XValidation:rule="self.clientType != 'public' || !('client_credentials' in self.grantTypes)",message="a public client cannot use client_credentials: it has no secret to authenticate with"
// +kubebuilder:validation:XValidation:rule="!has(self.secretKeyAliases) || (self.clientType != 'public' && !has(self.authentication))",message="secretKeyAliases are keys of the client's Secret: a public client, or one with spec.authentication, has none"
// +kubebuilder:validation:XValidation:rule="self.clientType != 'public' || (!has(self.secretName) && !has(self.secretRotation))",message="a public client has no secret: remove secretName and secretRotation"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'none' || self.clientType == 'public'",message="tokenEndpointAuthMethod none is for public clients only; a confidential client authenticates with its secret"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod == 'none' || self.clientType != 'public'",message="a public client has no secret, so its tokenEndpointAuthMethod must be none"
// +kubebuilder:validation:XValidation:rule="!has(self.authentication) || self.clientType != 'public'",message="a public client cannot have authentication: it proves nothing about itself (use clientType confidential)"
// +kubebuilder:validation:XValidation:rule="!has(self.authentication) || (!has(self.secretName) && !has(self.secretRotation))",message="a client with spec.authentication has no secret: remove secretName and secretRotation (its client_id and endpoints go to the ConfigMap spec.configMapName)"
// +kubebuilder:validation:XValidation:rule="has(self.authentication) || !has(self.configMapName)",message="configMapName is for clients with spec.authentication; a client with a secret gets its Secret (spec.secretName)"
// +kubebuilder:validation:XValidation:rule="!has(self.authentication) || !has(self.authentication.privateKeyJWT) || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod == 'private_key_jwt'",message="authentication.privateKeyJWT means tokenEndpointAuthMethod private_key_jwt: leave it unset or set it to that"
// +kubebuilder:validation:XValidation:rule="!has(self.authentication) || has(self.authentication.privateKeyJWT) || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod == 'federated_jwt'",message="authentication.serviceAccount and authentication.federated mean tokenEndpointAuthMethod federated_jwt: leave it unset or set it to that"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'private_key_jwt' || (has(self.authentication) && has(self.authentication.privateKeyJWT))",message="tokenEndpointAuthMethod private_key_jwt needs the client's public keys in authentication.privateKeyJWT"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'federated_jwt' || (has(self.authentication) && (has(self.authentication.serviceAccount) || has(self.authentication.federated)))",message="tokenEndpointAuthMethod federated_jwt needs authentication.serviceAccount or authentication.federated"
// +kubebuilder:validation:XValidation:rule="self.clientType != 'public' || self.requirePKCE",message="PKCE cannot be turned off for a public client (RFC 9700 §2.1.1)"
// +kubebuilder:validation:XValidation:rule="self.clientType != 'public' || !has(self.skipConsent) || !self.skipConsent",message="skipConsent is not allowed for a public client: anyone can use its client_id, so the person must approve each request on the consent page (RFC 6749 §10.2, RFC 8252 §8.6)"
// +kubebuilder:validation:XValidation:rule="!('refresh_token' in self.grantTypes) || 'authorization_code' in self.grantTypes || 'urn:ietf:params:oauth:grant-type:device_code' in self.grantTypes",message="grant type refresh_token requires authorization_code or urn:ietf:params:oauth:grant-type:device_code: refresh tokens are issued only with a person's login"
// +kubebuilder:validation:XValidation:rule="!('authorization_code' in self.grantTypes) || (has(self.redirectURIs) && size(self.redirectURIs) > 0)",message="grant type authorization_code needs at least one redirect URI"
// +kubebuilder:validation:XValidation:rule="!has(self.requirePushedAuthorizationRequests) || !self.requirePushedAuthorizationRequests || 'authorization_code' in self.grantTypes",message="requirePushedAuthorizationRequests is about authorization requests: it needs grant type authorization_code"
// +kubebuilder:validation:XValidation:rule="!('urn:ietf:params:oauth:grant-type:token-exchange' in self.grantTypes) || has(self.tokenExchange)",message="grant type urn:ietf:params:oauth:grant-type:token-exchange needs spec.tokenExchange: which tokens the client may exchange"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenExchange) || 'urn:ietf:params:oauth:grant-type:token-exchange' in self.grantTypes",message="spec.tokenExchange is set, but grantTypes does not include urn:ietf:params:oauth:grant-type:token-exchange"
// +kubebuilder:validation:XValidation:rule="self.clientType != 'public' || !('urn:ietf:params:oauth:grant-type:token-exchange' in self.grantTypes)",message="a public client cannot use token exchange: anyone could use its client_id to trade tokens they found"
type OAuthClientSpec struct {
	// ServerRef is the AuthorizationServer this client registers with. The
	// server's allowedClients decides whether this namespace may. Immutable.
	//
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="serverRef is immutable: create a new OAuthClient to register with another server"
	ServerRef ServerReference `json:"serverRef"`

	// DisplayName is shown to people on the consent page. Defaults to the
	// object's name.
	//
	// +kubebuilder:validation:MaxLength=128
	// +optional
	DisplayName string `json:"displayName,omitempty"`

	// ClientType is confidential (default: has a secret) or public (no
	// secret; PKCE is required and client_credentials is not allowed).
	// Immutable.
	//
	// +kubebuilder:default=confidential
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="clientType is immutable: create a new OAuthClient instead"
	// +optional
	ClientType ClientType `json:"clientType,omitempty"`

	// TokenEndpointAuthMethod is how the client authenticates at the token,
	// introspection, revocation and pushed authorization request
	// endpoints. When unset: private_key_jwt or federated_jwt as
	// spec.authentication says, none for public clients, and for
	// confidential clients with a secret both client_secret_basic (the
	// Authorization header) and client_secret_post (the request body), as
	// relying-party libraries use either by default. Set it to pin one
	// method: any other is then refused.
	//
	// +optional
	TokenEndpointAuthMethod TokenEndpointAuthMethod `json:"tokenEndpointAuthMethod,omitempty"`

	// Authentication is the client's credential when it is not a client
	// secret: its Kubernetes ServiceAccount, its own key pair, or tokens of
	// an issuer the server trusts. Such a client has no client_secret
	// anywhere.
	//
	// +optional
	Authentication *ClientAuthentication `json:"authentication,omitempty"`

	// ConfigMapName is the ConfigMap, in this namespace, that receives the
	// connection data of a client with spec.authentication: client_id,
	// issuer, the endpoints, token_endpoint_auth_method and, for a
	// ServiceAccount, the audience its projected token needs. Nothing in
	// it is secret. Defaults to "<name>-oauth-client". The operator
	// creates it and owns it; it never takes over a ConfigMap it did not
	// create (Ready=False, reason ConfigMapConflict).
	//
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="configMapName must be a valid ConfigMap name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	// +optional
	ConfigMapName string `json:"configMapName,omitempty"`

	// RedirectURIs the server may send the browser back to, matched
	// exactly. Required for authorization_code.
	//
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +optional
	RedirectURIs []RedirectURI `json:"redirectURIs,omitempty"`

	// PostLogoutRedirectURIs the server may send the browser back to after
	// the app asked it to end the person's session (OpenID Connect
	// RP-Initiated Logout 1.0 post_logout_redirect_uri), matched exactly
	// like RedirectURIs. Any other is refused with a page, never followed.
	//
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +optional
	PostLogoutRedirectURIs []RedirectURI `json:"postLogoutRedirectURIs,omitempty"`

	// BackchannelLogout has the server tell the app when a person's
	// session here ends (OpenID Connect Back-Channel Logout 1.0): their
	// own sign-out, an administrator's SessionRevocation, their removal
	// from the users Secret or an identity provider. The server POSTs a
	// signed logout token to the URI, from its back end, and retries
	// with backoff while the app does not answer.
	//
	// +optional
	BackchannelLogout *BackchannelLogout `json:"backchannelLogout,omitempty"`

	// GrantTypes the client may use. Default [authorization_code].
	// urn:ietf:params:oauth:grant-type:device_code is the device
	// authorization grant (RFC 8628), for command lines and devices that
	// cannot open a browser; public clients may use it, and it needs no
	// redirect URI.
	//
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:default={"authorization_code"}
	// +optional
	GrantTypes []GrantType `json:"grantTypes,omitempty"`

	// Scopes the client may request. Each must be defined by a Scope of the
	// server, or be one of the built-in OpenID Connect scopes openid,
	// profile, email, groups and offline_access. A request for anything
	// else fails with invalid_scope.
	//
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Scopes []ScopeName `json:"scopes,omitempty"`

	// Audience is the `aud` of access tokens issued to this client, added to
	// the audiences of the granted scopes. Each must be the audience of a
	// Scope of the server that admits this client's namespace (its
	// allowedClients); otherwise the client is Ready=False with reason
	// AudienceNotAllowed.
	//
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Audience []Audience `json:"audience,omitempty"`

	// TokenExchange allows, and bounds, token exchange (RFC 8693): which
	// tokens the client may trade for access tokens of this server, and
	// on whose behalf. Required with the token-exchange grant type and
	// allowed only with it. The new token's audience and scopes are
	// chosen as for every grant: among those the client may have.
	//
	// +optional
	TokenExchange *TokenExchange `json:"tokenExchange,omitempty"`

	// RequirePKCE makes the authorization code flow require PKCE with S256
	// (RFC 7636). On by default (RFC 9700 §2.1.1); a confidential client may
	// opt out, a public client may not.
	//
	// +kubebuilder:default=true
	// +optional
	RequirePKCE *bool `json:"requirePKCE,omitempty"`

	// SkipConsent skips the consent page, for trusted first-party apps.
	// Confidential clients only: a public client is always asked, since
	// anyone can use its client_id (RFC 8252 §8.6).
	//
	// +optional
	SkipConsent bool `json:"skipConsent,omitempty"`

	// RequirePushedAuthorizationRequests makes the client push every
	// authorization request to the pushed authorization request endpoint
	// first (RFC 9126, require_pushed_authorization_requests): /authorize
	// then accepts only the request_uri the push returned, so the
	// request's parameters never travel through the browser and cannot be
	// changed there. Default false: the client may push, or send the
	// parameters to /authorize itself. The AuthorizationServer's
	// spec.pushedAuthorizationRequests.required requires it of every
	// client.
	//
	// +optional
	RequirePushedAuthorizationRequests bool `json:"requirePushedAuthorizationRequests,omitempty"`

	// TokenLifetimes of this client's access, ID and refresh tokens, where
	// they should differ from the server's spec.tokens.
	//
	// +optional
	TokenLifetimes *ClientTokenLifetimes `json:"tokenLifetimes,omitempty"`

	// AllowedCORSOrigins are browser origins that may call the token,
	// userinfo, revocation and introspection endpoints from JavaScript
	// (CORS), matched exactly. A public client's redirect URIs' origins
	// need not be listed: they are allowed for token, userinfo and
	// revocation already. Introspection is open only to origins listed
	// here. CORS never admits cookies (no Access-Control-Allow-Credentials),
	// so an allowed origin reads only answers to requests that carry their
	// own credentials.
	//
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +optional
	AllowedCORSOrigins []CORSOrigin `json:"allowedCORSOrigins,omitempty"`

	// LogoURI is the app's logo, shown on the consent page (RFC 7591
	// logo_uri). The page's Content-Security-Policy allows this one image
	// URL and no other.
	//
	// +optional
	LogoURI DisplayURI `json:"logoURI,omitempty"`

	// PolicyURI is the app's privacy policy, linked from the consent page
	// (RFC 7591 policy_uri).
	//
	// +optional
	PolicyURI DisplayURI `json:"policyURI,omitempty"`

	// TOSURI is the app's terms of service, linked from the consent page
	// (RFC 7591 tos_uri).
	//
	// +optional
	TOSURI DisplayURI `json:"tosURI,omitempty"`

	// ClaimMapping changes the groups and adds claims of this client's
	// tokens, after the AuthorizationServer's spec.claimMapping (see
	// ClaimMapping). None by default.
	//
	// +optional
	ClaimMapping *ClaimMapping `json:"claimMapping,omitempty"`

	// IDTokenSignedResponseAlg is the algorithm of the ID tokens the client
	// receives (OpenID Connect Dynamic Client Registration 1.0 §2,
	// id_token_signed_response_alg): RS256, the default that every OpenID
	// Connect library accepts, or ES256. The server keeps a key of each.
	//
	// +kubebuilder:validation:Enum=RS256;ES256
	// +optional
	IDTokenSignedResponseAlg string `json:"idTokenSignedResponseAlg,omitempty"`

	// SecretName is the Secret, in this namespace, that receives the client's
	// credentials for the app to mount: client_id, client_secret, issuer,
	// authorization_endpoint, token_endpoint and jwks_uri. Defaults to
	// "<name>-oauth-client". The operator creates this Secret and owns it.
	// It never takes over a Secret it did not create: an existing Secret is
	// used only when it already holds a client_secret to adopt (External
	// Secrets, Sealed Secrets), which is never overwritten, or when its
	// owner annotated it oauth.gatehouse.dev/adopt-by=<this client's name>;
	// any other Secret is left untouched (Ready=False, SecretNotAdoptable).
	// Confidential clients only.
	//
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="secretName must be a valid Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// SecretKeyAliases are further keys of the client's Secret, each
	// holding the value of one of the operator's keys under the name an
	// app reads (OAUTH2_PROXY_CLIENT_SECRET, GF_AUTH_GENERIC_OAUTH_CLIENT_ID,
	// ...), so that its envFrom works unchanged. An alias of client_secret
	// follows every rotation. In a Secret the operator did not create the
	// same rules hold as for its other keys: it never overwrites a key
	// holding another value (SecretConflict), and removes only the keys it
	// wrote. Clients with a Secret only.
	//
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	SecretKeyAliases []SecretKeyAlias `json:"secretKeyAliases,omitempty"`

	// SecretRotation rotates the client secret on a schedule. Without it the
	// secret rotates only on demand, when the annotation
	// oauth.gatehouse.dev/rotate-secret changes. Confidential clients only.
	//
	// +optional
	SecretRotation *SecretRotation `json:"secretRotation,omitempty"`
}

// BackchannelLogout is where and how an app receives logout tokens
// (OpenID Connect Back-Channel Logout 1.0 §2.2).
type BackchannelLogout struct {
	// URI receives the logout tokens (backchannel_logout_uri): an
	// absolute https URL without a fragment; http only on loopback hosts
	// (127.0.0.1, [::1], localhost), for development.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && size(url(self).getHost()) > 0",message="uri must be an absolute URL with a host, e.g. https://app.example.com/backchannel-logout"
	// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['127.0.0.1', '::1', 'localhost'])",message="uri must use https; http is allowed only on loopback hosts (127.0.0.1, [::1], localhost)"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="uri must not have a fragment (Back-Channel Logout 1.0 §2.2)"
	URI string `json:"uri"`

	// SessionRequired says the app needs the session ID (sid) in every
	// logout token (backchannel_logout_session_required). Such an app is
	// not sent the logout tokens that have none: an administrator's
	// logout of a person's grants held outside any browser session.
	//
	// +optional
	SessionRequired bool `json:"sessionRequired,omitempty"`
}

// ServerReference points at an AuthorizationServer.
type ServerReference struct {
	// Name of the AuthorizationServer.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the AuthorizationServer. Defaults to the client's own.
	//
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// SecretRotation schedules client-secret rotation. After a rotation the old
// secret keeps working for GracePeriod, so apps can pick up the new one
// without downtime.
//
// +kubebuilder:validation:XValidation:rule="!has(self.interval) || !has(self.gracePeriod) || !self.interval.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || !self.gracePeriod.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.gracePeriod) < duration(self.interval)",message="gracePeriod must be shorter than interval"
type SecretRotation struct {
	// Interval between automatic rotations, between 1h and 8760h. Unset
	// means rotation on demand only.
	//
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="interval must be a duration such as 2160h"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h') && duration(self) <= duration('8760h'))",message="interval must be between 1h and 8760h"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// GracePeriod is how long the previous secret still works after a
	// rotation, between 0s and 720h. Default 24h.
	//
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="gracePeriod must be a duration such as 24h"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('720h')",message="gracePeriod must be at most 720h"
	// +optional
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// SecretHash is a hash of a client secret the server accepts.
type SecretHash struct {
	// Hash of the secret, prefixed with its algorithm ("sha256:<base64>").
	//
	// +kubebuilder:validation:MaxLength=256
	Hash string `json:"hash"`

	// NotAfter is when the secret stops being accepted; unset for the
	// current secret.
	//
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
}

// ExchangeServiceAccountNames are the ServiceAccounts whose tokens the
// client may present in a token exchange (spec.tokenExchange, type
// ServiceAccount), each once.
func (oc *OAuthClient) ExchangeServiceAccountNames() []string {
	if oc.Spec.TokenExchange == nil {
		return nil
	}
	var out []string
	for _, lists := range [][]ExchangeableToken{oc.Spec.TokenExchange.SubjectTokens, oc.Spec.TokenExchange.ActorTokens} {
		for _, t := range lists {
			for _, name := range t.ServiceAccounts {
				if !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// Audiences are every audience the client names and that the Scopes'
// admission rule applies to: spec.audience and the APIs whose callers'
// tokens it may exchange.
func (oc *OAuthClient) Audiences() []Audience {
	if oc.Spec.TokenExchange == nil {
		return oc.Spec.Audience
	}
	out := append([]Audience(nil), oc.Spec.Audience...)
	for _, lists := range [][]ExchangeableToken{oc.Spec.TokenExchange.SubjectTokens, oc.Spec.TokenExchange.ActorTokens} {
		for _, t := range lists {
			for _, a := range t.Audiences {
				if !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// ServiceAccountUID is a ServiceAccount of the client's namespace and the
// UID the operator found it under.
type ServiceAccountUID struct {
	// Name of the ServiceAccount.
	//
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// UID of the ServiceAccount.
	//
	// +kubebuilder:validation:MaxLength=64
	UID string `json:"uid"`
}

// OAuthClientStatus is what the operator observed and did.
type OAuthClientStatus struct {
	// ObservedGeneration is the generation this status describes.
	//
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready is True when the server reference resolves, the
	// namespace is admitted, every scope exists and the credentials are in
	// place.
	//
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ClientID is the client_id assigned by the operator: stable, unique
	// per server.
	//
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// SecretName is the Secret that holds the client's credentials.
	//
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// SecretHashes are hashes of the secrets the server accepts: the
	// current one, and earlier ones until their grace period ends. Never
	// the plaintext.
	//
	// +kubebuilder:validation:MaxItems=16
	// +optional
	SecretHashes []SecretHash `json:"secretHashes,omitempty"`

	// LastRotationTime is when the secret last changed.
	//
	// +optional
	LastRotationTime *metav1.Time `json:"lastRotationTime,omitempty"`

	// ConfigMapName is the ConfigMap that holds the connection data of a
	// client with spec.authentication.
	//
	// +optional
	ConfigMapName string `json:"configMapName,omitempty"`

	// ServiceAccountUID is the UID of the ServiceAccount named by
	// spec.authentication.serviceAccount. The server accepts only tokens
	// of that very ServiceAccount: one deleted and re-created under the
	// same name has another UID, and its old tokens are refused.
	//
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ServiceAccountUID string `json:"serviceAccountUID,omitempty"`

	// ExchangeServiceAccounts are the UIDs of the ServiceAccounts named in
	// spec.tokenExchange (type ServiceAccount) that exist. The server
	// accepts as subject_token or actor_token only tokens of those very
	// ServiceAccounts, as for spec.authentication.serviceAccount: a token
	// of one that does not exist, or of one deleted and re-created since
	// it was issued, is refused.
	//
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	// +optional
	ExchangeServiceAccounts []ServiceAccountUID `json:"exchangeServiceAccounts,omitempty"`

	// PublicKeys are the public keys the operator read from
	// spec.authentication.privateKeyJWT.secretRef, which the server checks
	// assertions with (it cannot read app Secrets itself).
	//
	// +kubebuilder:validation:MaxItems=8
	// +optional
	PublicKeys []JSONWebKey `json:"publicKeys,omitempty"`
}

// OAuthClient registers an application with an AuthorizationServer. The
// operator assigns a client_id and, for a confidential client, writes a
// generated secret with the server's endpoints into a Secret next to the
// app; the token server sees only a hash of it.
//
// The Secret and status.secretHashes are kept consistent by these rules:
//   - Secret missing, or its client_secret removed: a new secret is
//     generated, and every earlier one is revoked at once (deleting the
//     Secret is how to revoke a leaked secret immediately). Changing
//     spec.secretName does the same: the old Secret is removed.
//   - client_secret changed by someone else (an edit, or an external
//     source such as External Secrets rotating it): a strong value is
//     adopted and the previous secret keeps working for gracePeriod
//     (default 24h); a weak one is refused with Ready=False, reason
//     WeakSecret, and nothing is overwritten.
//   - A Secret that existed before the OAuthClient is never taken over.
//     One holding a client_secret is adopted: the operator adds the other
//     keys (refusing, with SecretConflict, to overwrite one that holds
//     another value) but never overwrites client_secret, never owns it,
//     never rotates it. One annotated oauth.gatehouse.dev/adopt-by=<name>
//     gets a generated client_secret too. Either way the operator records
//     the keys it wrote (annotation oauth.gatehouse.dev/written-keys) and
//     on deletion removes only those. Any other Secret is left untouched
//     and the client is Ready=False with reason SecretNotAdoptable.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oac,categories=gatehouse
// +kubebuilder:validation:XValidation:rule="self.spec.clientType == 'public' || has(self.spec.secretName) || has(self.spec.configMapName) || size(self.metadata.name) <= 240",message="the default Secret or ConfigMap name <name>-oauth-client would be longer than 253 characters: use a name of at most 240 characters, or set spec.secretName (spec.configMapName for a client with spec.authentication)"
// +kubebuilder:printcolumn:name="Server",type=string,JSONPath=`.spec.serverRef.name`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.clientType`
// +kubebuilder:printcolumn:name="Client ID",type=string,JSONPath=`.status.clientID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`,priority=1
// +kubebuilder:printcolumn:name="Grants",type=string,JSONPath=`.spec.grantTypes`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OAuthClient struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   OAuthClientSpec   `json:"spec"`
	Status OAuthClientStatus `json:"status,omitempty"`
}

// OAuthClientList is a list of OAuthClients.
//
// +kubebuilder:object:root=true
type OAuthClientList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OAuthClient `json:"items"`
}
