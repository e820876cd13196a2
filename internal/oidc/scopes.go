// Package oidc holds what the operator and the token server share about
// OpenID Connect: the scopes every AuthorizationServer defines without a
// Scope object (OpenID Connect Core 1.0 §3.1.2.1, §5.4, §11).
package oidc

import "slices"

// The built-in scopes.
const (
	// ScopeOpenID makes an authorization request an OpenID Connect
	// request: the token response then carries an ID token (Core §3.1.2.1).
	ScopeOpenID = "openid"
	// ScopeProfile: preferred_username and name (Core §5.4).
	ScopeProfile = "profile"
	// ScopeEmail: email and email_verified (Core §5.4).
	ScopeEmail = "email"
	// ScopeGroups: groups, the person's group names. Not in Core, but the
	// name every relying party that maps groups (Kubernetes, oauth2-proxy)
	// asks for.
	ScopeGroups = "groups"
	// ScopeOfflineAccess asks for a refresh token in an OpenID Connect
	// request (Core §11).
	ScopeOfflineAccess = "offline_access"
)

// Scope is a built-in scope: its consent-page description and the claims
// it releases.
type Scope struct {
	Name        string
	Description string
	Claims      []string
}

// Scopes are the built-in scopes, in the order the consent page lists them.
var Scopes = []Scope{
	{ScopeOpenID, "Sign you in with your account (your user ID)", []string{"sub"}},
	{ScopeProfile, "See your username and name", []string{"preferred_username", "name"}},
	{ScopeEmail, "See your email address", []string{"email", "email_verified"}},
	{ScopeGroups, "See the groups you belong to", []string{"groups"}},
	{ScopeOfflineAccess, "Stay signed in and act for you while you are away", nil},
}

// IsBuiltin reports whether name is a built-in scope: an OAuthClient may
// list it in spec.scopes without any Scope object defining it.
func IsBuiltin(name string) bool {
	return slices.ContainsFunc(Scopes, func(s Scope) bool { return s.Name == name })
}

// Claims lists, without repeats, the claims that scopes release.
func Claims(scopes []string) []string {
	var claims []string
	for _, s := range Scopes {
		if !slices.Contains(scopes, s.Name) {
			continue
		}
		for _, c := range s.Claims {
			if !slices.Contains(claims, c) {
				claims = append(claims, c)
			}
		}
	}
	return claims
}
