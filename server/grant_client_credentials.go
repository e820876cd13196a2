package server

import (
	"context"

	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/users"
)

// grantClientCredentials is RFC 6749 §4.4: a confidential client gets a
// token for itself. Its sub names the client (RFC 9068 §2.2) as
// "client:<client_id>", a namespace no user subject may enter, so a user
// named like a client_id is never mistaken for it (RFC 9700 §4.15). No
// refresh token (§4.4.3): the client can always ask again.
func (s *Server) grantClientCredentials(_ context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	scopes, e := grantableScopes(req.Snap, req.Client, req.Scopes)
	if e != nil {
		return nil, e
	}
	targets, e := resolveTargets(req.Snap, req.Client, nil, req.Resources)
	if e != nil {
		return nil, e
	}
	if e := checkScopesFitTargets(req.Snap, req.Scopes, targets); e != nil {
		return nil, e
	}
	scopes = scopesForTargets(req.Snap, scopes, targets)
	for _, sc := range scopes {
		// The built-in scopes release a person's claims; a client's own
		// token has no person behind it.
		if oidc.IsBuiltin(sc) {
			return nil, invalidScope("scope " + sc + " is about a person and cannot be granted to a client for itself (client_credentials)")
		}
	}
	at, e := s.signAccessToken(req.Snap, tokenGrant{Client: req.Client, Subject: users.ClientSubject(req.Client.ID), Scopes: scopes, Resources: targets}, newID(), req.Now)
	if e != nil {
		return nil, e
	}
	return newTokenResponse(at, "", scopes, req.Now), nil
}
