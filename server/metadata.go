package server

import (
	"encoding/json"
	"net/http"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// authMethods are the client authentication methods the token and
// revocation endpoints accept, and those introspection accepts (not none:
// introspection reveals token contents, so public clients may not use it).
// federated_jwt is listed only where the server can verify such tokens:
// it knows the cluster's service-account issuer, or trusts an issuer.
func authMethods(federated bool) (token, introspection []string) {
	introspection = []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
	if federated {
		introspection = append(introspection, "federated_jwt")
	}
	return append([]string{"none"}, introspection...), introspection
}

// federatedJWT reports whether the server verifies federated_jwt client
// assertions for snap: it knows the cluster's service-account issuer or
// trusts another issuer.
func (s *Server) federatedJWT(snap *config.Snapshot) bool {
	return s.saIssuer != nil || len(snap.TrustedIssuers) > 0
}

// grantTypesSupported are the grants of the token endpoint's grant map.
var grantTypesSupported = []string{"authorization_code", "refresh_token", "client_credentials",
	string(oauthv1.GrantDeviceCode), string(oauthv1.GrantTokenExchange)}

// metadata is the RFC 8414 §2 document.
type metadata struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	ScopesSupported                           []string `json:"scopes_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	ResponseModesSupported                    []string `json:"response_modes_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	DeviceAuthorizationEndpoint               string   `json:"device_authorization_endpoint"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	// The JWS algorithms of client assertions (RFC 8414 §2).
	TokenEndpointAuthSigningAlgValuesSupported         []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	CodeChallengeMethodsSupported                      []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseIssParameterSupported         bool     `json:"authorization_response_iss_parameter_supported"`
	// RFC 9126 §5.
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint"`
	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests"`
}

// metadataCacheControl: the documents change only with the
// configuration, so caches may keep them briefly.
const metadataCacheControl = "public, max-age=300"

func buildMetadata(snap *config.Snapshot, federated bool) *document {
	b, _ := json.MarshalIndent(baseMetadata(snap, federated), "", "  ")
	return newDocument(append(b, '\n'), "application/json", metadataCacheControl)
}

// baseMetadata is the RFC 8414 document, which the OpenID Connect
// discovery document embeds.
func baseMetadata(snap *config.Snapshot, federated bool) metadata {
	ep := snap.Endpoints
	tokenMethods, introspectionMethods := authMethods(federated)
	scopes := snap.ScopeNames
	if scopes == nil {
		scopes = []string{}
	}
	return metadata{
		Issuer:                            ep.Issuer,
		AuthorizationEndpoint:             ep.Authorization,
		TokenEndpoint:                     ep.Token,
		JWKSURI:                           ep.JWKS,
		ScopesSupported:                   scopes,
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            responseModesSupported,
		GrantTypesSupported:               grantTypesSupported,
		TokenEndpointAuthMethodsSupported: tokenMethods,
		RevocationEndpoint:                ep.Revocation,
		// RFC 8628 §4.
		DeviceAuthorizationEndpoint:                        ep.DeviceAuthorization,
		RevocationEndpointAuthMethodsSupported:             tokenMethods,
		IntrospectionEndpoint:                              ep.Introspection,
		IntrospectionEndpointAuthMethodsSupported:          introspectionMethods,
		TokenEndpointAuthSigningAlgValuesSupported:         jwtverify.Algorithms,
		RevocationEndpointAuthSigningAlgValuesSupported:    jwtverify.Algorithms,
		IntrospectionEndpointAuthSigningAlgValuesSupported: jwtverify.Algorithms,
		CodeChallengeMethodsSupported:                      []string{"S256"},
		AuthorizationResponseIssParameterSupported:         true,
		PushedAuthorizationRequestEndpoint:                 ep.PushedAuthorizationRequest,
		RequirePushedAuthorizationRequests:                 snap.RequirePAR,
	}
}

// handleMetadata serves RFC 8414 metadata.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	return s.derive(snap).metadata.serve(w, r)
}
