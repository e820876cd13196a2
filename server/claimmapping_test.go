package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/claimmap"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
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

// TestLoginRules drives logins with go-oidc and x/oauth2 against the
// server's and the client's login rules: an allowed person gets tokens
// and refreshes; once the client's rule refuses them, a single sign-on, a
// fresh login (no session is started) and a refresh are all refused, the
// client getting access_denied with the rule's message, each refusal
// being one security event login_denied and an audit line saying which
// rule; a rule that cannot be evaluated refuses too (fail closed).
func TestLoginRules(t *testing.T) {
	as := newAuditedServer(t)
	ts := as.testServer
	withOIDC(t, ts)
	serverRule := &oauthv1.ClaimMapping{LoginRules: []oauthv1.LoginRule{{Expression: `"admins" in user.groups && user.emailVerified`}}}
	withClaimMapping(t, ts, serverRule, nil)
	rp := newRelyingParty(t, ts, "openid", "profile", "offline_access")
	b := newBrowser(t, ts)
	tok := rp.login(t, b, "n", true)
	if _, claims := rp.verify(t, tok); claims["sub"] != testSubject {
		t.Fatalf("ID token sub %v", claims["sub"])
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	if tok, _ = rp.cfg.TokenSource(ctx(t), tok).Token(); tok == nil {
		t.Fatal("refresh of an allowed person refused")
	}
	as.next(t, 4) // login, consent, code exchange, refresh

	// The client's rule now refuses alice.
	const msg = "Only auditors may use Grafana."
	withClaimMapping(t, ts, serverRule, &oauthv1.ClaimMapping{LoginRules: []oauthv1.LoginRule{
		{Expression: `client.id != ""`}, {Expression: `"auditors" in user.groups`, Message: msg}}})
	denied := func(back *url.URL, wantDesc string) {
		t.Helper()
		q := back.Query()
		if q.Get("error") != "access_denied" || q.Get("code") != "" || q.Get("state") != "st" || q.Get("iss") != ts.URL ||
			!strings.Contains(q.Get("error_description"), wantDesc) {
			t.Errorf("redirect back %s, want access_denied with %q, state and iss, no code", back, wantDesc)
		}
	}
	authURL := rp.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	// Single sign-on: alice is signed in, with consent remembered.
	resp, _ := b.get(authURL)
	denied(location(t, resp), "a login rule of the OAuthClient refused them: "+msg)
	wantDeniedLine(t, as, "OAuthClient spec.claimMapping.loginRules[1] gave false")
	// A fresh login: the right password, no session, no code.
	fresh := newBrowser(t, ts)
	deniedBefore := loginCount(t, ts, "denied")
	denied(fresh.authorize(authURL, "approve", false), msg)
	if loginCount(t, ts, "denied") != deniedBefore+1 {
		t.Error("login_attempts_total{outcome=denied} was not counted")
	}
	u, _ := url.Parse(ts.URL)
	for _, c := range fresh.client.Jar.Cookies(u) {
		if strings.Contains(c.Name, sessionCookie) {
			t.Errorf("a refused login started a session (cookie %s)", c.Name)
		}
	}
	lines := as.next(t, 1)
	wantLine(t, lines[0], audit.EventLogin, "Failure", "access_denied")
	if l := lines[0]; l.User.Username != testSubject || !strings.Contains(l.ResponseStatus.Message, "OAuthClient spec.claimMapping.loginRules[1] gave false") {
		t.Errorf("audit line of the refused login %+v", l)
	}
	// A refresh of the person the rule now refuses.
	tok.Expiry = time.Now().Add(-time.Minute)
	_, err := rp.cfg.TokenSource(ctx(t), tok).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || !strings.Contains(re.ErrorDescription, "login rule of the OAuthClient") {
		t.Errorf("refresh of a refused person: %v, want invalid_grant", err)
	}
	wantDeniedLine(t, as, "OAuthClient spec.claimMapping.loginRules[1] gave false")

	// A rule that fails for the person (a missing key) refuses, and says so.
	withClaimMapping(t, ts, nil, &oauthv1.ClaimMapping{LoginRules: []oauthv1.LoginRule{{Expression: `{"bob": true}[user.username]`}}})
	resp, _ = b.get(authURL)
	denied(location(t, resp), "(it could not be evaluated for them)")
	wantDeniedLine(t, as, "no such key")
	if n := securityCount(t, ts, EventLoginDenied); n != 4 {
		t.Errorf("%v login_denied events, want 4", n)
	}
}

// wantDeniedLine checks the newest audit line: a refusal saying why.
func wantDeniedLine(t *testing.T, as *auditedServer, why string) {
	t.Helper()
	lines := as.next(t, 1)
	if l := lines[0]; l.SecurityEvent != EventLoginDenied || l.ResponseStatus.Status != "Failure" || !strings.Contains(l.ResponseStatus.Message, why) {
		t.Errorf("audit line %+v, want login_denied saying %q", l, why)
	}
}

func loginCount(t *testing.T, ts *testServer, outcome string) float64 {
	t.Helper()
	var m dto.Metric
	if err := ts.srv.metrics.logins.WithLabelValues(outcome).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestLoginRulesDeviceFlow: a device approval has no redirect, so a
// person the rules refuse is told on a page (the rule's message), and the
// device, polling with x/oauth2, gets access_denied.
func TestLoginRulesDeviceFlow(t *testing.T) {
	ts, _ := newDeviceServer(t)
	const msg = "Only the ops team may pair a TV."
	ts.update(func(s *config.Snapshot) {
		s.ClaimMapping, s.ClaimMappingErr = claimmap.Compile(&oauthv1.ClaimMapping{LoginRules: []oauthv1.LoginRule{{Expression: `"ops" in user.groups`, Message: msg}}})
	})
	cfg := ts.tvConfig("orders:read")
	da, err := cfg.DeviceAuth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ts)
	_, page := b.get(da.VerificationURIComplete)
	f := hiddenFields(page)
	f.Set("user_code", da.UserCode)
	resp, _ := b.post(ts.URL+endpoints.DevicePath, f)
	_, page = b.get(location(t, resp).String())
	f = hiddenFields(page)
	f.Set("username", testUser)
	f.Set("password", testPassword)
	resp, page = b.post(ts.URL+endpoints.LoginPath, f)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, msg) {
		t.Errorf("a refused device approval: %d\n%s", resp.StatusCode, page)
	}
	_, err = cfg.DeviceAccessToken(ctx(t), da)
	if re := retrieveError(t, err); re.ErrorCode != ErrAccessDenied {
		t.Fatalf("DeviceAccessToken after the refusal: %v", err)
	}
}

// TestLoginRulesUpstreamOIDC: a person from an upstream OpenID Provider
// (Gatehouse B) is checked when their login completes at A, on what B
// said of them: refused, the app gets access_denied and A keeps no
// session; allowed, they get tokens, and a refresh after the rule changed
// is refused on the person A stored.
func TestLoginRulesUpstreamOIDC(t *testing.T) {
	f := newFederation(t)
	rule := func(expr string) {
		f.a.update(func(s *config.Snapshot) {
			s.ClaimMapping, s.ClaimMappingErr = claimmap.Compile(&oauthv1.ClaimMapping{LoginRules: []oauthv1.LoginRule{{Expression: expr, Message: "Auditors only."}}})
		})
	}
	rule(`"auditors" in user.groups`)
	b := newFederatedBrowser(t, f)
	v := oauth2.GenerateVerifier()
	authURL := f.rp.cfg.AuthCodeURL("app-state", oauth2.S256ChallengeOption(v))
	resp, page := f.run(t, b, authURL, false)
	back := location(t, resp)
	if !strings.HasPrefix(back.String(), oidcRedirect) || back.Query().Get("error") != "access_denied" || back.Query().Get("code") != "" ||
		!strings.Contains(back.Query().Get("error_description"), "Auditors only.") {
		t.Fatalf("a refused upstream login: %d %s %s", resp.StatusCode, back, page)
	}
	a, _ := url.Parse(f.a.URL)
	for _, c := range b.client.Jar.Cookies(a) {
		if strings.Contains(c.Name, sessionCookie) {
			t.Errorf("A started a session for a refused login (cookie %s)", c.Name)
		}
	}

	rule(`"admins" in user.groups`)
	resp, page = f.run(t, newFederatedBrowser(t, f), authURL, false)
	back = location(t, resp)
	if back.Query().Get("code") == "" {
		t.Fatalf("an allowed upstream login: %d %s %s", resp.StatusCode, back, page)
	}
	tok, err := f.rp.cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	rule(`"auditors" in user.groups`)
	_, err = f.rp.cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh of an upstream person the rule now refuses: %v, want invalid_grant", err)
	}
}
