package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

// A client's own token lifetimes (spec.tokenLifetimes) set its access
// token's and ID token's exp and expires_in, and end its refresh tokens;
// every other client keeps the server's, which a server-wide change
// moves without touching the client.
func TestClientTokenLifetimes(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(oidcClientID)
		c.TokenLifetimes = &oauthv1.ClientTokenLifetimes{AccessToken: dur(time.Hour), IDToken: dur(5 * time.Minute), RefreshToken: dur(2 * time.Hour)}
		s.Clients = s.Clients.With(&c)
	})
	rp := newRelyingParty(t, ts, "openid", "offline_access")
	tok := rp.login(t, newBrowser(t, ts), "n", false)
	idt, _ := rp.verify(t, tok)
	claims, _ := ts.parseAccessToken(t, tok.AccessToken)
	if lifetime := claims["exp"].(float64) - claims["iat"].(float64); lifetime != 3600 {
		t.Errorf("access token lives %vs, want 3600s", lifetime)
	}
	if in := tok.Expiry.Sub(ts.clock.Now()).Round(time.Minute); in != time.Hour {
		t.Errorf("expires_in says %s, want 1h", in)
	}
	if lifetime := idt.Expiry.Sub(idt.IssuedAt); lifetime != 5*time.Minute {
		t.Errorf("ID token lives %s, want 5m", lifetime)
	}

	// The refresh token works within 2h of the login, not after.
	ts.clock.Advance(90 * time.Minute)
	refreshed, err := rp.cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh within the client's refresh lifetime: %v", err)
	}
	ts.clock.Advance(31 * time.Minute)
	_, err = rp.cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token()
	if re := retrieveError(t, err); re.ErrorCode != ErrInvalidGrant {
		t.Errorf("refresh 2h01m after the login: %v, want invalid_grant", err)
	}

	// Another client keeps the server's lifetime, and follows it.
	ts.update(func(s *config.Snapshot) { s.AccessTokenTTL = 3 * time.Minute })
	cc, err := ts.ccConfig(ccClientID, ccSecret).Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	claims, _ = ts.parseAccessToken(t, cc.AccessToken)
	if lifetime := claims["exp"].(float64) - claims["iat"].(float64); lifetime != 180 {
		t.Errorf("a client without lifetimes of its own: %vs, want the server's 180s", lifetime)
	}
}

// spec.allowedCORSOrigins opens the token, userinfo and revocation
// endpoints, and introspection, to exactly the origins listed; a public
// client's redirect origin still opens the first three but never
// introspection; no answer admits cookies.
func TestAllowedCORSOrigins(t *testing.T) {
	ts := newTestServer(t)
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(webClientID)
		c.CORSOrigins = []string{"https://dashboard.example", "http://localhost:8081"}
		s.Clients = s.Clients.With(&c)
	})
	preflight := func(path, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, ts.URL+path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct {
		path, origin string
		allowed      bool
	}{
		{endpoints.TokenPath, "https://dashboard.example", true},
		{endpoints.UserinfoPath, "https://dashboard.example", true},
		{endpoints.RevokePath, "http://localhost:8081", true},
		{endpoints.IntrospectPath, "https://dashboard.example", true},
		{endpoints.IntrospectPath, "http://localhost:3000", false}, // the SPA's redirect origin: not listed
		{endpoints.TokenPath, "http://localhost:3000", true},
		{endpoints.TokenPath, "https://dashboard.example.evil", false},
		{endpoints.TokenPath, "https://sub.dashboard.example", false},
		{endpoints.TokenPath, "http://dashboard.example", false},
		{endpoints.TokenPath, "https://dashboard.example:443", false},
		{endpoints.AuthorizePath, "https://dashboard.example", false}, // never CORS
	} {
		resp := preflight(tc.path, tc.origin)
		got := resp.Header.Get("Access-Control-Allow-Origin")
		if tc.allowed != (resp.StatusCode == http.StatusNoContent && got == tc.origin) {
			t.Errorf("%s from %s: %d, Access-Control-Allow-Origin %q; want allowed=%v", tc.path, tc.origin, resp.StatusCode, got, tc.allowed)
		}
		if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s from %s admits credentials", tc.path, tc.origin)
		}
	}

	// The actual request: introspection answers a listed origin with CORS.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+endpoints.IntrospectPath, strings.NewReader("token=x"))
	req.Header.Set("Origin", "https://dashboard.example")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(webClientID, webSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://dashboard.example" {
		t.Errorf("introspection from a listed origin: %d %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	// Removing the client closes its origins.
	ts.update(func(s *config.Snapshot) { s.Clients = s.Clients.Without(webClientID) })
	if resp := preflight(endpoints.TokenPath, "https://dashboard.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("origin of a removed client: %d", resp.StatusCode)
	}
}

// The consent page shows the client's logo, allowed by its exact URL in
// img-src and nothing else, and links its privacy policy and terms.
func TestConsentPageShowsClientLinks(t *testing.T) {
	ts := newTestServer(t)
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(webClientID)
		c.LogoURI, c.PolicyURI, c.TOSURI = "https://cdn.example/orders.png?v=3", "https://orders.example/privacy", "https://orders.example/terms"
		s.Clients = s.Clients.With(&c)
	})
	b := newBrowser(t, ts)
	resp, _ := b.get(ts.webConfig("orders:read").AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	_, page := b.get(location(t, resp).String())
	f := hiddenFields(page)
	f.Set("username", testUser)
	f.Set("password", testPassword)
	resp, _ = b.post(ts.URL+endpoints.LoginPath, f)
	resp, page = b.get(location(t, resp).String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Allow access?") {
		t.Fatalf("consent page: %d %s", resp.StatusCode, page)
	}
	for _, want := range []string{
		`<img class="client-logo" id="client-logo" src="https://cdn.example/orders.png?v=3"`,
		`<a href="https://orders.example/privacy" id="client-policy"`,
		`<a href="https://orders.example/terms" id="client-tos"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %s", want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "; img-src https://cdn.example/orders.png;") || !strings.HasPrefix(csp, "default-src 'none';") {
		t.Errorf("CSP %q", csp)
	}
}
