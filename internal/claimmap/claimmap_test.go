package claimmap

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

var alice = User{Subject: "u-1", Username: "alice", Name: "Alice", Email: "alice@example.com", EmailVerified: true,
	Groups: []string{"eng-platform", "eng-web", "finance", "admins"}}

var web = Client{ID: "web-id", Namespace: "shop"}

func mustCompile(t testing.TB, m *oauthv1.ClaimMapping) *Mapping {
	t.Helper()
	c, err := Compile(m)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return c
}

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name           string
		server, client *oauthv1.ClaimMapping
		wantGroups     []string
		wantMapped     bool
		wantClaims     map[string]any
	}{
		{name: "no mapping"},
		{
			name:       "prefix every group (Argo CD, kube-apiserver)",
			server:     &oauthv1.ClaimMapping{Groups: `user.groups.map(g, "gatehouse:" + g)`},
			wantGroups: []string{"gatehouse:eng-platform", "gatehouse:eng-web", "gatehouse:finance", "gatehouse:admins"}, wantMapped: true,
		},
		{
			name:       "filter groups",
			server:     &oauthv1.ClaimMapping{Groups: `user.groups.filter(g, g.startsWith("eng-"))`},
			wantGroups: []string{"eng-platform", "eng-web"}, wantMapped: true,
		},
		{
			name:       "a filter leaving nothing gives no groups, not the unmapped ones",
			server:     &oauthv1.ClaimMapping{Groups: `user.groups.filter(g, g == "nobody")`},
			wantGroups: []string{}, wantMapped: true,
		},
		{
			name: "added claims of each type; empty and null ones left out",
			server: &oauthv1.ClaimMapping{Claims: []oauthv1.ClaimExpression{
				{Name: "department", Expression: `user.email.endsWith("@example.com") ? "staff" : "guest"`},
				{Name: "is_admin", Expression: `"admins" in user.groups`},
				{Name: "group_count", Expression: `size(user.groups)`},
				{Name: "roles", Expression: `user.groups.filter(g, g == "admins").map(g, "Admin")`},
				{Name: "tenant", Expression: `client.namespace + "/" + user.username`},
				{Name: "empty", Expression: `""`},
				{Name: "none", Expression: `null`},
			}},
			wantClaims: map[string]any{"department": "staff", "is_admin": true, "group_count": int64(4),
				"roles": []string{"Admin"}, "tenant": "shop/alice"},
		},
		{
			name:       "the client's mapping reads the server's groups and overrides its claims",
			server:     &oauthv1.ClaimMapping{Groups: `user.groups.filter(g, g != "finance")`, Claims: []oauthv1.ClaimExpression{{Name: "tier", Expression: `"server"`}}},
			client:     &oauthv1.ClaimMapping{Groups: `user.groups.map(g, "argocd:" + g)`, Claims: []oauthv1.ClaimExpression{{Name: "tier", Expression: `"client"`}}},
			wantGroups: []string{"argocd:eng-platform", "argocd:eng-web", "argocd:admins"}, wantMapped: true,
			wantClaims: map[string]any{"tier": "client"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply(mustCompile(t, tc.server), mustCompile(t, tc.client), alice, web)
			if err != nil {
				t.Fatal(err)
			}
			if got.GroupsMapped != tc.wantMapped || tc.wantMapped && !reflect.DeepEqual(got.Groups, tc.wantGroups) {
				t.Errorf("groups %q (mapped %v), want %q (mapped %v)", got.Groups, got.GroupsMapped, tc.wantGroups, tc.wantMapped)
			}
			if len(got.Claims) != len(tc.wantClaims) || len(tc.wantClaims) > 0 && !reflect.DeepEqual(got.Claims, tc.wantClaims) {
				t.Errorf("claims %#v, want %#v", got.Claims, tc.wantClaims)
			}
		})
	}
	if !reflect.DeepEqual(alice.Groups, []string{"eng-platform", "eng-web", "finance", "admins"}) {
		t.Errorf("the person's own groups were changed: %q", alice.Groups)
	}
}

// Every mistake is found at compile time, with a message naming the field
// and what is wrong.
func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		m    oauthv1.ClaimMapping
		want string
	}{
		{oauthv1.ClaimMapping{Groups: `user.groups.map(g, `}, "claimMapping.groups: ERROR"},
		{oauthv1.ClaimMapping{Groups: `user.gruops`}, "undeclared reference to 'user'"},
		{oauthv1.ClaimMapping{Groups: `user.gruops`}, "(the variables are user.subject, user.username"},
		{oauthv1.ClaimMapping{Groups: `user.username`}, "claimMapping.groups: gives string, not list(string)"},
		{oauthv1.ClaimMapping{Groups: `user.groups.map(g, size(g))`}, "gives list(int), not list(string)"},
		{oauthv1.ClaimMapping{Groups: `unknown.groups`}, "undeclared reference to 'unknown'"},
		{oauthv1.ClaimMapping{Claims: []oauthv1.ClaimExpression{{Name: "x", Expression: `{"a": 1}`}}}, "claims[0] (x): gives map(string, int), not a string, bool, int or list of strings"},
		{oauthv1.ClaimMapping{Claims: []oauthv1.ClaimExpression{{Name: "sub", Expression: `"x"`}}}, `"sub" is a claim the server sets itself`},
		{oauthv1.ClaimMapping{Groups: `user.groups.map(a, user.groups.map(b, user.groups.map(c, a + b + c))).map(l, "x")`}, "exceeds the budget of 1000000"},
	} {
		_, err := Compile(&tc.m)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.m, err, tc.want)
		}
	}
}

// At evaluation, a value of the wrong type (dyn at compile time) or a
// person past the estimate's sizes is an error, never unmapped claims.
func TestApplyErrors(t *testing.T) {
	m := mustCompile(t, &oauthv1.ClaimMapping{Groups: `dyn(user.username)`})
	if _, err := Apply(m, nil, alice, web); err == nil || !strings.Contains(err.Error(), "not a list of strings") {
		t.Errorf("error %v", err)
	}
	big := alice
	for i := range MaxGroups {
		big.Groups = append(big.Groups, fmt.Sprintf("group-%d", i))
	}
	m = mustCompile(t, &oauthv1.ClaimMapping{Claims: []oauthv1.ClaimExpression{{Name: "x", Expression: `user.groups.exists(g, g.startsWith("zzz"))`}}})
	if _, err := Apply(m, nil, big, web); err == nil || !strings.Contains(err.Error(), "more than the 1000 a claim mapping is checked for") {
		t.Errorf("a person with %d groups: error %v, want the size limit", len(big.Groups), err)
	}
	long := alice
	long.Email = strings.Repeat("a", MaxStringLength+1)
	if _, err := Apply(m, nil, long, web); err == nil || !strings.Contains(err.Error(), "bytes long") {
		t.Errorf("a %d-byte email: error %v", len(long.Email), err)
	}
}

// BenchmarkApply is the per-token cost of a typical mapping: a groups
// filter and prefix and two added claims, for a person in 50 groups.
func BenchmarkApply(b *testing.B) {
	u := alice
	for i := range 46 {
		u.Groups = append(u.Groups, fmt.Sprintf("team-%d", i))
	}
	m := mustCompile(b, &oauthv1.ClaimMapping{
		Groups: `user.groups.filter(g, g.startsWith("eng-") || g == "admins").map(g, "gatehouse:" + g)`,
		Claims: []oauthv1.ClaimExpression{
			{Name: "department", Expression: `user.email.endsWith("@example.com") ? "staff" : "guest"`},
			{Name: "is_admin", Expression: `"admins" in user.groups`},
		},
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Apply(m, nil, u, web); err != nil {
			b.Fatal(err)
		}
	}
}
