package identity_test

import (
	"context"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/codes"

	"github.com/gatehouse-dev/gatehouse/internal/testldap"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	"github.com/gatehouse-dev/gatehouse/internal/tracing/tracingtest"
	"github.com/gatehouse-dev/gatehouse/server/identity"
)

// TestLDAPSpans: a login against a real slapd made for a traced request
// is its binds and searches as client spans of the request's span (the
// service account's bind, the user search, the person's bind, the service
// account's bind again and the group search), with the directory's
// address and the provider's name but neither DN nor filter; a wrong
// password is an answer, not a failed span; with no recorded request
// (a status check) there are none.
func TestLDAPSpans(t *testing.T) {
	srv := testldap.Start(t, testldap.SeedLDIF)
	rec := tracingtest.Record(t, nil)
	src := identity.NewLDAP(ldapConfig(t, srv, false))

	ctx, request := tracing.Start(context.Background(), "POST login", 0)
	if _, err := src.Authenticate(ctx, "alice", testldap.AlicePassword); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Authenticate(ctx, "alice", "wrong"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	request.End()
	if err := src.Check(context.Background()); err != nil {
		t.Fatal(err)
	}

	spans := tracingtest.Children(rec.Ended(), request.SpanContext())
	want := []string{"ldap bind", "ldap search", "ldap bind", "ldap bind", "ldap search", // alice
		"ldap bind", "ldap search", "ldap bind"} // the wrong password
	if got := tracingtest.Names(spans); !slices.Equal(got, want) {
		t.Fatalf("the login's LDAP spans are %v, want %v", got, want)
	}
	for i, s := range spans {
		if s.Status().Code == codes.Error {
			t.Errorf("span %d %s failed: %v", i, s.Name(), s.Status())
		}
		if tracingtest.Attr(s, "server.address") != srv.TLSAddr || tracingtest.Attr(s, "gatehouse.identity_provider") != "corp" {
			t.Errorf("span %d %s has attributes %v", i, s.Name(), s.Attributes())
		}
		for _, a := range s.Attributes() {
			if v := a.Value.String(); v == testldap.ServiceDN || slices.Contains([]string{"alice", testldap.AlicePassword}, v) {
				t.Errorf("span %s carries %s=%q", s.Name(), a.Key, v)
			}
		}
	}
	if n := len(rec.Ended()); n != len(want)+1 {
		t.Errorf("%d spans ended, want the request's and its %d LDAP calls only (Check has no request): %v", n, len(want), tracingtest.Names(rec.Ended()))
	}
}
