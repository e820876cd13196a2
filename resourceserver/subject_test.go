package resourceserver

import (
	"context"
	"errors"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// A client's own token and a user's token are told apart, even when the
// user is named exactly like the client (RFC 9700 §4.15).
func TestUserAndClientTokensDisjoint(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(nil)
	validate := func(edit func(h map[string]any, c jwt.MapClaims)) (*Claims, error) {
		return v.Validate(context.Background(), f.token(edit))
	}
	client, err := validate(func(_ map[string]any, c jwt.MapClaims) {
		c["sub"], c["client_id"] = "client:apps.worker", "apps.worker"
		delete(c, "auth_time")
	})
	if err != nil {
		t.Fatal(err)
	}
	if sub, ok := client.UserSubject(); !client.IsClient() || ok || sub != "" {
		t.Errorf("client token: IsClient %v, UserSubject %q %v", client.IsClient(), sub, ok)
	}
	user, err := validate(func(_ map[string]any, c jwt.MapClaims) { c["sub"], c["client_id"] = "apps.worker", "apps.worker" })
	if err != nil {
		t.Fatal(err)
	}
	if sub, ok := user.UserSubject(); user.IsClient() || !ok || sub != "apps.worker" {
		t.Errorf("user token: IsClient %v, UserSubject %q %v", user.IsClient(), sub, ok)
	}

	// A sub in the clients' namespace must name the token's own client.
	for _, sub := range []string{"client:apps.other", "Client:apps.worker", "CLIENT:apps.worker", "client:"} {
		_, err := validate(func(_ map[string]any, c jwt.MapClaims) { c["sub"], c["client_id"] = sub, "apps.worker" })
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("sub %q with client_id apps.worker: %v, want ErrMalformed", sub, err)
		}
	}
}
