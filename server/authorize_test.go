package server

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

const nativeClientID = "apps.native"

// addNativeClient registers a public native app (RFC 8252) with loopback
// redirect URIs registered without a port.
func (ts *testServer) addNativeClient(redirectURIs ...string) {
	ts.update(func(s *config.Snapshot) {
		s.Clients = s.Clients.With(&config.Client{
			ID: nativeClientID, DisplayName: "Orders CLI", Public: true, AuthMethod: oauthv1.AuthNone,
			GrantTypes:   map[oauthv1.GrantType]bool{oauthv1.GrantAuthorizationCode: true, oauthv1.GrantRefreshToken: true},
			RedirectURIs: redirectURIs, AllowedScopes: []string{"orders:read"}, RequirePKCE: true,
		})
	})
}

func (ts *testServer) nativeConfig(redirect string) *oauth2.Config {
	return &oauth2.Config{ClientID: nativeClientID, RedirectURL: redirect, Scopes: []string{"orders:read"},
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + endpoints.AuthorizePath, TokenURL: ts.URL + endpoints.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
}

func TestRedirectURIMatches(t *testing.T) {
	cases := []struct {
		registered, requested string
		want                  bool
	}{
		{"https://app.example.test/cb", "https://app.example.test/cb", true},
		{"https://app.example.test/cb", "https://app.example.test:8443/cb", false},
		{"https://app.example.test:8443/cb", "https://app.example.test/cb", false},
		{"http://localhost/cb", "http://localhost:8400/cb", false},
		{"http://localhost:8400/cb", "http://localhost:8401/cb", false},
		{"com.example.app:/cb", "com.example.app:/cb", true},
		// RFC 8252 §7.3: loopback IP literals match on any port.
		{"http://127.0.0.1/cb", "http://127.0.0.1:53682/cb", true},
		{"http://127.0.0.1/cb", "http://127.0.0.1/cb", true},
		{"http://127.0.0.1:8400/cb", "http://127.0.0.1:53682/cb", true},
		{"http://127.0.0.1:8400/cb", "http://127.0.0.1/cb", true},
		{"http://127.0.0.1/cb", "http://127.0.0.1:65535/cb", true},
		{"http://127.0.0.1/cb?x=1", "http://127.0.0.1:1/cb?x=1", true},
		{"http://127.0.0.1", "http://127.0.0.1:1234", true},
		{"http://[::1]/cb", "http://[::1]:53682/cb", true},
		{"http://[::1]:8400/cb", "http://[::1]:53682/cb", true},
		// Everything but the port stays exact.
		{"http://127.0.0.1/cb", "http://127.0.0.1:53682/cb/", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:53682/CB", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:53682/cbx", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:53682/cb?x=1", false},
		{"http://127.0.0.1/cb?x=1", "http://127.0.0.1:53682/cb?x=2", false},
		{"http://127.0.0.1/cb", "http://[::1]:53682/cb", false},
		{"http://[::1]/cb", "http://127.0.0.1:53682/cb", false},
		{"http://127.0.0.1/cb", "https://127.0.0.1:53682/cb", false},
		{"https://127.0.0.1/cb", "https://127.0.0.1:53682/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.2:53682/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1.evil.test:53682/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:53682@evil.test/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:53682.evil.test/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:0/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:080/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:65536/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:99999999999999999999/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:53682#/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:53682/cb#x", false},
		{"http://127.0.0.1/cb", "HTTP://127.0.0.1:53682/cb", false},
		{"http://127.0.0.1/cb", "", false},
		{"http://127.0.0.1.evil.test/cb", "http://127.0.0.1.evil.test:1/cb", false},
	}
	for _, tc := range cases {
		if got := config.RedirectURIMatches(tc.registered, tc.requested); got != tc.want {
			t.Errorf("registered %q, requested %q: match %v, want %v", tc.registered, tc.requested, got, tc.want)
		}
	}
}

// A native app registers http://127.0.0.1/callback and listens on
// whatever port it gets: the flow works on that port, through x/oauth2,
// and the code is bound to the port it was issued for.
func TestLoopbackRedirectAnyPort(t *testing.T) {
	ts := newTestServer(t)
	ts.addNativeClient("http://127.0.0.1/callback", "http://[::1]/callback", "http://localhost/callback")
	for _, redirect := range []string{"http://127.0.0.1:53682/callback", "http://[::1]:40123/callback", "http://127.0.0.1/callback"} {
		cfg := ts.nativeConfig(redirect)
		verifier := oauth2.GenerateVerifier()
		back := newBrowser(t, ts).authorize(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "approve", false)
		if got := back.Scheme + "://" + back.Host + back.Path; got != redirect {
			t.Fatalf("redirect %s: sent back to %s", redirect, back)
		}
		// The token request must repeat the redirect_uri of the
		// authorization request exactly, port included (RFC 6749 §4.1.3).
		other := ts.nativeConfig(otherPort(redirect))
		if _, err := other.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier)); err == nil {
			t.Errorf("redirect %s: the code was redeemed with redirect_uri %s", redirect, other.RedirectURL)
		}
		back = newBrowser(t, ts).authorize(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "approve", false)
		if _, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
			t.Errorf("redirect %s: exchange: %v", redirect, err)
		}
	}
	// Never for other hosts: localhost, or a loopback look-alike.
	for _, redirect := range []string{"http://localhost:53682/callback", "http://127.0.0.1.evil.test:53682/callback", "http://127.0.0.1:53682@evil.test/callback"} {
		resp, body := newBrowser(t, ts).get(ts.nativeConfig(redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "Invalid return address") {
			t.Errorf("redirect %s: %d Location %q, want the error page", redirect, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// otherPort is redirect on another loopback port.
func otherPort(redirect string) string {
	host, path, _ := strings.Cut(strings.TrimPrefix(redirect, "http://"), "/")
	if i := strings.LastIndex(host, ":"); i > strings.LastIndex(host, "]") {
		host = host[:i]
	}
	return "http://" + host + ":1234/" + path
}
