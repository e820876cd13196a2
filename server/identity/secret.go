package identity

import (
	"context"

	"github.com/gatehouse-dev/gatehouse/internal/users"
)

// SecretSource is the users Secret (internal/users) as a source. Its people
// keep the subjects the Secret gives them.
type SecretSource struct{ Dir *users.Directory }

// Name implements Source: the users Secret is the unnamed source.
func (SecretSource) Name() string { return "" }

// DisplayName implements Source.
func (SecretSource) DisplayName() string { return "" }

// Authenticate implements PasswordSource. It runs bcrypt: login only.
func (s SecretSource) Authenticate(_ context.Context, username, password string) (Person, error) {
	u, err := s.Dir.Authenticate(username, password)
	if err != nil {
		return Person{}, ErrInvalidCredentials
	}
	return PersonFromUser(u), nil
}

// PersonFromUser is the Person of a users-Secret entry.
func PersonFromUser(u users.User) Person {
	return Person{
		Subject: u.Subject, Username: u.Username, Name: u.Name,
		Email: u.Email, EmailVerified: u.EmailVerified, Groups: u.Groups,
	}
}
