package identity_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/gatehouse-dev/gatehouse/internal/testldap"
	"github.com/gatehouse-dev/gatehouse/server/identity"
)

func ldapConfig(t *testing.T, srv *testldap.Server, startTLS bool) identity.LDAPConfig {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(srv.CAPEM) {
		t.Fatal("test CA does not parse")
	}
	host := srv.TLSAddr
	if startTLS {
		host = srv.Addr
	}
	return identity.LDAPConfig{
		Name: "corp", DisplayName: "Corp directory", Host: host, StartTLS: startTLS,
		TLS:    &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		BindDN: testldap.ServiceDN, BindPassword: testldap.ServicePassword,
		UserBaseDN: testldap.PeopleDN, UserFilter: "(objectClass=inetOrgPerson)", UsernameAttr: "uid",
		EmailAttr: "mail", NameAttr: "cn",
		GroupBaseDN: testldap.GroupsDN, GroupFilter: "(objectClass=groupOfNames)", MemberAttr: "member", GroupNameAttr: "cn",
	}
}

// A real slapd, over TLS and over StartTLS, each verified with the test CA:
// the person's entry, groups and a subject namespaced by the provider.
func TestLDAPLogin(t *testing.T) {
	srv := testldap.Start(t, testldap.SeedLDIF)
	ctx := context.Background()
	for _, startTLS := range []bool{false, true} {
		src := identity.NewLDAP(ldapConfig(t, srv, startTLS))
		p, err := src.Authenticate(ctx, "alice", testldap.AlicePassword)
		if err != nil {
			t.Fatalf("startTLS=%v: alice: %v", startTLS, err)
		}
		want := identity.Person{
			Subject: identity.UpstreamSubject("corp", "alice"), Username: "alice", Name: "Alice Example",
			Email: "alice@example.com", Groups: []string{"admins", "developers"},
		}
		slices.Sort(p.Groups)
		if p.Subject != want.Subject || p.Username != want.Username || p.Name != want.Name || p.Email != want.Email || !slices.Equal(p.Groups, want.Groups) {
			t.Fatalf("startTLS=%v: got %+v, want %+v", startTLS, p, want)
		}
		if prov, ok := identity.ProviderOf(p.Subject); !ok || prov != "corp" || !strings.HasPrefix(p.Subject, "idp:corp:") {
			t.Fatalf("subject %q does not name its provider", p.Subject)
		}
		if err := src.Check(ctx); err != nil {
			t.Fatalf("startTLS=%v: Check: %v", startTLS, err)
		}
	}
	src := identity.NewLDAP(ldapConfig(t, srv, false))
	carol, err := src.Authenticate(ctx, "carol", testldap.CarolPassword)
	if err != nil || len(carol.Groups) != 0 || carol.Email != "" {
		t.Fatalf("carol (no groups, no mail): %+v, %v", carol, err)
	}
	// The same person from a provider with another name is another subject.
	other := ldapConfig(t, srv, false)
	other.Name = "corp2"
	p2, err := identity.NewLDAP(other).Authenticate(ctx, "alice", testldap.AlicePassword)
	if err != nil || p2.Subject == identity.UpstreamSubject("corp", "alice") {
		t.Fatalf("alice at corp2: %+v, %v", p2, err)
	}
}

// A wrong password, an unknown user, an empty password and filter
// injection all get the one error the login page shows for all of them.
func TestLDAPRefusals(t *testing.T) {
	srv := testldap.Start(t, testldap.SeedLDIF)
	src := identity.NewLDAP(ldapConfig(t, srv, false))
	ctx := context.Background()
	for _, c := range []struct{ name, user, password string }{
		{"wrong password", "alice", "not-her-password"},
		{"unknown user", "mallory", testldap.AlicePassword},
		{"empty password (an unauthenticated bind)", "alice", ""},
		{"injection matching everyone", "*)(uid=*", testldap.AlicePassword},
		{"injection closing the filter", "alice)(|(uid=*", testldap.AlicePassword},
		{"wildcard", "*", testldap.BobPassword},
		{"wildcard prefix", "al*", testldap.AlicePassword},
		{"NUL", "alice\x00", testldap.AlicePassword},
	} {
		_, err := src.Authenticate(ctx, c.user, c.password)
		if !errors.Is(err, identity.ErrInvalidCredentials) {
			t.Errorf("%s: %v, want ErrInvalidCredentials", c.name, err)
		}
	}
}

// A directory that cannot be trusted or reached, or refuses the service
// account, is unavailable, never "wrong password"; errors never carry the
// bind password.
func TestLDAPUnavailable(t *testing.T) {
	srv := testldap.Start(t, testldap.SeedLDIF)
	ctx := context.Background()
	cases := map[string]func(*identity.LDAPConfig){
		"a CA that did not sign the certificate": func(c *identity.LDAPConfig) { c.TLS = &tls.Config{RootCAs: x509.NewCertPool()} },
		"a wrong bind password":                  func(c *identity.LDAPConfig) { c.BindPassword = "wrong-" + testldap.ServicePassword },
		"nothing listening":                      func(c *identity.LDAPConfig) { c.Host = "127.0.0.1:1" },
		"StartTLS on the TLS port":               func(c *identity.LDAPConfig) { c.StartTLS = true },
	}
	for name, mutate := range cases {
		cfg := ldapConfig(t, srv, false)
		mutate(&cfg)
		src := identity.NewLDAP(cfg)
		_, err := src.Authenticate(ctx, "alice", testldap.AlicePassword)
		if !errors.Is(err, identity.ErrUnavailable) {
			t.Errorf("%s: login: %v, want ErrUnavailable", name, err)
		}
		checkErr := src.Check(ctx)
		if refused := errors.Is(checkErr, identity.ErrCredentialsRejected); refused != strings.Contains(name, "bind password") {
			t.Errorf("%s: Check says credentials refused = %v: %v", name, refused, checkErr)
		}
		if checkErr == nil || strings.Contains(checkErr.Error(), testldap.ServicePassword) || strings.Contains(err.Error(), testldap.AlicePassword) {
			t.Errorf("%s: Check: %v (must fail and name no password)", name, checkErr)
		}
	}
}

// Recheck with a real slapd: the person's entry found again by its
// idAttribute value, groups read afresh; removed from a group, that shows;
// an entry that no longer matches the user filter (disabled) or is gone
// is ErrGone; a directory that cannot be reached is ErrUnavailable, and
// removes nobody.
func TestLDAPRecheck(t *testing.T) {
	srv := testldap.Start(t, testldap.SeedLDIF)
	ctx := context.Background()
	cfg := ldapConfig(t, srv, false)
	// A disabled account no longer matches the filter.
	cfg.UserFilter = "(&(objectClass=inetOrgPerson)(!(description=disabled)))"
	src := identity.NewLDAP(cfg)
	alice, err := src.Authenticate(ctx, "alice", testldap.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if alice.Handle.ID != "alice" || alice.Handle.RefreshToken != "" {
		t.Fatalf("alice's handle = %+v", alice.Handle)
	}
	bob, err := src.Authenticate(ctx, "bob", testldap.BobPassword)
	if err != nil {
		t.Fatal(err)
	}

	again, err := src.Recheck(ctx, alice.Subject, alice.Handle)
	if err != nil {
		t.Fatalf("Recheck: %v", err)
	}
	slices.Sort(again.Groups)
	if again.Subject != alice.Subject || again.Email != "alice@example.com" || !slices.Equal(again.Groups, []string{"admins", "developers"}) || again.Handle != alice.Handle {
		t.Fatalf("Recheck = %+v", again)
	}
	admin := srv.Admin(t)
	leave := ldap.NewModifyRequest("cn=developers,"+testldap.GroupsDN, nil)
	leave.Delete("member", []string{"uid=alice," + testldap.PeopleDN})
	if err := admin.Modify(leave); err != nil {
		t.Fatal(err)
	}
	if again, err = src.Recheck(ctx, alice.Subject, alice.Handle); err != nil || !slices.Equal(again.Groups, []string{"admins"}) {
		t.Fatalf("after leaving developers: %+v, %v", again, err)
	}
	// Someone else's handle under alice's subject finds bob: refused.
	if _, err := src.Recheck(ctx, alice.Subject, bob.Handle); !errors.Is(err, identity.ErrGone) {
		t.Fatalf("another person's handle: %v", err)
	}

	disable := ldap.NewModifyRequest("uid=alice,"+testldap.PeopleDN, nil)
	disable.Replace("description", []string{"disabled"})
	if err := admin.Modify(disable); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Recheck(ctx, alice.Subject, alice.Handle); !errors.Is(err, identity.ErrGone) {
		t.Fatalf("a disabled account: %v, want ErrGone", err)
	}
	if err := admin.Del(ldap.NewDelRequest("uid=bob,"+testldap.PeopleDN, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Recheck(ctx, bob.Subject, bob.Handle); !errors.Is(err, identity.ErrGone) {
		t.Fatalf("a deleted entry: %v, want ErrGone", err)
	}

	down := cfg
	down.Host = "127.0.0.1:1"
	if _, err := identity.NewLDAP(down).Recheck(ctx, alice.Subject, alice.Handle); !errors.Is(err, identity.ErrUnavailable) || errors.Is(err, identity.ErrGone) {
		t.Fatalf("a directory that is down: %v, want ErrUnavailable", err)
	}
	wrongBase := cfg
	wrongBase.UserBaseDN = "ou=nobody," + testldap.Suffix
	if _, err := identity.NewLDAP(wrongBase).Recheck(ctx, alice.Subject, alice.Handle); errors.Is(err, identity.ErrGone) {
		t.Fatalf("a user base that does not exist removed the person: %v", err)
	}
	if _, err := src.Recheck(ctx, alice.Subject, identity.Handle{}); !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("no handle: %v", err)
	}
}
