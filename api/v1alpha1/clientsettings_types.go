package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClientTokenLifetimes are the lifetimes of one client's tokens, where
// they differ from the server's spec.tokens. Each unset field keeps the
// server-wide value.
//
// +kubebuilder:validation:XValidation:rule="!has(self.accessToken) || !has(self.refreshToken) || !self.accessToken.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || !self.refreshToken.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.refreshToken) > duration(self.accessToken)",message="refreshToken lifetime must be longer than accessToken lifetime"
type ClientTokenLifetimes struct {
	// AccessToken is how long the client's access tokens are valid,
	// between 1m and 24h. Default: the server's spec.tokens.accessToken.
	// The operator keeps a retired signing key published for the longest
	// lifetime any client of the server has, so a longer lifetime never
	// outlives the key that signed it.
	//
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="accessToken lifetime must be a duration such as 5m or 1h"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="accessToken lifetime must be between 1m and 24h"
	// +optional
	AccessToken *metav1.Duration `json:"accessToken,omitempty"`

	// IDToken is how long the client's ID tokens are valid, between 1m
	// and 24h. Default: the client's access-token lifetime (which the
	// server's spec.tokens.accessToken sets when this client does not).
	//
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="idToken lifetime must be a duration such as 5m or 1h"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="idToken lifetime must be between 1m and 24h"
	// +optional
	IDToken *metav1.Duration `json:"idToken,omitempty"`

	// RefreshToken is how long a login's refresh tokens keep working,
	// counted from the login, between 1h and 8760h. Default: the server's
	// spec.tokens.refreshToken.
	//
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="refreshToken lifetime must be a duration such as 720h"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h') && duration(self) <= duration('8760h'))",message="refreshToken lifetime must be between 1h and 8760h"
	// +optional
	RefreshToken *metav1.Duration `json:"refreshToken,omitempty"`
}

// CORSOrigin is a browser origin, exactly as browsers send it in the
// Origin header: scheme://host or scheme://host:port, lower case, with
// nothing after it (no path, not even a trailing slash) and no wildcard.
// https, or http on a loopback host (127.0.0.1, [::1], localhost).
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=300
// +kubebuilder:validation:XValidation:rule="!self.contains('*')",message="an origin must not contain a wildcard '*': origins are matched exactly; list each one"
// +kubebuilder:validation:XValidation:rule="self.contains('*') || self.matches(r'^[a-z][a-z0-9+.-]*://[^/?#@\\s]+$')",message="an origin is scheme://host[:port] and nothing else (no path, trailing slash, query, fragment or userinfo), e.g. https://app.example.com"
// +kubebuilder:validation:XValidation:rule="self == self.lowerAscii()",message="an origin must be lower case, as browsers send it in the Origin header"
// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['127.0.0.1', '::1', 'localhost'])",message="an origin must use https; http is allowed only on loopback hosts (127.0.0.1, [::1], localhost)"
// +kubebuilder:validation:XValidation:rule="!(self.startsWith('https://') && self.endsWith(':443')) && !(self.startsWith('http://') && self.endsWith(':80'))",message="an origin must not name the scheme's default port: browsers leave it out of the Origin header, so it would never match"
type CORSOrigin string

// DisplayURI is a link or image shown to people on the consent page: an
// absolute https URL without userinfo or a fragment, and without
// whitespace, quotes, ';' or ',' (a logo's URL is written into the page's
// Content-Security-Policy, where those would end the source expression).
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=2048
// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && size(url(self).getHost()) > 0",message="must be an absolute https URL, e.g. https://app.example.com/privacy"
// +kubebuilder:validation:XValidation:rule="!self.matches(r'^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@')",message="must not contain userinfo (user@ before the host)"
// +kubebuilder:validation:XValidation:rule="!self.matches(r'[\\s;,#<>\\\\]') && !self.contains('\"') && !self.contains(\"'\") && !self.contains('`')",message="must not contain whitespace, quotes, backslashes, '<', '>', ';', ',' or a fragment ('#')"
type DisplayURI string

// SecretKeyAlias is an extra key of the client's Secret that holds the
// same value as one of the keys the operator writes, under the name an
// app reads: e.g. OAUTH2_PROXY_CLIENT_SECRET for client_secret, so that
// the app's envFrom works unchanged.
//
// +kubebuilder:validation:XValidation:rule="!(self.name in ['client_id', 'client_secret', 'issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'oidc_discovery_url', 'userinfo_endpoint', 'end_session_endpoint', 'grant_types', 'scope', 'subject_token_types', 'actor_token_types', 'resources'])",message="name is one of the keys the operator writes itself; an alias needs a name of its own"
type SecretKeyAlias struct {
	// Name of the key in the Secret, e.g. OAUTH2_PROXY_CLIENT_SECRET.
	// Letters, digits, '-', '_' and '.', as Secret keys allow.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Name string `json:"name"`

	// From is the value the key holds: one of the operator's own keys.
	// userinfo_endpoint and end_session_endpoint are written only under
	// their aliases. An alias of client_secret follows every rotation.
	From SecretKeySource `json:"from"`
}

// SecretKeySource names a value the operator writes into a client's
// Secret.
//
// +kubebuilder:validation:Enum=client_id;client_secret;issuer;authorization_endpoint;token_endpoint;jwks_uri;oidc_discovery_url;userinfo_endpoint;end_session_endpoint
type SecretKeySource string

// The values an alias can hold besides the Secret's own keys.
const (
	SecretKeyUserinfoEndpoint   SecretKeySource = "userinfo_endpoint"
	SecretKeyEndSessionEndpoint SecretKeySource = "end_session_endpoint"
)

// Lifetimes are the lifetimes of a client's tokens, every default
// applied.
type Lifetimes struct {
	AccessToken, IDToken, RefreshToken time.Duration
}

// Lifetimes are the server-wide token lifetimes, defaulted: what a client
// that sets none gets. An ID token lives as long as an access token.
func (s *AuthorizationServer) Lifetimes() Lifetimes {
	return Lifetimes{AccessToken: s.AccessTokenLifetime(), IDToken: s.AccessTokenLifetime(), RefreshToken: s.RefreshTokenLifetime()}
}

// Resolve is the lifetimes of a client with these settings on a server
// whose defaulted lifetimes are server (AuthorizationServer.Lifetimes).
// A nil l keeps the server's. An ID token lives as long as the client's
// access token unless idToken says otherwise.
func (l *ClientTokenLifetimes) Resolve(server Lifetimes) Lifetimes {
	if l == nil {
		return server
	}
	out := Lifetimes{
		AccessToken:  orDefault(l.AccessToken, server.AccessToken),
		RefreshToken: orDefault(l.RefreshToken, server.RefreshToken),
	}
	idDefault := server.IDToken
	if l.AccessToken != nil && l.AccessToken.Duration > 0 {
		idDefault = out.AccessToken
	}
	out.IDToken = orDefault(l.IDToken, idDefault)
	return out
}

// Lifetimes are the client's token lifetimes on server: its
// spec.tokenLifetimes, each unset one the server's.
func (c *OAuthClient) Lifetimes(server *AuthorizationServer) Lifetimes {
	return c.Spec.TokenLifetimes.Resolve(server.Lifetimes())
}

// LongestSigned is the longest a token the client gets signed (access or
// ID token) may be valid: how long a retired signing key must stay
// published for it. Zero when the client sets neither.
func (l *ClientTokenLifetimes) LongestSigned() time.Duration {
	if l == nil {
		return 0
	}
	var longest time.Duration
	for _, d := range []*metav1.Duration{l.AccessToken, l.IDToken} {
		if d != nil {
			longest = max(longest, d.Duration)
		}
	}
	return longest
}
