package interop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2/clientcredentials"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/resourceserver"
	"github.com/gatehouse-dev/gatehouse/server"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage/memory"
)

// An agent that knows nothing but an MCP server's URL gets in as the MCP
// authorization spec has it, with the MCP Go SDK's own discovery code
// (oauthex) against the real token server and the resourceserver package:
// a request without a token gets a 401 naming the RFC 9728 metadata; the
// metadata (whose resource must be the URL called) names the
// authorization server; its RFC 8414 metadata names the token endpoint;
// the token is asked for with resource (RFC 8707) and comes back for that
// resource alone, with the scopes the metadata listed; the MCP server
// accepts it, and refuses a token for another API of the same issuer.
func TestMCPStyleDiscovery(t *testing.T) {
	ctx := context.Background()
	as := httptest.NewServer(nil)
	defer as.Close()
	mcp := httptest.NewServer(nil)
	defer mcp.Close()
	issuer, resource := as.URL, mcp.URL+"/mcp"

	secret, err := clientsecret.Generate()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	snap := &config.Snapshot{
		Issuer: issuer, Endpoints: endpoints.For(issuer),
		AccessTokenTTL: config.DefaultAccessTokenTTL, RefreshTokenTTL: config.DefaultRefreshTokenTTL, CodeTTL: config.DefaultCodeTTL,
		PrepublishPeriod: config.DefaultPrepublishPeriod,
		Clients: config.NewClientMap(&config.Client{
			ID: "agents.helper", AuthMethod: oauthv1.AuthClientSecretBasic,
			GrantTypes:    map[oauthv1.GrantType]bool{oauthv1.GrantClientCredentials: true},
			AllowedScopes: []string{"tools:call", "orders:read"}, RequirePKCE: true,
			SecretHashes: []config.SecretHash{{Hash: clientsecret.Hash(secret)}},
		}),
		Scopes: map[string]*config.Scope{
			"tools:call":  {Name: "tools:call", Audience: resource},
			"orders:read": {Name: "orders:read", Audience: ordersAudience},
		},
		ScopeNames: []string{"orders:read", "tools:call"},
		Keys:       &keyset.Set{Keys: []keyset.Key{signingKey(t, now.Add(-time.Hour))}},
	}
	srv, err := server.New(server.Options{Source: config.NewStatic(snap), Store: memory.New()})
	if err != nil {
		t.Fatal(err)
	}
	as.Config.Handler = srv

	v, err := resourceserver.New(ctx, resourceserver.Config{Issuer: issuer, Audience: resource,
		Metadata: &resourceserver.ProtectedResourceMetadata{ResourceName: "Orders MCP server"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+v.MetadataPath(), v.MetadataHandler())
	mux.Handle("POST /mcp", v.Require("tools:call")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	})))
	mcp.Config.Handler = mux

	call := func(token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, resource, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// 1. Unauthenticated: 401 with resource_metadata (RFC 9728 §5.1).
	resp := call("")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", resp.StatusCode)
	}
	challenges, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		t.Fatal(err)
	}
	metaURL := ""
	for _, c := range challenges {
		if c.Scheme == "bearer" {
			metaURL = c.Params["resource_metadata"]
		}
	}
	if metaURL == "" {
		t.Fatalf("no resource_metadata in %q", resp.Header.Values("WWW-Authenticate"))
	}

	// 2. The protected resource metadata, checked against the URL called.
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, metaURL, resource, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(prm.AuthorizationServers, []string{issuer}) || !slices.Equal(prm.ScopesSupported, []string{"tools:call"}) ||
		!slices.Equal(prm.BearerMethodsSupported, []string{"header"}) || prm.ResourceName != "Orders MCP server" {
		t.Fatalf("metadata %+v", prm)
	}

	// 3. The authorization server's metadata, checked against its issuer.
	asMetaURL, err := resourceserver.MetadataURL(prm.AuthorizationServers[0])
	if err != nil {
		t.Fatal(err)
	}
	asm, err := oauthex.GetAuthServerMeta(ctx, asMetaURL, prm.AuthorizationServers[0], http.DefaultClient)
	if err != nil || asm == nil {
		t.Fatalf("authorization server metadata: %v", err)
	}
	if !slices.Contains(asm.GrantTypesSupported, "client_credentials") {
		t.Fatalf("grant_types_supported %v", asm.GrantTypesSupported)
	}

	// 4. A token for this resource (RFC 8707) with the advertised scopes.
	cc := clientcredentials.Config{ClientID: "agents.helper", ClientSecret: secret, TokenURL: asm.TokenEndpoint,
		Scopes: prm.ScopesSupported, EndpointParams: map[string][]string{"resource": {prm.Resource}}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if aud := audienceOf(t, tok.AccessToken); !slices.Equal(aud, []string{resource}) || !oauthex.MatchesResource(aud, resource) {
		t.Fatalf("token aud %v, want the MCP server alone", aud)
	}
	if resp := call(tok.AccessToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("with the token: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// A token of the same client for another API is not for this one.
	other := clientcredentials.Config{ClientID: "agents.helper", ClientSecret: secret, TokenURL: asm.TokenEndpoint,
		Scopes: []string{"orders:read"}, EndpointParams: map[string][]string{"resource": {ordersAudience}}}
	otherTok, err := other.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp := call(otherTok.AccessToken); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource_metadata="`+metaURL+`"`) {
		t.Fatalf("a token for another API: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// audienceOf reads a JWT's aud without verifying it (the resource server
// verified it).
func audienceOf(t *testing.T, token string) []string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Aud any `json:"aud"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	switch a := c.Aud.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}
