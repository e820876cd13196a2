package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testldap"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
)

// refresh uses a refresh token at the server, returning the new tokens or
// the error code.
func refresh(t *testing.T, rp *relyingParty, rt string) (*oauth2.Token, string) {
	t.Helper()
	tok, err := rp.cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			t.Fatal(err)
		}
		return nil, re.ErrorCode
	}
	return tok, ""
}

func (f *federation) rechecks(t *testing.T) {
	t.Helper()
	bURL := f.b.snap().Issuer
	src := identity.NewOIDC(identity.OIDCConfig{
		Name: "corp", DisplayName: "Corp SSO", Issuer: bURL, ClientID: upstreamClientID, ClientSecret: upstreamSecret,
		Scopes: []string{"profile", "email", "groups"}, OfflineAccess: true,
	})
	f.a.update(func(s *config.Snapshot) {
		s.Identity = identity.NewSet(src)
		s.Rechecks = map[string]config.Recheck{"corp": {Interval: 10 * time.Minute, Grace: time.Hour}}
	})
}

// loginAtA runs a federated login in a fresh browser and returns A's
// tokens.
func (f *federation) loginAtA(t *testing.T) (*browser, *oauth2.Token) {
	t.Helper()
	b := newFederatedBrowser(t, f)
	v := oauth2.GenerateVerifier()
	resp, page := f.run(t, b, f.rp.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), false)
	back := location(t, resp)
	if back.Query().Get("code") == "" {
		t.Fatalf("no code: %d %s", resp.StatusCode, page)
	}
	tok, err := f.rp.cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %+v, %v", tok, err)
	}
	return b, tok
}

// TestUpstreamRecheckWithGatehouse: with a second Gatehouse (B) as the
// upstream OpenID Provider, A asks B again at refresh once B's last answer
// is 10 minutes old, with the refresh token A got at login (kept sealed):
// B's new groups reach A's tokens; while B is down, B's last answer
// stands for an hour, then refreshes are refused until B answers; two
// refreshes at once ask B once; once alice is removed at B, the next due
// refresh is refused and her sessions and grants at A end.
func TestUpstreamRecheckWithGatehouse(t *testing.T) {
	f := newFederation(t)
	f.rechecks(t)
	browser, tok := f.loginAtA(t)
	_, claims := f.rp.verify(t, tok)
	sub := claims["sub"].(string)
	stored, err := f.a.store.GetIdentity(ctx(t), sub, f.a.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	_ = json.Unmarshal(stored.Data, &rec)
	if up, _ := rec["upstream"].(string); up == "" || strings.Contains(string(stored.Data), `"rt"`) || !strings.Contains(up, ".") {
		t.Fatalf("the stored identity does not hold B's refresh token sealed: %s", stored.Data)
	}

	// A fresh answer: B is not asked.
	tok, code := refresh(t, f.rp, tok.RefreshToken)
	if code != "" || f.bRefreshs.Load() != 0 {
		t.Fatalf("a refresh right after login: %q, B asked %d times", code, f.bRefreshs.Load())
	}
	// B changes alice's groups; 11 minutes on, A asks and follows.
	dir, err := users.Parse(append(usersYAML(), []byte("  email: alice@example.com\n  groups: [\"team:orders\"]\n")...))
	if err != nil {
		t.Fatal(err)
	}
	f.b.update(func(s *config.Snapshot) { s.Users = dir })
	f.a.clock.Advance(11 * time.Minute)
	tok, code = refresh(t, f.rp, tok.RefreshToken)
	if code != "" || f.bRefreshs.Load() != 1 {
		t.Fatalf("a due refresh: %q, B asked %d times", code, f.bRefreshs.Load())
	}
	if _, claims = f.rp.verify(t, tok); !slices.Equal(toStrings(claims["groups"]), []string{"team:orders"}) {
		t.Fatalf("groups after B's change: %v", claims["groups"])
	}

	// Two refreshes at once, due: B is asked once.
	_, tok2 := f.loginAtA(t)
	f.a.clock.Advance(11 * time.Minute)
	var wg sync.WaitGroup
	codes := make([]string, 2)
	next := make([]*oauth2.Token, 2)
	for i, rt := range []string{tok.RefreshToken, tok2.RefreshToken} {
		wg.Go(func() { next[i], codes[i] = refresh(t, f.rp, rt) })
	}
	wg.Wait()
	if codes[0] != "" || codes[1] != "" || f.bRefreshs.Load() != 2 {
		t.Fatalf("concurrent due refreshes: %q, B asked %d times in all (want 2)", codes, f.bRefreshs.Load())
	}
	tok, tok2 = next[0], next[1]

	// B down: its last answer stands for the grace period, then not.
	f.bDown.Store(true)
	f.a.clock.Advance(11 * time.Minute)
	if tok, code = refresh(t, f.rp, tok.RefreshToken); code != "" {
		t.Fatalf("a refresh while B is down, within the grace period: %q", code)
	}
	f.a.clock.Advance(time.Hour)
	if _, code = refresh(t, f.rp, tok.RefreshToken); code != ErrTemporarilyUnavailable {
		t.Fatalf("a refresh while B is down, past the grace period: %q, want %s", code, ErrTemporarilyUnavailable)
	}
	// The failed attempt's claim lapses after 30 s; then A asks again.
	f.bDown.Store(false)
	f.a.clock.Advance(31 * time.Second)
	if tok, code = refresh(t, f.rp, tok.RefreshToken); code != "" {
		t.Fatalf("a refresh once B is back: %q (the refused one must not have used up the token)", code)
	}
	m := f.a.srv.metrics.rechecks
	if a, g, u := testutil.ToFloat64(m.WithLabelValues("corp", recheckAllowed)), testutil.ToFloat64(m.WithLabelValues("corp", recheckGrace)),
		testutil.ToFloat64(m.WithLabelValues("corp", recheckUnavailable)); a != 3 || g < 1 || u != 1 {
		t.Errorf("re-checks: allowed %v, grace %v, unavailable %v", a, g, u)
	}

	// Alice removed at B: the next due refresh is refused, her other
	// grant too (without asking B again), and her session at A ends.
	empty, _ := users.Parse([]byte("users: []\n"))
	f.b.update(func(s *config.Snapshot) { s.Users = empty })
	f.a.clock.Advance(11 * time.Minute)
	asked := f.bRefreshs.Load()
	if _, code = refresh(t, f.rp, tok.RefreshToken); code != ErrInvalidGrant {
		t.Fatalf("a due refresh after alice was removed at B: %q, want invalid_grant", code)
	}
	if _, code = refresh(t, f.rp, tok2.RefreshToken); code != ErrInvalidGrant || f.bRefreshs.Load() != asked+1 {
		t.Fatalf("her other grant: %q, B asked %d more times", code, f.bRefreshs.Load()-asked)
	}
	if signedIn(t, browser, f.rp) {
		t.Error("her browser session at A survived")
	}
	if n := testutil.ToFloat64(m.WithLabelValues("corp", recheckRefused)); n != 1 {
		t.Errorf("refused re-checks = %v, want 1", n)
	}
}

// TestUpstreamRecheckWithLDAP: with a real slapd, a directory person's
// refresh re-checks the directory once the last answer is 5 minutes old:
// a group they left is gone from the next tokens; disabled (the user
// filter no longer matches) or deleted, their next due refresh is refused.
func TestUpstreamRecheckWithLDAP(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	srv := testldap.Start(t, testldap.SeedLDIF)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CAPEM)
	src := identity.NewLDAP(identity.LDAPConfig{
		Name: "corp", DisplayName: "Corp directory", Host: srv.TLSAddr, TLS: &tls.Config{RootCAs: pool},
		BindDN: testldap.ServiceDN, BindPassword: testldap.ServicePassword,
		UserBaseDN: testldap.PeopleDN, UserFilter: "(&(objectClass=inetOrgPerson)(!(description=disabled)))",
		UsernameAttr: "uid", EmailAttr: "mail", NameAttr: "cn",
		GroupBaseDN: testldap.GroupsDN, GroupFilter: "(objectClass=groupOfNames)", MemberAttr: "member", GroupNameAttr: "cn",
	})
	ts.update(func(s *config.Snapshot) {
		s.Identity = identity.NewSet(identity.SecretSource{Dir: s.Users}, src)
		s.Rechecks = map[string]config.Recheck{"corp": {Interval: 5 * time.Minute, Grace: time.Hour}}
	})
	rp := newRelyingParty(t, ts, "openid", "groups", "offline_access")
	login := func(user, password string) *oauth2.Token {
		b := newBrowser(t, ts)
		v := oauth2.GenerateVerifier()
		resp, _ := b.get(rp.cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(v)))
		_, page := b.get(location(t, resp).String())
		f := hiddenFields(page)
		f.Set("username", user)
		f.Set("password", password)
		resp, _ = b.post(ts.URL+endpoints.LoginPath, f)
		_, page = b.get(location(t, resp).String())
		f = hiddenFields(page)
		f.Set("decision", "approve")
		resp, _ = b.post(ts.URL+endpoints.ConsentPath, f)
		tok, err := rp.cfg.Exchange(ctx(t), location(t, resp).Query().Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alice, bob := login("alice", testldap.AlicePassword), login("bob", testldap.BobPassword)
	admin := srv.Admin(t)
	leave := ldap.NewModifyRequest("cn=developers,"+testldap.GroupsDN, nil)
	leave.Delete("member", []string{"uid=alice," + testldap.PeopleDN})
	if err := admin.Modify(leave); err != nil {
		t.Fatal(err)
	}
	// Not due yet: the groups of the login stand.
	alice, code := refresh(t, rp, alice.RefreshToken)
	if _, claims := rp.verify(t, alice); code != "" || len(toStrings(claims["groups"])) != 2 {
		t.Fatalf("a refresh before the interval: %q, %v", code, claims["groups"])
	}
	ts.clock.Advance(6 * time.Minute)
	alice, code = refresh(t, rp, alice.RefreshToken)
	if _, claims := rp.verify(t, alice); code != "" || !slices.Equal(toStrings(claims["groups"]), []string{"admins"}) {
		t.Fatalf("a due refresh after leaving developers: %q, %v", code, claims["groups"])
	}
	if bob, code = refresh(t, rp, bob.RefreshToken); code != "" {
		t.Fatalf("bob's due refresh: %q", code)
	}

	disable := ldap.NewModifyRequest("uid=alice,"+testldap.PeopleDN, nil)
	disable.Replace("description", []string{"disabled"})
	if err := admin.Modify(disable); err != nil {
		t.Fatal(err)
	}
	if err := admin.Del(ldap.NewDelRequest("uid=bob,"+testldap.PeopleDN, nil)); err != nil {
		t.Fatal(err)
	}
	// Within the interval nothing is asked: both still refresh.
	if alice, code = refresh(t, rp, alice.RefreshToken); code != "" {
		t.Fatalf("alice within the interval: %q", code)
	}
	if bob, code = refresh(t, rp, bob.RefreshToken); code != "" {
		t.Fatalf("bob within the interval: %q", code)
	}
	ts.clock.Advance(6 * time.Minute)
	for name, rt := range map[string]string{"disabled alice": alice.RefreshToken, "deleted bob": bob.RefreshToken} {
		if _, code = refresh(t, rp, rt); code != ErrInvalidGrant {
			t.Errorf("%s's due refresh: %q, want invalid_grant", name, code)
		}
	}
	// The refusal is kept: no login, no token, until they sign in again.
	if p, ok := ts.srv.personFor(ts.snap(), identity.UpstreamSubject("corp", "alice")); ok {
		t.Errorf("a refused person is still known: %+v", p)
	}
	if resp := ts.postForm(t, "/introspect", map[string][]string{"token": {alice.AccessToken}}, oidcClientID, oidcSecret); resp.StatusCode != http.StatusOK {
		t.Fatalf("introspection: %d", resp.StatusCode)
	}
}
