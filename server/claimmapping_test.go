package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/claimmap"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// withClaimMapping compiles the server's and the OIDC client's mapping
// into the test server's snapshot, as the config builder does.
func withClaimMapping(t *testing.T, ts *testServer, server, client *oauthv1.ClaimMapping) {
	t.Helper()
	ts.update(func(s *config.Snapshot) {
		s.ClaimMapping, s.ClaimMappingErr = claimmap.Compile(server)
		c := *s.Clients.Get(oidcClientID)
		c.ClaimMapping, c.ClaimMappingErr = claimmap.Compile(client)
		s.Clients = s.Clients.With(&c)
	})
}

// TestClaimMappingInTokens drives the code flow with go-oidc and
// x/oauth2: the server's mapping filters and prefixes groups, the client's
// (Argo CD's style) prefixes them again and adds claims; the ID token,
// the access token and userinfo carry the mapped groups, the ID token and
// userinfo the added claims, and the refreshed tokens too. A mapping that
// fails for the person refuses the token with server_error.
func TestClaimMappingInTokens(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	withClaimMapping(t, ts,
		&oauthv1.ClaimMapping{Groups: `user.groups.filter(g, g.startsWith("team:")).map(g, "gatehouse:" + g)`},
		&oauthv1.ClaimMapping{
			Groups: `user.groups.map(g, "argocd:" + g)`,
			Claims: []oauthv1.ClaimExpression{
				{Name: "department", Expression: `user.email.endsWith("@example.com") ? "staff" : "guest"`},
				{Name: "roles", Expression: `["team:orders", "admins"].filter(g, g in user.groups)`},
				{Name: "tenant", Expression: `client.namespace + "/" + user.username`},
			},
		})
	rp := newRelyingParty(t, ts, "openid", "profile", "email", "groups", "offline_access")
	tok := rp.login(t, newBrowser(t, ts), "n", false)
	wantGroups := `["argocd:gatehouse:team:orders"]`

	_, claims := rp.verify(t, tok)
	for k, want := range map[string]string{"groups": wantGroups, "department": `"staff"`, "roles": `[]`, "tenant": `"/alice"`, "email": `"alice@example.com"`} {
		if k == "roles" {
			// The client's mapping reads the server's groups: neither
			// unprefixed name is among them, so roles is empty and left out.
			if _, ok := claims[k]; ok {
				t.Errorf("roles = %v, want it left out", claims[k])
			}
			continue
		}
		if got := mustJSON(claims[k]); got != want {
			t.Errorf("ID token %s = %s, want %s", k, got, want)
		}
	}
	at, _ := ts.parseAccessToken(t, tok.AccessToken)
	if got := mustJSON(at["groups"]); got != wantGroups {
		t.Errorf("access token groups = %s, want %s", got, wantGroups)
	}
	if _, ok := at["department"]; ok {
		t.Error("an added claim is in the access token; it is for the ID token and userinfo")
	}
	ui, err := rp.provider.UserInfo(ctx(t), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var uiClaims map[string]any
	if err := ui.Claims(&uiClaims); err != nil {
		t.Fatal(err)
	}
	if mustJSON(uiClaims["groups"]) != wantGroups || uiClaims["department"] != "staff" || uiClaims["tenant"] != "/alice" {
		t.Errorf("userinfo %v, want the mapped groups and the added claims", uiClaims)
	}

	// Refreshed tokens are mapped too, once (not the mapped groups again).
	tok.Expiry = time.Now().Add(-time.Minute) // x/oauth2 looks at the real clock
	next, err := rp.cfg.TokenSource(ctx(t), tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if _, c2 := rp.verify(t, next); mustJSON(c2["groups"]) != wantGroups || c2["department"] != "staff" {
		t.Errorf("refreshed ID token groups %v, department %v", c2["groups"], c2["department"])
	}

	// A mapping that fails for this person refuses the token.
	withClaimMapping(t, ts, nil, &oauthv1.ClaimMapping{Groups: `dyn(user.username)`})
	next.Expiry = time.Now().Add(-time.Minute)
	_, err = rp.cfg.TokenSource(ctx(t), next).Token()
	var re *oauth2.RetrieveError
	if err == nil || !errors.As(err, &re) || re.ErrorCode != "server_error" {
		t.Errorf("a failing mapping: %v, want server_error", err)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+next.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("userinfo with a failing mapping: %d, want 500", resp.StatusCode)
	}
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if body["error"] != "server_error" || strings.Contains(body["error_description"], "dyn") {
		t.Errorf("userinfo error %v: want server_error without the expression", body)
	}
}
