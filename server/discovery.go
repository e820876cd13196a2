package server

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
)

// idTokenClaims are the claims an ID token may carry besides the
// scope-released ones (Core §2, §3.1.3.6).
var idTokenClaimNames = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "sid", "amr"}

// promptValues are the prompt values /authorize understands (Core
// §3.1.2.1); select_account has no meaning with one account per browser.
var promptValues = []string{"none", "login", "consent"}

// openIDConfiguration is the OpenID Provider Metadata of OpenID Connect
// Discovery 1.0 §3. It embeds the RFC 8414 document, so that the two
// documents can never disagree on what they share (RFC 8414 §2 defines
// those members with the same meaning).
type openIDConfiguration struct {
	metadata
	UserinfoEndpoint string `json:"userinfo_endpoint"`
	// EndSessionEndpoint is RP-Initiated Logout 1.0 §2.1.
	EndSessionEndpoint               string   `json:"end_session_endpoint"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
	ClaimTypesSupported              []string `json:"claim_types_supported"`
	PromptValuesSupported            []string `json:"prompt_values_supported"`
	ClaimsParameterSupported         bool     `json:"claims_parameter_supported"`
	// UILocalesSupported are the languages of the pages (ui_locales).
	UILocalesSupported []string `json:"ui_locales_supported"`
	// Request objects (Core §6.1, RFC 9101) signed with a client's
	// registered keys. request_uri only for pushed requests, which
	// Discovery §3's request_uri_parameter_supported (default true) does
	// not cover: it means fetching request objects from URLs.
	RequestParameterSupported              bool     `json:"request_parameter_supported"`
	RequestObjectSigningAlgValuesSupported []string `json:"request_object_signing_alg_values_supported"`
	RequestURIParameterSupported           bool     `json:"request_uri_parameter_supported"`
	// Back-Channel Logout 1.0 §2.1: logout tokens are sent, and carry the
	// sid that ID tokens carry too.
	BackchannelLogoutSupported        bool `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool `json:"backchannel_logout_session_supported"`
}

func buildOpenIDConfiguration(snap *config.Snapshot, federated bool) *document {
	claims := slices.Clone(idTokenClaimNames)
	for _, c := range oidc.Claims(snap.ScopeNames) {
		if !slices.Contains(claims, c) {
			claims = append(claims, c)
		}
	}
	b, _ := json.MarshalIndent(openIDConfiguration{
		metadata:                               baseMetadata(snap, federated),
		UserinfoEndpoint:                       snap.Endpoints.Userinfo,
		EndSessionEndpoint:                     snap.Endpoints.EndSession,
		SubjectTypesSupported:                  []string{"public"},
		IDTokenSigningAlgValuesSupported:       idTokenAlgorithms(snap),
		ClaimsSupported:                        claims,
		ClaimTypesSupported:                    []string{"normal"},
		PromptValuesSupported:                  promptValues,
		ClaimsParameterSupported:               true,
		UILocalesSupported:                     pages.Supported(),
		RequestParameterSupported:              true,
		RequestObjectSigningAlgValuesSupported: jwtverify.Algorithms,
		BackchannelLogoutSupported:             true,
		BackchannelLogoutSessionSupported:      true,
	}, "", "  ")
	return newDocument(append(b, '\n'), "application/json", metadataCacheControl)
}

// idTokenAlgorithms are the algorithms an ID token may be signed with:
// RS256, which Discovery §3 requires and which the key set always has a
// lineage of, and the algorithm of every key that signs now or will (the
// access-token key signs ID tokens while a newly added RS256 key is still
// being prepublished, see keyset.Set.IDTokenKey).
func idTokenAlgorithms(snap *config.Snapshot) []string {
	algs := []string{keyset.RS256}
	if snap.Keys != nil {
		for _, a := range snap.Keys.Algorithms() {
			if !slices.Contains(algs, a) {
				algs = append(algs, a)
			}
		}
	}
	return algs
}

// handleOpenIDConfiguration serves the OpenID Provider configuration
// (Discovery §4) at the issuer's /.well-known/openid-configuration. Like
// the RFC 8414 document it changes only with the configuration.
func (s *Server) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	return s.derive(snap).openIDConfiguration.serve(w, r)
}
