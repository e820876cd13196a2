package server

import (
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/formparse"
)

// ErrInvalidTarget is RFC 8707 §2's error for a resource (and RFC 8693
// §2.2.2's for an audience) the server will not issue a token for.
const ErrInvalidTarget = "invalid_target"

func invalidTarget(desc string) *Error { return newError(ErrInvalidTarget, desc) }

// Limits on the resource parameter: an OAuthClient may name at most 16
// audiences (the CRD's MaxItems) of at most 256 characters (the Audience
// type's MaxLength), so no request the server could grant exceeds them.
const (
	maxResources      = 16
	maxResourceLength = 256
)

// parseResources checks resource indicators (RFC 8707 §2): each an
// absolute URI without a fragment. Duplicates collapse. The values only
// name targets; which of them the client may have is resolveTargets'.
func parseResources(values []string) ([]string, *Error) {
	if len(values) == 0 {
		return nil, nil
	}
	if len(values) > maxResources {
		return nil, invalidTarget("at most 16 resource values are accepted")
	}
	out := make([]string, 0, len(values))
	for _, v := range values {
		if len(v) > maxResourceLength {
			return nil, invalidTarget("resource " + formparse.SafeName(v) + " is longer than 256 characters")
		}
		u, err := url.Parse(v)
		switch {
		case err != nil || !u.IsAbs():
			return nil, invalidTarget("resource " + formparse.SafeName(v) + " is not an absolute URI (RFC 8707 §2)")
		case strings.Contains(v, "#"):
			return nil, invalidTarget("resource " + formparse.SafeName(v) + " has a fragment, which RFC 8707 §2 forbids")
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// reachableAudiences are the audiences the client may have a token for
// today, the one rule every grant shares: its own spec.audience (kept
// only where a Scope for that API admits the client) and the audiences of
// the scopes it may request (kept only where the Scope admits it:
// config.compileClient applies both). A resource indicator or
// a token-exchange audience can only select among these.
func reachableAudiences(snap *config.Snapshot, c *config.Client) []string {
	aud := slices.Clone(c.Audience)
	for _, sc := range c.AllowedScopes {
		if s, ok := snap.Scopes[sc]; ok && s.Audience != "" && !slices.Contains(aud, s.Audience) {
			aud = append(aud, s.Audience)
		}
	}
	return aud
}

// resolveTargets decides the audiences a token is restricted to.
//
//   - granted are the targets of the grant the token comes from (a code's
//     or a refresh-token family's resources; nil for a grant without, or
//     a new grant). A request may narrow them, never widen them
//     (RFC 8707 §2.2).
//   - requested are the request's resource (or audience) values; without
//     any, the token keeps the grant's targets.
//
// Every target must still be one the client can reach now
// (reachableAudiences), so a grant made before policy tightened does not
// outlive the policy. An empty result means no restriction: the token
// gets the audiences of its scopes and client, as without resource
// indicators.
func resolveTargets(snap *config.Snapshot, c *config.Client, granted, requested []string) ([]string, *Error) {
	reach := reachableAudiences(snap, c)
	targets := granted
	if len(requested) > 0 {
		for _, r := range requested {
			switch {
			case len(granted) > 0 && !slices.Contains(granted, r):
				return nil, invalidTarget("resource " + formparse.SafeName(r) + " was not part of the original grant; a token can only be narrowed to the resources granted")
			case !slices.Contains(reach, r):
				return nil, invalidTarget("the client may not have a token for " + formparse.SafeName(r) + ": no Scope it may request, and none of its spec.audience, is for that API")
			}
		}
		targets = requested
	}
	for _, r := range targets {
		if !slices.Contains(reach, r) {
			return nil, invalidTarget("the client may no longer have a token for " + formparse.SafeName(r) + ", which this grant was for")
		}
	}
	return targets, nil
}

// scopesForTargets keeps the scopes that belong with a token restricted
// to targets: those of one of the targets' APIs and those of no API in
// particular (openid, a scope without an audience). A token for one API
// does not carry another API's permissions (RFC 8707 §1: audience-
// restricted tokens). Without targets every scope is kept.
func scopesForTargets(snap *config.Snapshot, scopes, targets []string) []string {
	if len(targets) == 0 {
		return scopes
	}
	out := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		if scopeFitsTargets(snap, sc, targets) {
			out = append(out, sc)
		}
	}
	return out
}

func scopeFitsTargets(snap *config.Snapshot, scope string, targets []string) bool {
	s, ok := snap.Scopes[scope]
	return !ok || s.Audience == "" || slices.Contains(targets, s.Audience)
}

// checkScopesFitTargets refuses explicitly requested scopes that belong to
// an API outside the requested targets: asking for both is a mistake the
// client should learn of, not a scope silently dropped.
func checkScopesFitTargets(snap *config.Snapshot, requested, targets []string) *Error {
	if len(targets) == 0 {
		return nil
	}
	for _, sc := range requested {
		if !scopeFitsTargets(snap, sc, targets) {
			return invalidScope("scope " + formparse.SafeName(sc) + " is for " + formparse.SafeName(snap.Scopes[sc].Audience) + ", which is not among the requested resources")
		}
	}
	return nil
}
