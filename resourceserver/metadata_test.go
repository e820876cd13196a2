package resourceserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestProtectedResourceMetadataURL(t *testing.T) {
	for _, tc := range []struct{ resource, want string }{
		{"https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/mcp", "https://api.example.com/.well-known/oauth-protected-resource/mcp"},
		{"https://api.example.com/v1/mcp/", "https://api.example.com/.well-known/oauth-protected-resource/v1/mcp"},
		{"https://api.example.com:8443/a?tenant=b", "https://api.example.com:8443/.well-known/oauth-protected-resource/a?tenant=b"},
		{"http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"},
		{"http://[::1]:8080", "http://[::1]:8080/.well-known/oauth-protected-resource"},
	} {
		got, err := ProtectedResourceMetadataURL(tc.resource)
		if err != nil || got != tc.want {
			t.Errorf("ProtectedResourceMetadataURL(%q) = %q, %v; want %q", tc.resource, got, err, tc.want)
		}
	}
	for _, bad := range []string{"orders-api", "urn:example:orders", "http://api.example.com/mcp", "https://api.example.com/#frag",
		"https://user@api.example.com/", "ftp://api.example.com/"} {
		if got, err := ProtectedResourceMetadataURL(bad); err == nil {
			t.Errorf("ProtectedResourceMetadataURL(%q) = %q, want an error", bad, got)
		}
	}
}

// A Validator with Metadata serves RFC 9728's document at its well-known
// path, and every refusal points clients at it (§5.1).
func TestMetadataServedAndAdvertised(t *testing.T) {
	f := newIssuer(t)
	rs := httptest.NewServer(nil)
	defer rs.Close()
	resource := rs.URL + "/mcp"
	v := f.validator(func(c *Config) {
		c.Audience = resource
		c.Metadata = &ProtectedResourceMetadata{ResourceName: "Orders MCP", ResourceDocumentation: "https://docs.example.com/orders"}
	})
	mux := http.NewServeMux()
	mux.Handle("GET "+v.MetadataPath(), v.MetadataHandler())
	mux.Handle("GET /mcp", v.Require("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	mux.Handle("POST /mcp", v.Require("orders:read", "orders:write")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	rs.Config.Handler = mux

	if v.MetadataURL() != rs.URL+"/.well-known/oauth-protected-resource/mcp" || v.MetadataPath() != "/.well-known/oauth-protected-resource/mcp" {
		t.Fatalf("MetadataURL %q, MetadataPath %q", v.MetadataURL(), v.MetadataPath())
	}
	resp, err := http.Get(v.MetadataURL())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("headers %v", resp.Header)
	}
	want := map[string]any{
		"resource": resource, "authorization_servers": []any{f.URL},
		"scopes_supported": []any{"orders:read", "orders:write"}, "bearer_methods_supported": []any{"header"},
		"resource_name": "Orders MCP", "resource_documentation": "https://docs.example.com/orders",
	}
	for k, w := range want {
		if got, _ := json.Marshal(doc[k]); string(got) != mustMarshal(w) {
			t.Errorf("%s = %s, want %s", k, got, mustMarshal(w))
		}
	}

	// Without a token, with a bad one, with too few scopes: each
	// challenge names the metadata.
	for _, tc := range []struct {
		name, method, auth string
		status             int
	}{
		{"no token", http.MethodGet, "", http.StatusUnauthorized},
		{"bad token", http.MethodGet, "Bearer " + f.token(func(_ map[string]any, c jwt.MapClaims) { c["aud"] = "elsewhere" }), http.StatusUnauthorized},
		{"scope missing", http.MethodPost, "Bearer " + f.token(func(_ map[string]any, c jwt.MapClaims) { c["aud"] = resource }), http.StatusForbidden},
	} {
		req, _ := http.NewRequest(tc.method, resource, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ch := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != tc.status || !strings.Contains(ch, `resource_metadata="`+v.MetadataURL()+`"`) {
			t.Errorf("%s: %d %q, want %d naming the metadata", tc.name, resp.StatusCode, ch, tc.status)
		}
	}
	// The token for this resource gets through.
	req, _ := http.NewRequest(http.MethodGet, resource, nil)
	req.Header.Set("Authorization", "Bearer "+f.token(func(_ map[string]any, c jwt.MapClaims) { c["aud"] = resource }))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a token for the resource: %v %v", resp, err)
	}
}

// Configured scopes_supported win over the routes'; a resource identifier
// that is not an https URL is refused at New.
func TestMetadataConfiguration(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(func(c *Config) {
		c.Audience = "https://orders.example.com"
		c.Metadata = &ProtectedResourceMetadata{ScopesSupported: []string{"orders:read"}, AuthorizationServers: []string{"https://a.example", "https://b.example"}}
	})
	v.Require("orders:admin")
	var doc prmDocument
	if err := json.Unmarshal(v.meta.document(), &doc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(doc.ScopesSupported, []string{"orders:read"}) || !slices.Equal(doc.AuthorizationServers, []string{"https://a.example", "https://b.example"}) {
		t.Errorf("document %+v", doc)
	}
	rec := httptest.NewRecorder()
	v.MetadataHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
	for _, tc := range []struct {
		audience string
		meta     *ProtectedResourceMetadata
	}{
		{testAudience, &ProtectedResourceMetadata{}},
		{"http://orders.example.com", &ProtectedResourceMetadata{}},
		{"https://orders.example.com", &ProtectedResourceMetadata{ScopesSupported: []string{"bad scope"}}},
	} {
		_, err := New(context.Background(), Config{Issuer: f.URL, Audience: tc.audience, HTTPClient: f.srv.Client(), Metadata: tc.meta})
		if err == nil {
			t.Errorf("New with audience %q and %+v: no error", tc.audience, tc.meta)
		}
	}
	// Without Metadata nothing changes: no resource_metadata, 404.
	plain := f.validator(nil)
	if plain.MetadataURL() != "" || plain.MetadataPath() != "" {
		t.Errorf("MetadataURL %q without Metadata", plain.MetadataURL())
	}
	rec = httptest.NewRecorder()
	plain.Require()(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if strings.Contains(rec.Header().Get("WWW-Authenticate"), "resource_metadata") {
		t.Errorf("challenge %q names metadata it does not have", rec.Header().Get("WWW-Authenticate"))
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
