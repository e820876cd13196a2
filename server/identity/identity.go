// Package identity is where the people who log in come from: the users
// Secret, upstream OpenID Providers and LDAP directories, each a Source.
// The token server's endpoints see only a Person with a subject; they never
// learn which kind of source logged someone in.
//
// Sources are called only during login. What a login learned (username,
// email, groups) is kept by the token server with the subject, so tokens,
// refreshes, introspection and userinfo never wait on an upstream.
//
// Subjects are stable and collision-free across sources:
//   - the users Secret keeps its own subjects (the username unless set);
//     they may not start with "client:" (clients' own tokens) or "idp:";
//   - a person from the provider named N gets "idp:N:" followed by the
//     unpadded base64url SHA-256 of what identifies them upstream (for
//     OpenID Connect the issuer and sub, for LDAP the idAttribute value).
//
// Provider names are DNS labels (no ':'), so the prefix "idp:N:" belongs to
// one provider, and the hash keeps the subject short and opaque whatever
// the upstream's identifiers look like.
package identity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/users"
)

var (
	// ErrInvalidCredentials means the username is unknown or the password is
	// wrong; one error for both, so a login page cannot tell which.
	ErrInvalidCredentials = errors.New("invalid username or password")
	// ErrNotAllowed means the upstream logged the person in, but the provider's
	// allowed groups do not admit them.
	ErrNotAllowed = errors.New("not in an allowed group")
	// ErrUnavailable means the upstream could not be reached or answered
	// nonsense; the person should try again later.
	ErrUnavailable = errors.New("identity provider unavailable")
	// ErrCredentialsRejected means the upstream refused this server's own
	// credentials (an OpenID Provider the client secret, a directory the
	// bind password). Always together with ErrUnavailable at login: the
	// person can do nothing about it.
	ErrCredentialsRejected = errors.New("the identity provider refused this server's credentials")
	// ErrRejected means the upstream's answer failed verification (state,
	// nonce, signature, issuer, audience, expiry): a forged or replayed
	// callback, or a login that went wrong upstream.
	ErrRejected = errors.New("identity provider answer rejected")
	// ErrGone means that, asked again (Recheck), the upstream no longer
	// lets the person in: the entry is gone or no longer matches the
	// filter, the provider refused their refresh token, or they left
	// every allowed group.
	ErrGone = errors.New("the person is gone or no longer allowed upstream")
)

// Person is who a source says logged in.
type Person struct {
	Subject       string   `json:"sub"`
	Username      string   `json:"username"`
	Name          string   `json:"name,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	// Handle finds the person again upstream (Recheck); the token server
	// keeps it sealed, apart from the rest.
	Handle Handle `json:"-"`
}

// Handle is what a source needs to ask about a person again without
// them: an LDAP entry's idAttribute value, an OpenID Provider's refresh
// token. Empty when there is nothing to ask with.
type Handle struct {
	ID           string `json:"id,omitempty"`
	RefreshToken string `json:"rt,omitempty"`
}

// IsZero reports whether h can ask nothing.
func (h Handle) IsZero() bool { return h.ID == "" && h.RefreshToken == "" }

// Rechecker is a source that can ask about a person again, when their
// refresh token is used: the only upstream call outside a login, and one
// the person's own request triggers.
type Rechecker interface {
	Source
	// Recheck returns the person subject as the upstream describes them
	// now, their Handle for next time included. ErrGone when the upstream
	// no longer lets them in; ErrUnavailable when it cannot be asked.
	Recheck(ctx context.Context, subject string, h Handle) (Person, error)
}

// Source is one place people log in from. Each is also a PasswordSource or
// a RedirectSource.
type Source interface {
	// Name is the provider's name in the spec; "" for the users Secret.
	Name() string
	// DisplayName is shown on the login page.
	DisplayName() string
}

// PasswordSource checks a username and password typed into the login
// page's form (the users Secret, LDAP).
type PasswordSource interface {
	Source
	// Authenticate returns ErrInvalidCredentials for a wrong username or
	// password alike.
	Authenticate(ctx context.Context, username, password string) (Person, error)
}

// RedirectSource logs people in by sending the browser to an upstream
// and reading what it sends back (OpenID Connect).
type RedirectSource interface {
	Source
	// Start returns the upstream URL to send the browser to and what the
	// callback must match, to be kept in the browser's cookie.
	Start(ctx context.Context, redirectURI string) (string, Pending, error)
	// Finish verifies the callback's query against p and returns the
	// person.
	Finish(ctx context.Context, redirectURI string, p Pending, callback map[string][]string) (Person, error)
}

// Pending is what a started upstream login must see again at its
// callback: the state (CSRF, RFC 6749 §10.12), the nonce (OpenID Connect
// Core §3.1.2.1) and the PKCE verifier (RFC 7636).
type Pending struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
}

// UpstreamSubject is the sub of the person id names at provider.
func UpstreamSubject(provider, id string) string {
	sum := sha256.Sum256([]byte(id))
	return users.UpstreamSubjectPrefix + provider + ":" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// ProviderOf returns the provider an upstream subject belongs to.
func ProviderOf(sub string) (string, bool) {
	rest, ok := strings.CutPrefix(sub, users.UpstreamSubjectPrefix)
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, ":")
	return name, ok && name != ""
}

// Set is the sources of one AuthorizationServer, in login-page order: the
// users Secret first, then the providers in spec order.
type Set struct {
	sources []Source
	byName  map[string]Source
}

// NewSet makes a Set.
func NewSet(sources ...Source) *Set {
	s := &Set{byName: map[string]Source{}}
	for _, src := range sources {
		if src == nil {
			continue
		}
		s.sources = append(s.sources, src)
		s.byName[src.Name()] = src
	}
	return s
}

// HasPasswordForm reports whether the login page shows the username and
// password form.
func (s *Set) HasPasswordForm() bool {
	for _, src := range s.all() {
		if _, ok := src.(PasswordSource); ok {
			return true
		}
	}
	return false
}

// Redirects are the sources the login page shows a button for.
func (s *Set) Redirects() []RedirectSource {
	var out []RedirectSource
	for _, src := range s.all() {
		if r, ok := src.(RedirectSource); ok {
			out = append(out, r)
		}
	}
	return out
}

// Redirect returns the redirect source named name.
func (s *Set) Redirect(name string) (RedirectSource, bool) {
	if s == nil || name == "" {
		return nil, false
	}
	r, ok := s.byName[name].(RedirectSource)
	return r, ok
}

// Names are the sources' names in order ("" for the users Secret).
func (s *Set) Names() []string {
	var out []string
	for _, src := range s.all() {
		out = append(out, src.Name())
	}
	return out
}

// Rechecker returns the source named name if it can re-check its people.
func (s *Set) Rechecker(name string) (Rechecker, bool) {
	if s == nil || name == "" {
		return nil, false
	}
	r, ok := s.byName[name].(Rechecker)
	return r, ok
}

// Has reports whether a provider named name is configured: its people's
// grants live on only while it is.
func (s *Set) Has(name string) bool {
	if s == nil {
		return false
	}
	_, ok := s.byName[name]
	return ok
}

// Authenticate asks each password source in order; the first that knows
// the username and password wins. An unreachable directory does not hide a
// later source's answer, but when nobody accepted the login and one was
// unreachable, the error says so.
func (s *Set) Authenticate(ctx context.Context, username, password string) (Person, error) {
	var unavailable error
	for _, src := range s.all() {
		ps, ok := src.(PasswordSource)
		if !ok {
			continue
		}
		p, err := ps.Authenticate(ctx, username, password)
		switch {
		case err == nil:
			return p, nil
		case errors.Is(err, ErrUnavailable) && unavailable == nil:
			unavailable = err
		}
	}
	if unavailable != nil {
		return Person{}, unavailable
	}
	return Person{}, ErrInvalidCredentials
}

func (s *Set) all() []Source {
	if s == nil {
		return nil
	}
	return s.sources
}
