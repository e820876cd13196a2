// Package endpoints is where a Gatehouse token server serves each endpoint,
// relative to its issuer. The operator writes these URLs into apps' Secrets
// and the AuthorizationServer status; the token server mounts its handlers
// on them and advertises them in its metadata.
package endpoints

import (
	"net/url"
	"strings"
)

// Paths below the issuer's path.
const (
	AuthorizePath  = "/authorize"
	LoginPath      = "/login"
	ConsentPath    = "/consent"
	TokenPath      = "/token"
	RevokePath     = "/revoke"
	IntrospectPath = "/introspect"
	JWKSPath       = "/jwks"
	UserinfoPath   = "/userinfo"
	// EndSessionPath is RP-Initiated Logout 1.0's end_session_endpoint.
	EndSessionPath = "/logout"
	// DeviceAuthorizationPath is RFC 8628 §3.1's device authorization
	// endpoint; DevicePath its verification_uri, the page where the person
	// enters the user code.
	DeviceAuthorizationPath = "/device_authorization"
	DevicePath              = "/device"
	// PushedAuthorizationRequestPath is RFC 9126's
	// pushed_authorization_request_endpoint.
	PushedAuthorizationRequestPath = "/par"
	// OpenIDConfigurationPath is where OpenID Connect Discovery 1.0 §4
	// puts the provider configuration: appended to the issuer, path and
	// all (unlike RFC 8414's well-known URL).
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
	// BrandLogoPath serves spec.branding.logoConfigMapRef's image.
	BrandLogoPath = "/branding/logo"
	// MetadataWellKnown is the RFC 8414 well-known suffix.
	MetadataWellKnown = "/.well-known/oauth-authorization-server"
)

// Endpoints are the absolute URLs of one issuer's endpoints.
type Endpoints struct {
	Issuer, Authorization, Token, Revocation, Introspection, JWKS, Metadata string
	Userinfo, OpenIDConfiguration, EndSession                               string
	// DeviceAuthorization is RFC 8628's device_authorization_endpoint;
	// Device its verification_uri.
	DeviceAuthorization, Device string
	// PushedAuthorizationRequest is RFC 9126's
	// pushed_authorization_request_endpoint.
	PushedAuthorizationRequest string
}

// For returns the endpoints of an issuer such as https://auth.example.com or
// https://example.com/tenants/a.
func For(issuer string) Endpoints {
	base := strings.TrimSuffix(issuer, "/")
	return Endpoints{
		Issuer:        issuer,
		Authorization: base + AuthorizePath,
		Token:         base + TokenPath,
		Revocation:    base + RevokePath,
		Introspection: base + IntrospectPath,
		JWKS:          base + JWKSPath,
		Metadata:      MetadataURL(issuer),
		Userinfo:      base + UserinfoPath,
		EndSession:    base + EndSessionPath,
		// RFC 8628 §3.1, §3.2.
		DeviceAuthorization: base + DeviceAuthorizationPath,
		Device:              base + DevicePath,
		// RFC 9126 §5.
		PushedAuthorizationRequest: base + PushedAuthorizationRequestPath,
		// OIDC Discovery 1.0 §4.1.
		OpenIDConfiguration: base + OpenIDConfigurationPath,
	}
}

// MetadataURL is where RFC 8414 §3.1 puts an issuer's metadata: the
// well-known suffix is inserted between the host and the issuer's path, so
// https://example.com/tenants/a has its metadata at
// https://example.com/.well-known/oauth-authorization-server/tenants/a.
func MetadataURL(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return strings.TrimSuffix(issuer, "/") + MetadataWellKnown
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	u.RawPath = ""
	u.Path = MetadataWellKnown + path
	return u.String()
}
