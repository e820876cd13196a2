// Package users is the format of an AuthorizationServer's users Secret
// (spec.users.secretRef), shared by the operator, which validates it, and
// the token server, which logs people in against it.
//
// The Secret holds one data key, users.yaml:
//
//	users:
//	- username: alice
//	  passwordHash: $2y$10$...   # bcrypt, e.g. from `htpasswd -nbBC 10 "" PASSWORD | cut -d: -f2`
//	  subject: 2f0c8b7e-...      # optional; the token's sub; defaults to username
//	                             # must not start with "client:" (ClientSubjectPrefix)
//	                             # nor "idp:" (UpstreamSubjectPrefix), "system:"
//	                             # (SystemSubjectPrefix), "federated:"
//	                             # (FederatedSubjectPrefix)
//	  email: alice@example.com   # optional; the email claim
//	  emailVerified: true        # optional; email_verified (false unless set)
//	  name: Alice Example        # optional; the name claim
//	  groups: [admins]           # optional; the groups claim
//
// The optional fields are released to OpenID Connect clients by the built-in
// scopes profile (name), email (email, emailVerified) and groups.
package users

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"
)

// SecretDataKey is the data key of the users list in the Secret.
const SecretDataKey = "users.yaml"

// ClientSubjectPrefix begins the sub of every access token a client gets
// for itself (client_credentials): "client:" followed by its client_id. No
// user's subject may start with it, so a user and a client never share a
// sub, whatever their names (RFC 9700 §4.15), and a resource server can
// tell the two apart from sub alone. The resourceserver package relies on
// the same prefix.
const ClientSubjectPrefix = "client:"

// ClientSubject is the sub of a token a client gets for itself.
func ClientSubject(clientID string) string { return ClientSubjectPrefix + clientID }

// UpstreamSubjectPrefix begins the sub of every person an upstream identity
// provider logged in ("idp:<provider>:<hash>", see server/identity). No
// users-Secret subject may start with it, so a person from the Secret and
// one from an upstream never share a sub.
const UpstreamSubjectPrefix = "idp:"

// SystemSubjectPrefix begins the sub of a workload a token exchange knows
// by its Kubernetes service-account token:
// system:serviceaccount:<namespace>:<name>, Kubernetes' own username for
// it. Kubernetes reserves the prefix for its own identities, and so does
// the users Secret.
const SystemSubjectPrefix = "system:"

// FederatedSubjectPrefix begins the sub of a workload a token exchange
// knows by a trusted issuer's token: federated:<issuer name>:<sub>.
const FederatedSubjectPrefix = "federated:"

// FederatedSubject is the sub of trusted issuer issuer's subject sub.
func FederatedSubject(issuer, sub string) string { return FederatedSubjectPrefix + issuer + ":" + sub }

// reservedSubject returns the reserved prefix sub starts with: the
// clients' or the upstreams'. Case is ignored so that no consumer that
// folds case can be confused either.
func reservedSubject(sub string) (string, bool) {
	for _, p := range []string{ClientSubjectPrefix, UpstreamSubjectPrefix, SystemSubjectPrefix, FederatedSubjectPrefix} {
		if len(sub) >= len(p) && strings.EqualFold(sub[:len(p)], p) {
			return p, true
		}
	}
	return "", false
}

var reservedFor = map[string]string{
	ClientSubjectPrefix:    "clients' tokens",
	UpstreamSubjectPrefix:  "people from upstream identity providers",
	SystemSubjectPrefix:    "Kubernetes service accounts",
	FederatedSubjectPrefix: "workloads of trusted issuers",
}

// MinBcryptCost is the least bcrypt cost accepted: below it a stolen
// Secret's hashes are too cheap to crack.
const MinBcryptCost = 10

// User is one person who can log in.
type User struct {
	Username     string `json:"username"`
	PasswordHash string `json:"passwordHash"`
	Subject      string `json:"subject,omitempty"`
	Email        string `json:"email,omitempty"`
	// EmailVerified says the operator of the users Secret checked that
	// Email belongs to the person (OpenID Connect Core §5.1
	// email_verified). Relying parties may trust a verified email as an
	// identity, so it is never assumed.
	EmailVerified bool     `json:"emailVerified,omitempty"`
	Name          string   `json:"name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

// Directory is a parsed users Secret, keyed by username.
type Directory struct {
	byName    map[string]User
	bySubject map[string]User
	// dummy is what an unknown username is checked against: a hash of the
	// cost most users have, so that an unknown user costs as much time as
	// a wrong password (see dummyHash).
	dummy []byte
}

type file struct {
	Users []User `json:"users"`
}

// Parse reads the users.yaml document, checking every entry. Errors name the
// entry but never carry a hash.
func Parse(data []byte) (*Directory, error) {
	var f file
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", SecretDataKey, err)
	}
	d := &Directory{byName: make(map[string]User, len(f.Users)), bySubject: make(map[string]User, len(f.Users))}
	subjects := map[string]string{}
	costs := map[int]int{}
	for i, u := range f.Users {
		where := fmt.Sprintf("%s: users[%d]", SecretDataKey, i)
		if u.Username == "" || strings.TrimSpace(u.Username) != u.Username || len(u.Username) > 256 {
			return nil, fmt.Errorf("%s: username must be non-empty, at most 256 characters, without surrounding spaces", where)
		}
		where += fmt.Sprintf(" (%s)", u.Username)
		if _, dup := d.byName[u.Username]; dup {
			return nil, fmt.Errorf("%s: username appears twice", where)
		}
		cost, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			return nil, fmt.Errorf("%s: passwordHash is not a bcrypt hash", where)
		}
		if cost < MinBcryptCost {
			return nil, fmt.Errorf("%s: bcrypt cost %d is below the minimum %d", where, cost, MinBcryptCost)
		}
		costs[cost]++
		if u.Subject == "" {
			u.Subject = u.Username
			if p, reserved := reservedSubject(u.Subject); reserved {
				return nil, fmt.Errorf("%s: a username starting with %q needs a subject of its own: the subject defaults to the username, and subjects starting with %q are reserved for %s", where, p, p, reservedFor[p])
			}
		}
		if p, reserved := reservedSubject(u.Subject); reserved {
			return nil, fmt.Errorf("%s: subject %q starts with %q, which is reserved for %s: choose another subject", where, u.Subject, p, reservedFor[p])
		}
		if u.EmailVerified && u.Email == "" {
			return nil, fmt.Errorf("%s: emailVerified is set but there is no email", where)
		}
		if strings.TrimSpace(u.Email) != u.Email || strings.Count(u.Email, "@") > 1 || (u.Email != "" && !strings.Contains(u.Email, "@")) {
			return nil, fmt.Errorf("%s: email %q is not an address of the form name@domain", where, u.Email)
		}
		for _, g := range u.Groups {
			if g == "" || strings.TrimSpace(g) != g {
				return nil, fmt.Errorf("%s: group names must be non-empty, without surrounding spaces", where)
			}
		}
		if other, dup := subjects[u.Subject]; dup {
			return nil, fmt.Errorf("%s: subject %q is also %s's", where, u.Subject, other)
		}
		subjects[u.Subject] = u.Username
		d.byName[u.Username] = u
		d.bySubject[u.Subject] = u
	}
	d.dummy = dummyHash(commonCost(costs))
	return d, nil
}

// commonCost is the bcrypt cost most users have (the higher on a tie).
func commonCost(costs map[int]int) int {
	best := MinBcryptCost
	for c, n := range costs {
		if n > costs[best] || (n == costs[best] && c > best) {
			best = c
		}
	}
	return best
}

// ErrInvalidCredentials is the one error Authenticate returns for a wrong
// username or a wrong password alike, so that a login page cannot be used to
// learn which usernames exist.
var ErrInvalidCredentials = errors.New("invalid username or password")

// dummyHashes are the hashes unknown usernames are checked against, one
// per bcrypt cost, made once: Parse runs on every change of the Secret.
var dummyHashes sync.Map // int → []byte

// dummyHash is a hash of cost: an unknown user then costs as much time as
// a wrong password of a real one, so timing does not tell whether a
// username exists.
func dummyHash(cost int) []byte {
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("gatehouse-timing-equalizer"), cost)
	dummyHashes.Store(cost, h)
	return h
}

// Authenticate checks a password. It runs bcrypt: call it only from the
// login page, never on the token path.
func (d *Directory) Authenticate(username, password string) (User, error) {
	u, ok := d.byName[username]
	hash := d.dummy
	if ok {
		hash = []byte(u.PasswordHash)
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil || !ok {
		return User{}, ErrInvalidCredentials
	}
	return u, nil
}

// Lookup returns a user by username.
func (d *Directory) Lookup(username string) (User, bool) {
	u, ok := d.byName[username]
	return u, ok
}

// BySubject returns the user whose token subject is sub: sessions and
// consents remember subjects, and a user removed from the Secret must stop
// being logged in.
func (d *Directory) BySubject(sub string) (User, bool) {
	u, ok := d.bySubject[sub]
	return u, ok
}

// Len is the number of users.
func (d *Directory) Len() int { return len(d.byName) }

// Subjects are the users' subjects, in no order.
func (d *Directory) Subjects() []string {
	out := make([]string, 0, len(d.bySubject))
	for sub := range d.bySubject {
		out = append(out, sub)
	}
	return out
}
