package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/formparse"
)

// Limits on a scope parameter. A client may be allowed at most 64 scopes
// (the OAuthClient CRD's MaxItems) of at most 128 characters each (the
// ScopeName CRD's MaxLength), so no request the server could grant comes
// near them; they bound what an unauthenticated caller can make /authorize
// and /token parse, since any public client_id reaches the parser.
const (
	maxScopes      = 64
	maxScopeLength = 128
	// maxScopeParam is maxScopes tokens of maxScopeLength and the spaces
	// between them: checked first, so oversized input costs nothing.
	maxScopeParam = maxScopes*(maxScopeLength+1) - 1
)

// parseScope splits a scope parameter (RFC 6749 §3.3): space-delimited
// scope-tokens of %x21 / %x23-5B / %x5D-7E. Duplicates collapse, keeping
// the first occurrence's position. Its cost is linear in len(s).
func parseScope(s string) ([]string, *Error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > maxScopeParam {
		return nil, invalidScope(fmt.Sprintf("scope is %d bytes long; at most %d scopes of at most %d characters each (%d bytes) are accepted", len(s), maxScopes, maxScopeLength, maxScopeParam))
	}
	if n := strings.Count(s, " ") + 1; n > maxScopes {
		return nil, invalidScope(fmt.Sprintf("scope lists %d entries; at most %d are accepted", n, maxScopes))
	}
	out := make([]string, 0, strings.Count(s, " ")+1)
	seen := make(map[string]struct{}, cap(out))
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			return nil, invalidScope("scope has an empty entry: separate scopes with single spaces")
		}
		if len(tok) > maxScopeLength {
			return nil, invalidScope(fmt.Sprintf("scope %s is longer than %d characters", formparse.SafeName(tok), maxScopeLength))
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
				return nil, invalidScope("scope " + formparse.SafeName(tok) + " contains a character RFC 6749 §3.3 does not allow")
			}
		}
		if _, dup := seen[tok]; !dup {
			seen[tok] = struct{}{}
			out = append(out, tok)
		}
	}
	return out, nil
}

// grantableScopes decides the scopes of a new grant: the requested ones,
// each of which the client must be allowed and the server must define, or,
// when none are requested, every scope the client is allowed that the
// server defines (RFC 6749 §3.3 lets the server pick a default) except the
// built-in OpenID Connect ones: a request becomes an OpenID Connect request
// only by asking for openid (Core §3.1.2.1), so one without a scope keeps
// its plain OAuth meaning.
func grantableScopes(snap *config.Snapshot, c *config.Client, requested []string) ([]string, *Error) {
	if len(requested) == 0 {
		return slices.DeleteFunc(usableScopes(snap, c, c.AllowedScopes), oidc.IsBuiltin), nil
	}
	for _, sc := range requested {
		if !c.AllowsScope(sc) {
			return nil, invalidScope("the client is not allowed scope " + formparse.SafeName(sc))
		}
		if _, ok := snap.Scopes[sc]; !ok {
			return nil, invalidScope("scope " + formparse.SafeName(sc) + " is not defined by this server")
		}
	}
	return requested, nil
}

// usableScopes keeps the scopes the client is still allowed and the server
// still defines: a grant made earlier shrinks when policy tightens.
func usableScopes(snap *config.Snapshot, c *config.Client, scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		if _, ok := snap.Scopes[sc]; ok && c.AllowsScope(sc) {
			out = append(out, sc)
		}
	}
	return out
}

// narrowScopes checks a refresh request's scope against the original grant
// (RFC 6749 §6): it may only narrow it.
func narrowScopes(original, requested []string) ([]string, *Error) {
	if len(requested) == 0 {
		return original, nil
	}
	for _, sc := range requested {
		if !slices.Contains(original, sc) {
			return nil, invalidScope("scope " + formparse.SafeName(sc) + " was not part of the original grant")
		}
	}
	return requested, nil
}

// grantAudience is a token's aud: its resource indicators' targets when
// it has any (resolveTargets allowed them), else audience.
func grantAudience(snap *config.Snapshot, g tokenGrant) []string {
	if len(g.Resources) > 0 {
		return g.Resources
	}
	return audience(snap, g.Client, g.Scopes)
}

// audience is an access token's aud (RFC 9068 §3): the client's audience
// and the granted scopes' audiences. With none of those the token is for
// the client itself, so aud is the client_id, which keeps aud non-empty as
// RFC 9068 requires and matches no resource server by accident.
func audience(snap *config.Snapshot, c *config.Client, scopes []string) []string {
	aud := slices.Clone(c.Audience)
	for _, sc := range scopes {
		if s, ok := snap.Scopes[sc]; ok && s.Audience != "" && !slices.Contains(aud, s.Audience) {
			aud = append(aud, s.Audience)
		}
	}
	if len(aud) == 0 {
		aud = []string{c.ID}
	}
	return aud
}
