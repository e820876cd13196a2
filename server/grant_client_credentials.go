package server

import "context"

// grantClientCredentials is RFC 6749 §4.4: a confidential client gets a
// token for itself; sub is its client_id (RFC 9068 §2.2). No refresh token
// (§4.4.3): the client can always ask again.
func (s *Server) grantClientCredentials(_ context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	scopes, e := grantableScopes(req.Snap, req.Client, req.Scopes)
	if e != nil {
		return nil, e
	}
	at, e := signAccessToken(req.Snap, tokenGrant{Client: req.Client, Subject: req.Client.ID, Scopes: scopes}, newID(), req.Now)
	if e != nil {
		return nil, e
	}
	return newTokenResponse(at, "", scopes, req.Now), nil
}
