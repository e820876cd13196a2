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

var bob = User{Subject: "u-2", Username: "bob", Email: "bob@example.org", Groups: []string{"sales"}}

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
		{oauthv1.ClaimMapping{LoginRules: []oauthv1.LoginRule{{Expression: `true`}, {Expression: `user.groups`}}}, "claimMapping.loginRules[1]: gives list(string), not bool"},
		{oauthv1.ClaimMapping{LoginRules: []oauthv1.LoginRule{{Expression: `user.grups.exists(g, g == "a")`}}}, "claimMapping.loginRules[0]: ERROR"},
		{oauthv1.ClaimMapping{LoginRules: []oauthv1.LoginRule{{Expression: `user.groups.all(a, user.groups.all(b, user.groups.all(c, a + b + c != "")))`}}}, "loginRules[0]: its estimated worst-case cost"},
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

// TestAdmit: the server's rules on the person as their source gave them,
// then the client's on the server's mapped groups; every rule must give
// true; the first that does not decides, with its message; a rule that
// cannot be evaluated refuses (fail closed) and says why.
func TestAdmit(t *testing.T) {
	rules := func(exprs ...string) *oauthv1.ClaimMapping {
		m := &oauthv1.ClaimMapping{}
		for i, e := range exprs {
			m.LoginRules = append(m.LoginRules, oauthv1.LoginRule{Expression: e, Message: fmt.Sprintf("rule %d says no", i)})
		}
		return m
	}
	for _, tc := range []struct {
		name           string
		server, client *oauthv1.ClaimMapping
		u              User
		wantOf         string // "" for admitted
		wantRule       string
		wantErr        string
	}{
		{name: "no rules", u: alice},
		{name: "a mapping without rules admits", server: &oauthv1.ClaimMapping{Groups: `user.groups`}, u: alice},
		{name: "in the group", server: rules(`"admins" in user.groups`), u: alice},
		{name: "not in the group", server: rules(`"admins" in user.groups`), u: bob,
			wantOf: "AuthorizationServer", wantRule: "spec.claimMapping.loginRules[0]"},
		{name: "every rule must hold; the first refusing one decides", server: rules(`true`, `user.emailVerified`, `false`), u: bob,
			wantOf: "AuthorizationServer", wantRule: "spec.claimMapping.loginRules[1]"},
		{name: "the client's rules after the server's", server: rules(`user.email.endsWith("@example.com")`), client: rules(`client.namespace == "shop" && "finance" in user.groups`), u: alice},
		{name: "the client refuses", server: rules(`true`), client: rules(`true`, `"sales" in user.groups`), u: alice,
			wantOf: "OAuthClient", wantRule: "spec.claimMapping.loginRules[1]"},
		{name: "the client's rules see the server's mapped groups", server: &oauthv1.ClaimMapping{Groups: `user.groups.map(g, "corp:" + g)`},
			client: rules(`"admins" in user.groups`), u: alice, wantOf: "OAuthClient", wantRule: "spec.claimMapping.loginRules[0]"},
		{name: "the server's rules see its source's groups", server: &oauthv1.ClaimMapping{Groups: `user.groups.map(g, "corp:" + g)`, LoginRules: []oauthv1.LoginRule{{Expression: `"admins" in user.groups`}}},
			client: rules(`"corp:admins" in user.groups`), u: alice},
		{name: "a missing key refuses", server: rules(`{"alice": true}[user.username]`), u: bob,
			wantOf: "AuthorizationServer", wantRule: "spec.claimMapping.loginRules[0]", wantErr: "no such key"},
		{name: "an index out of range refuses", client: rules(`user.groups[0] == "sales"`), u: User{Username: "nobody"},
			wantOf: "OAuthClient", wantRule: "spec.claimMapping.loginRules[0]", wantErr: "index out of bounds"},
		{name: "a dyn that is not a bool refuses", server: rules(`dyn(user.username)`), u: alice,
			wantOf: "AuthorizationServer", wantRule: "spec.claimMapping.loginRules[0]", wantErr: "not a bool"},
		{name: "the server's groups failing refuses the client's rules", server: &oauthv1.ClaimMapping{Groups: `dyn(user.username)`},
			client: rules(`true`), u: alice, wantOf: "AuthorizationServer", wantRule: "spec.claimMapping.groups", wantErr: "not a list of strings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Admit(mustCompile(t, tc.server), mustCompile(t, tc.client), tc.u, web)
			if tc.wantOf == "" {
				if d != nil {
					t.Fatalf("refused: %s", d.Reason())
				}
				return
			}
			if d == nil {
				t.Fatal("admitted")
			}
			if d.Of != tc.wantOf || d.Rule != tc.wantRule {
				t.Errorf("decided by %s %s, want %s %s", d.Of, d.Rule, tc.wantOf, tc.wantRule)
			}
			if tc.wantErr == "" && d.Err != nil || tc.wantErr != "" && (d.Err == nil || !strings.Contains(d.Reason(), tc.wantErr)) {
				t.Errorf("reason %q, want error %q", d.Reason(), tc.wantErr)
			}
			if tc.wantRule != "spec.claimMapping.groups" && !strings.HasSuffix(d.Message, "says no") {
				t.Errorf("message %q, want the rule's", d.Message)
			}
		})
	}
	big := alice
	for i := range MaxGroups {
		big.Groups = append(big.Groups, fmt.Sprintf("group-%d", i))
	}
	if d := Admit(mustCompile(t, rules(`true`)), nil, big, web); d == nil || d.Err == nil || !strings.Contains(d.Reason(), "more than the 1000") {
		t.Errorf("a person with %d groups: %+v, want refused for size", len(big.Groups), d)
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

// BenchmarkAdmit is the per-login (and per-refresh) cost of typical
// rules: a server rule on the email and a client rule on the server's
// mapped groups, for a person in 50 groups.
func BenchmarkAdmit(b *testing.B) {
	u := alice
	for i := range 46 {
		u.Groups = append(u.Groups, fmt.Sprintf("team-%d", i))
	}
	server := mustCompile(b, &oauthv1.ClaimMapping{
		Groups:     `user.groups.map(g, "gatehouse:" + g)`,
		LoginRules: []oauthv1.LoginRule{{Expression: `user.emailVerified && user.email.endsWith("@example.com")`}},
	})
	client := mustCompile(b, &oauthv1.ClaimMapping{LoginRules: []oauthv1.LoginRule{{Expression: `"gatehouse:admins" in user.groups`}}})
	b.ReportAllocs()
	for b.Loop() {
		if d := Admit(server, client, u, web); d != nil {
			b.Fatal(d.Reason())
		}
	}
}
