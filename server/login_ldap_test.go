package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testldap"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
)

// withLDAP makes a real slapd (over TLS, trusted through the test CA) a
// source of the server, after the users Secret.
func withLDAP(t *testing.T, ts *testServer) {
	t.Helper()
	srv := testldap.Start(t, testldap.SeedLDIF)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CAPEM)
	src := identity.NewLDAP(identity.LDAPConfig{
		Name: "corp", DisplayName: "Corp directory", Host: srv.TLSAddr, TLS: &tls.Config{RootCAs: pool},
		BindDN: testldap.ServiceDN, BindPassword: testldap.ServicePassword,
		UserBaseDN: testldap.PeopleDN, UserFilter: "(objectClass=inetOrgPerson)", UsernameAttr: "uid", EmailAttr: "mail", NameAttr: "cn",
		GroupBaseDN: testldap.GroupsDN, GroupFilter: "(objectClass=groupOfNames)", MemberAttr: "member", GroupNameAttr: "cn",
	})
	ts.update(func(s *config.Snapshot) { s.Identity = identity.NewSet(identity.SecretSource{Dir: s.Users}, src) })
}

// postLogin fills the login form of a fresh flow.
func postLogin(t *testing.T, ts *testServer, b *browser, rp *relyingParty, user, password string) (*http.Response, string) {
	t.Helper()
	resp, _ := b.get(rp.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	resp, page := b.get(location(t, resp).String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
		t.Fatalf("login page: %d %s", resp.StatusCode, page)
	}
	f := hiddenFields(page)
	f.Set("username", user)
	f.Set("password", password)
	return b.post(ts.URL+endpoints.LoginPath, f)
}

// The login page's form checks the users Secret, then the directory: a
// directory user logs in and their directory groups reach the ID token; a
// wrong password, an unknown user and filter injection all read the same.
func TestLDAPLoginPage(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	withLDAP(t, ts)
	rp := newRelyingParty(t, ts, "openid", "profile", "email", "groups")

	b := newBrowser(t, ts)
	v := oauth2.GenerateVerifier()
	resp, _ := b.get(rp.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(v)))
	_, page := b.get(location(t, resp).String())
	f := hiddenFields(page)
	f.Set("username", "bob")
	f.Set("password", testldap.BobPassword)
	resp, _ = b.post(ts.URL+endpoints.LoginPath, f)
	_, page = b.get(location(t, resp).String())
	f = hiddenFields(page)
	f.Set("decision", "approve")
	resp, _ = b.post(ts.URL+endpoints.ConsentPath, f)
	tok, err := rp.cfg.Exchange(ctx(t), location(t, resp).Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	_, claims := rp.verify(t, tok)
	if claims["sub"] != identity.UpstreamSubject("corp", "bob") || claims["email"] != "bob@example.com" || !slices.Equal(toStrings(claims["groups"]), []string{"developers"}) {
		t.Fatalf("bob's ID token: %v", claims)
	}
	if at, _ := ts.parseAccessToken(t, tok.AccessToken); !slices.Equal(toStrings(at["groups"]), []string{"developers"}) {
		t.Fatalf("bob's access token groups: %v", at["groups"])
	}
	if !strings.Contains(page, "(bob)") {
		t.Errorf("the consent page does not name bob: %s", page)
	}

	// The users Secret still works beside the directory.
	resp, _ = postLogin(t, ts, newBrowser(t, ts), rp, testUser, testPassword)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("users-Secret login beside LDAP: %d", resp.StatusCode)
	}

	var first string
	for _, c := range [][2]string{{"alice", "wrong"}, {"mallory", testldap.AlicePassword}, {"*)(uid=*", testldap.AlicePassword}, {"*", testldap.BobPassword}} {
		resp, page := postLogin(t, ts, newBrowser(t, ts), rp, c[0], c[1])
		msg := page[strings.Index(page, `<div class="alert"`):]
		msg = msg[:strings.Index(msg, "</div>")]
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(msg, "Incorrect username or password.") {
			t.Fatalf("%q: %d %s", c[0], resp.StatusCode, msg)
		}
		if first == "" {
			first = msg
		} else if msg != first {
			t.Fatalf("%q reads %q, another failure %q: the page tells them apart", c[0], msg, first)
		}
	}

	// A directory that is down: a clear 503 page, not "wrong password",
	// never a 500.
	ts.update(func(s *config.Snapshot) {
		down := identity.NewLDAP(identity.LDAPConfig{Name: "corp", Host: "127.0.0.1:1", BindDN: "cn=x", BindPassword: "y", UserBaseDN: "ou=people", UsernameAttr: "uid"})
		s.Identity = identity.NewSet(identity.SecretSource{Dir: s.Users}, down)
	})
	resp, page = postLogin(t, ts, newBrowser(t, ts), rp, "bob", testldap.BobPassword)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "the directory could not be reached") {
		t.Fatalf("directory down: %d %s", resp.StatusCode, page)
	}
}
