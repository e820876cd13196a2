package server

import (
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// userClaims are the claims about a person that the built-in scopes
// release (OpenID Connect Core §5.1, §5.4), shared by the ID token and
// the userinfo response. Empty values are left out rather than sent
// empty (§5.3.2).
type userClaims struct {
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Name              string   `json:"name,omitempty"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     *bool    `json:"email_verified,omitempty"`
	Groups            []string `json:"groups,omitempty"`
}

// claimsFor reads the person behind sub (personFor: memory, or storage
// for an upstream's people; never an API call or an upstream, as this runs
// on the token and userinfo paths) and keeps what scopes release. A person
// no source lists any more releases nothing beyond sub.
func (s *Server) claimsFor(snap *config.Snapshot, sub string, scopes []string) userClaims {
	var c userClaims
	u, ok := s.personFor(snap, sub)
	if !ok {
		return c
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		c.PreferredUsername, c.Name = u.Username, u.Name
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		verified := u.EmailVerified
		c.Email, c.EmailVerified = u.Email, &verified
	}
	if slices.Contains(scopes, oidc.ScopeGroups) {
		c.Groups = slices.Clone(u.Groups)
	}
	return c
}

// accessTokenGroups are the groups an access token carries: the person's,
// when the groups scope was granted; none for a client's own token.
func (s *Server) accessTokenGroups(snap *config.Snapshot, g tokenGrant) []string {
	if g.AuthTime.IsZero() || !slices.Contains(g.Scopes, oidc.ScopeGroups) {
		return nil
	}
	p, _ := s.personFor(snap, g.Subject)
	return p.Groups
}

// passwordAMR is the amr of a login with the users Secret's passwords
// (RFC 8176 §2, "pwd"), the only way a person logs in today.
var passwordAMR = []string{"pwd"}
