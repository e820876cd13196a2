package identity_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/server/identity"
)

// TestUpstreamSubjectAsDocumented pins the example of
// docs/tutorials/identity-providers.md, "Subjects": an operator computes
// a person's sub with printf, openssl and basenc, and gets what the server
// gives them. The OpenID Connect identity is the issuer, a NUL byte and
// the upstream sub (OIDCSource.person).
func TestUpstreamSubjectAsDocumented(t *testing.T) {
	for _, tc := range []struct{ provider, id, want string }{
		{"corp", "https://idp.example.com\x00248289761001", "idp:corp:tNvESUjBEiBhdzdEAZc3eUzU-UvKk6Iu-S0GttF4TwU"},
		{"corp", "uid=alice", "idp:corp:NTsWRQ6l0Hk_REgsnzK4juJxprtQ3sej192BtRsxeEM"},
	} {
		if got := identity.UpstreamSubject(tc.provider, tc.id); got != tc.want {
			t.Errorf("UpstreamSubject(%q, %q) = %s, want %s", tc.provider, tc.id, got, tc.want)
		}
	}
}
