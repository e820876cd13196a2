package server

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/claimmap"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
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
// on the userinfo path) and keeps what scopes release.
// The client's and server's claim mapping apply: mapped holds the claims
// it adds, and an error means it failed.
func (s *Server) claimsFor(snap *config.Snapshot, client *config.Client, sub string, scopes, extra []string) (userClaims, map[string]any, error) {
	if !releasesPersonClaims(scopes) && len(extra) == 0 {
		return userClaims{}, nil, nil
	}
	p, ok := s.personFor(snap, sub)
	if !ok {
		return userClaims{}, nil, nil
	}
	mappedPerson, mapped, err := mapPerson(snap, client, &p)
	if err != nil {
		return userClaims{}, nil, err
	}
	return releasedClaims(mappedPerson, scopes, extra...), mapped, nil
}

// mapPerson applies the server's and the client's claim mappings to p:
// the person with the mapped groups, and the added claims. p itself is
// never changed.
func mapPerson(snap *config.Snapshot, client *config.Client, p *identity.Person) (*identity.Person, map[string]any, error) {
	var clientMapping *claimmap.Mapping
	var clientErr error
	u := claimmap.Client{}
	if client != nil {
		clientMapping, clientErr, u = client.ClaimMapping, client.ClaimMappingErr, claimmap.Client{ID: client.ID, Namespace: client.Namespace}
	}
	if err := cmp.Or(snap.ClaimMappingErr, clientErr); err != nil {
		return nil, nil, err
	}
	if snap.ClaimMapping == nil && clientMapping == nil {
		return p, nil, nil
	}
	r, err := claimmap.Apply(snap.ClaimMapping, clientMapping, claimmap.User{
		Subject: p.Subject, Username: p.Username, Name: p.Name, Email: p.Email,
		EmailVerified: p.EmailVerified, Groups: p.Groups,
	}, u)
	if err != nil {
		return nil, nil, err
	}
	if r.GroupsMapped {
		mapped := *p
		mapped.Groups = r.Groups
		p = &mapped
	}
	return p, r.Claims, nil
}

// mapClaims applies the claim mappings to the grant's person, once for
// the whole token response.
func mapClaims(snap *config.Snapshot, g tokenGrant) tokenGrant {
	if g.Person == nil {
		return g
	}
	if p, mapped, err := mapPerson(snap, g.Client, g.Person); err != nil {
		g.mappingErr = err
	} else {
		g.Person, g.MappedClaims = p, mapped
	}
	return g
}

// appendMappedClaims adds claims to the JSON object obj (which has at
// least one member), in name order. The names were checked against the
// server's own (claimmap.Reserved), so none repeats one of obj's.
func appendMappedClaims(obj []byte, claims map[string]any) ([]byte, error) {
	if len(claims) == 0 {
		return obj, nil
	}
	b := obj[:len(obj)-1]
	for _, name := range slices.Sorted(maps.Keys(claims)) {
		k, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(claims[name])
		if err != nil {
			return nil, err
		}
		b = append(append(append(append(b, ','), k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// releasedClaims keeps of p what scopes release, and the claims named in
// extra (asked for one by one with the claims parameter). A person no
// source lists any more (nil) releases nothing beyond sub.
func releasedClaims(p *identity.Person, scopes []string, extra ...string) userClaims {
	var c userClaims
	if p == nil {
		return c
	}
	profile, email := slices.Contains(scopes, oidc.ScopeProfile), slices.Contains(scopes, oidc.ScopeEmail)
	if profile || slices.Contains(extra, "preferred_username") {
		c.PreferredUsername = p.Username
	}
	if profile || slices.Contains(extra, "name") {
		c.Name = p.Name
	}
	if p.Email != "" && (email || slices.Contains(extra, "email")) {
		c.Email = p.Email
	}
	if p.Email != "" && (email || slices.Contains(extra, "email_verified")) {
		verified := p.EmailVerified
		c.EmailVerified = &verified
	}
	if slices.Contains(scopes, oidc.ScopeGroups) || slices.Contains(extra, "groups") {
		c.Groups = slices.Clone(p.Groups)
	}
	return c
}

// releasesPersonClaims reports whether scopes release any claim about the
// person beyond sub.
func releasesPersonClaims(scopes []string) bool {
	return slices.Contains(scopes, oidc.ScopeProfile) || slices.Contains(scopes, oidc.ScopeEmail) ||
		slices.Contains(scopes, oidc.ScopeGroups)
}

// withPerson looks the person of a grant up once for the whole token
// response (access token and ID token alike): for an upstream's people
// that is a storage read, not to be paid twice.
func (s *Server) withPerson(snap *config.Snapshot, g tokenGrant) tokenGrant {
	if g.AuthTime.IsZero() || !releasesPersonClaims(g.Scopes) && len(g.IDTokenClaims) == 0 {
		return g
	}
	if p, ok := s.personFor(snap, g.Subject); ok {
		g.Person = &p
	}
	return mapClaims(snap, g)
}

// withKnownPerson is withPerson with the person already read.
func withKnownPerson(snap *config.Snapshot, g tokenGrant, p *identity.Person) tokenGrant {
	if !g.AuthTime.IsZero() && releasesPersonClaims(g.Scopes) {
		g.Person = p
	}
	return mapClaims(snap, g)
}

// accessTokenGroups are the groups an access token carries: the person's,
// when the groups scope was granted; none for a client's own token.
func accessTokenGroups(g tokenGrant) []string {
	if g.Person == nil || !slices.Contains(g.Scopes, oidc.ScopeGroups) {
		return nil
	}
	return g.Person.Groups
}

// passwordAMR is the amr of a login with the users Secret's passwords
// (RFC 8176 §2, "pwd"), the only way a person logs in today.
var passwordAMR = []string{"pwd"}
