package identity

import (
	"context"
	"fmt"
)

// Broken is a provider whose configuration cannot be used (a missing
// Secret): it is listed, so its people's grants go on, but logging in
// through it fails with why.
type Broken struct {
	ProviderName, Display string
	Err                   error
}

// Name implements Source.
func (b *Broken) Name() string { return b.ProviderName }

// DisplayName implements Source.
func (b *Broken) DisplayName() string { return b.Display }

// fail says why the provider is unusable, as ErrUnavailable.
func (b *Broken) fail() error { return fmt.Errorf("%w: %s: %v", ErrUnavailable, b.ProviderName, b.Err) }

// BrokenPassword is a Broken LDAP directory.
type BrokenPassword struct{ Broken }

// Authenticate implements PasswordSource.
func (b *BrokenPassword) Authenticate(context.Context, string, string) (Person, error) {
	return Person{}, b.fail()
}

// BrokenRedirect is a Broken OpenID Provider.
type BrokenRedirect struct{ Broken }

// Start implements RedirectSource.
func (b *BrokenRedirect) Start(context.Context, string) (string, Pending, error) {
	return "", Pending{}, b.fail()
}

// Finish implements RedirectSource.
func (b *BrokenRedirect) Finish(context.Context, string, Pending, map[string][]string) (Person, error) {
	return Person{}, b.fail()
}
