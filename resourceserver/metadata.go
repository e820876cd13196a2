package resourceserver

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// wellKnownResource is the RFC 9728 §3 well-known suffix.
const wellKnownResource = "/.well-known/oauth-protected-resource"

// ProtectedResourceMetadata describes this resource server to clients as
// RFC 9728 §2 says: which resource it is, which authorization servers
// issue tokens for it, which scopes it knows and how it takes tokens.
// MCP clients and other agents start from it: a request without a token
// gets a 401 whose challenge names the metadata's URL (resource_metadata,
// §5.1), the metadata names the authorization server, and the client asks
// that server for a token for this resource (RFC 8707 resource).
//
// Set it in Config.Metadata; Validator.MetadataHandler serves it at
// Validator.MetadataPath.
//
// The resource identifier is Config.Audience, which must then be the URL
// clients call this API by: https without a fragment (http only on
// loopback hosts, for development). The client asks for tokens for that
// resource, so the tokens carry it in aud, which is what the Validator
// checks.
type ProtectedResourceMetadata struct {
	// AuthorizationServers are the issuers whose tokens this resource
	// accepts. Default: Config.Issuer.
	AuthorizationServers []string
	// ScopesSupported are the scopes a client may ask for to call this
	// resource. Default: every scope a Require of the Validator asks for,
	// in the order first asked.
	ScopesSupported []string
	// ResourceName is a name for people (resource_name).
	ResourceName string
	// ResourceDocumentation, ResourcePolicyURI and ResourceTOSURI are URLs
	// of pages for developers and people.
	ResourceDocumentation string
	ResourcePolicyURI     string
	ResourceTOSURI        string
}

// prmDocument is the JSON of RFC 9728 §2.
type prmDocument struct {
	Resource                          string   `json:"resource"`
	AuthorizationServers              []string `json:"authorization_servers"`
	ScopesSupported                   []string `json:"scopes_supported"`
	BearerMethodsSupported            []string `json:"bearer_methods_supported"`
	ResourceSigningAlgValuesSupported []string `json:"resource_signing_alg_values_supported,omitempty"`
	ResourceName                      string   `json:"resource_name,omitempty"`
	ResourceDocumentation             string   `json:"resource_documentation,omitempty"`
	ResourcePolicyURI                 string   `json:"resource_policy_uri,omitempty"`
	ResourceTOSURI                    string   `json:"resource_tos_uri,omitempty"`
}

// resourceMetadata is a Validator's metadata, with the scopes its Require
// calls have asked for.
type resourceMetadata struct {
	url, path string
	doc       prmDocument
	explicit  bool // ScopesSupported was configured

	mu     sync.Mutex
	scopes []string
}

// ProtectedResourceMetadataURL is where RFC 9728 §3.1 puts a resource's
// metadata: the well-known suffix goes between the host and the
// resource's path (without a trailing slash), so https://api.example.com/mcp
// is described at
// https://api.example.com/.well-known/oauth-protected-resource/mcp.
func ProtectedResourceMetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", fmt.Errorf("resource: %w", err)
	}
	switch {
	case u.Host == "" || u.Fragment != "" || strings.Contains(resource, "#") || u.User != nil:
		return "", fmt.Errorf("resource %q is not an absolute URL with a host and without fragment or userinfo (RFC 9728 §1.2)", resource)
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		// Development on this machine only.
	default:
		return "", fmt.Errorf("resource %q must use https (http only on loopback hosts)", resource)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	u.RawPath = ""
	u.Path = wellKnownResource + path
	return u.String(), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newResourceMetadata checks m and fills in its defaults.
func newResourceMetadata(m *ProtectedResourceMetadata, cfg *Config) (*resourceMetadata, error) {
	resource := cfg.Audience
	metaURL, err := ProtectedResourceMetadataURL(resource)
	if err != nil {
		return nil, fmt.Errorf("with Metadata, Config.Audience is the resource identifier clients call the API by: %w", err)
	}
	servers := m.AuthorizationServers
	if len(servers) == 0 {
		servers = []string{cfg.Issuer}
	}
	for _, s := range m.ScopesSupported {
		if !validScopeToken(s) {
			return nil, fmt.Errorf("Metadata.ScopesSupported: %q is not a valid scope token (RFC 6749 §3.3)", s)
		}
	}
	u, _ := url.Parse(metaURL)
	return &resourceMetadata{
		url: metaURL, path: u.Path,
		explicit: m.ScopesSupported != nil,
		scopes:   slices.Clone(m.ScopesSupported),
		doc: prmDocument{
			Resource: resource, AuthorizationServers: slices.Clone(servers),
			// bearerToken reads the Authorization header only (RFC 6750 §2.1).
			BearerMethodsSupported: []string{"header"},
			ResourceName:           m.ResourceName, ResourceDocumentation: m.ResourceDocumentation,
			ResourcePolicyURI: m.ResourcePolicyURI, ResourceTOSURI: m.ResourceTOSURI,
		},
	}, nil
}

// require records the scopes a route needs, for scopes_supported.
func (m *resourceMetadata) require(scopes []string) {
	if m == nil || m.explicit {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range scopes {
		if !slices.Contains(m.scopes, s) {
			m.scopes = append(m.scopes, s)
		}
	}
}

func (m *resourceMetadata) document() []byte {
	m.mu.Lock()
	doc := m.doc
	doc.ScopesSupported = slices.Clone(m.scopes)
	m.mu.Unlock()
	if doc.ScopesSupported == nil {
		doc.ScopesSupported = []string{}
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n')
}

// MetadataPath is the path at which to serve MetadataHandler, for example
// /.well-known/oauth-protected-resource/mcp for the resource
// https://api.example.com/mcp; "" without Config.Metadata.
func (v *Validator) MetadataPath() string {
	if v.meta == nil {
		return ""
	}
	return v.meta.path
}

// MetadataURL is the absolute URL of the metadata, which the
// WWW-Authenticate challenges of Require name as resource_metadata; ""
// without Config.Metadata.
func (v *Validator) MetadataURL() string {
	if v.meta == nil {
		return ""
	}
	return v.meta.url
}

// MetadataHandler serves the RFC 9728 metadata document: to GET and HEAD,
// as JSON any origin may read (it is public, and browser-based clients
// fetch it), cacheable for five minutes. It answers 404 without
// Config.Metadata.
func (v *Validator) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v.meta == nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body := v.meta.document()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
