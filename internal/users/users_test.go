package users

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func hash(t *testing.T, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParseAndAuthenticate(t *testing.T) {
	alice := hash(t, "correct horse", MinBcryptCost)
	d, err := Parse([]byte(`
users:
- username: alice
  passwordHash: "` + alice + `"
  email: alice@example.com
  emailVerified: true
  name: Alice Example
  groups: [admins, "team:orders"]
- username: bob
  passwordHash: "` + hash(t, "hunter2", MinBcryptCost) + `"
  subject: 8d7e0c1a
`))
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 {
		t.Fatalf("Len = %d", d.Len())
	}
	u, err := d.Authenticate("alice", "correct horse")
	if err != nil || u.Subject != "alice" || u.Email != "alice@example.com" {
		t.Errorf("alice: %+v, %v (subject defaults to the username)", u, err)
	}
	if !u.EmailVerified || u.Name != "Alice Example" || len(u.Groups) != 2 || u.Groups[1] != "team:orders" {
		t.Errorf("alice's claims: %+v", u)
	}
	if u, err := d.Authenticate("bob", "hunter2"); err != nil || u.Subject != "8d7e0c1a" || u.EmailVerified || u.Email != "" {
		t.Errorf("bob: %+v, %v", u, err)
	}
	if u, ok := d.BySubject("8d7e0c1a"); !ok || u.Username != "bob" {
		t.Errorf("BySubject(bob's subject) = %+v, %v", u, ok)
	}
	if _, ok := d.BySubject("bob"); ok {
		t.Error("BySubject found a username that is not a subject")
	}
	for _, bad := range [][2]string{{"alice", "wrong"}, {"mallory", "correct horse"}, {"alice", ""}, {"", ""}} {
		if _, err := d.Authenticate(bad[0], bad[1]); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("Authenticate(%q, %q) = %v, want ErrInvalidCredentials", bad[0], bad[1], err)
		}
	}
}

func TestParseRejectsBadFiles(t *testing.T) {
	good := hash(t, "pw", MinBcryptCost)
	cheap := hash(t, "pw", 4)
	for _, tc := range []struct{ doc, want string }{
		{`users: [{username: "", passwordHash: "` + good + `"}]`, "username must be non-empty"},
		{`users: [{username: a, passwordHash: plain}]`, "users[0] (a): passwordHash is not a bcrypt hash"},
		{`users: [{username: a, passwordHash: "` + cheap + `"}]`, "bcrypt cost 4 is below the minimum 10"},
		{`users: [{username: a, passwordHash: "` + good + `"}, {username: a, passwordHash: "` + good + `"}]`, "username appears twice"},
		{`users: [{username: a, passwordHash: "` + good + `"}, {username: b, subject: a, passwordHash: "` + good + `"}]`, `subject "a" is also a's`},
		{`users: [{username: a, password: secret}]`, `unknown field "password"`},
		{`users: {`, "users.yaml:"},
		{`users: [{username: a, emailVerified: true, passwordHash: "` + good + `"}]`, "emailVerified is set but there is no email"},
		{`users: [{username: a, email: a.example.com, passwordHash: "` + good + `"}]`, `email "a.example.com" is not an address`},
		{`users: [{username: a, groups: [ok, ""], passwordHash: "` + good + `"}]`, "group names must be non-empty"},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.40q…) = %v, want %q", tc.doc, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "$2a$") {
			t.Errorf("error leaks a hash: %v", err)
		}
	}
}

// Subjects starting with "client:" belong to clients' own tokens: a user
// may not have one, neither set nor defaulted from the username, in any
// case (RFC 9700 §4.15).
func TestParseRefusesClientSubjects(t *testing.T) {
	h := hash(t, "pw", MinBcryptCost)
	for entry, want := range map[string]string{
		"username: client:apps.worker":                  "a username starting with \"client:\" needs a subject of its own",
		"username: CLIENT:apps.worker":                  "needs a subject of its own",
		"username: bob\n  subject: client:apps.worker":  `subject "client:apps.worker" starts with "client:", which is reserved for clients' tokens`,
		"username: bob\n  subject: Client:apps.worker":  "reserved for clients' tokens",
		"username: client:bob\n  subject: client:bob-1": "reserved for clients' tokens",
		// "idp:" belongs to people from upstream identity providers.
		"username: idp:corp:alice":             `a username starting with "idp:" needs a subject of its own`,
		"username: bob\n  subject: IDP:corp:x": `starts with "idp:", which is reserved for people from upstream identity providers`,
		// Workloads that token exchange names by their own identity.
		"username: bob\n  subject: system:serviceaccount:shop:worker": `reserved for Kubernetes service accounts`,
		"username: bob\n  subject: federated:github:repo:org/app":     `reserved for workloads of trusted issuers`,
	} {
		_, err := Parse([]byte("users:\n- " + entry + "\n  passwordHash: \"" + h + "\"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", entry, err, want)
		}
	}
	// Named like a client_id, or with the prefix elsewhere: fine.
	for _, entry := range []string{"username: apps.worker", "username: client:bob\n  subject: 8d7e0c1a", "username: bob\n  subject: urn:client:bob"} {
		if _, err := Parse([]byte("users:\n- " + entry + "\n  passwordHash: \"" + h + "\"\n")); err != nil {
			t.Errorf("%q: %v", entry, err)
		}
	}
}

// An unknown username is checked against a hash of the cost most users
// have, so that it takes as long as a wrong password of a real user.
func TestDummyHashHasTheUsersCost(t *testing.T) {
	h10, h11 := hash(t, "pw", MinBcryptCost), hash(t, "pw", MinBcryptCost+1)
	d, err := Parse([]byte("users:\n- {username: a, passwordHash: '" + h11 + "'}\n- {username: b, passwordHash: '" + h11 + "'}\n- {username: c, passwordHash: '" + h10 + "'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost(d.dummy); err != nil || cost != MinBcryptCost+1 {
		t.Errorf("dummy hash cost %d (%v), want %d, the cost of most users", cost, err, MinBcryptCost+1)
	}
	if _, err := d.Authenticate("nobody", "pw"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("unknown user: %v", err)
	}
	empty, err := Parse([]byte("users: []"))
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost(empty.dummy); cost != MinBcryptCost {
		t.Errorf("dummy hash of an empty directory has cost %d, want %d", cost, MinBcryptCost)
	}
}
