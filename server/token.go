package server

import (
	"context"
	"net/http"
	"net/url"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/formparse"
)

// tokenRequest is a token request that passed the dispatcher's shared
// phases: form parsing, client authentication, grant permission and scope
// syntax.
type tokenRequest struct {
	Snap   *config.Snapshot
	Client *config.Client
	Form   url.Values
	// Scopes is the parsed scope parameter, nil when absent.
	Scopes []string
	// Resources are the parsed resource parameters (RFC 8707), nil when
	// absent; each grant decides with resolveTargets which it allows.
	Resources []string
	Now       time.Time
}

// grantHandler carries out one grant type (one file each).
type grantHandler func(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error)

// handleToken is the token endpoint (RFC 6749 §3.2). It owns the phases
// every grant shares, then hands over to the grant.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	now := s.now()
	form, client, e := s.authenticatedForm(w, r, snap, now)
	if form == nil {
		writeError(w, e, snap.Issuer)
		return failed(e)
	}
	grant := form.Get("grant_type")
	handler, known := s.grants[grant]
	res := result{grant: "unknown"}
	if known {
		res.grant = grant
	}
	ri := infoFrom(r.Context())
	if ri != nil {
		ri.audit.grant = res.grant
	}
	fail := func(e *Error) result {
		writeError(w, e, snap.Issuer)
		res.outcome, res.err = e.Code, e
		return res
	}
	if e != nil {
		return fail(e)
	}
	switch {
	case grant == "":
		return fail(invalidRequest("grant_type is required"))
	case !known:
		return fail(newError(ErrUnsupportedGrantType, "grant_type "+formparse.SafeName(grant)+" is not supported"))
	case !client.GrantTypes[oauthv1.GrantType(grant)]:
		return fail(unauthorizedClient("the client is not allowed the " + grant + " grant"))
	}
	scopes, e := parseScope(form.Get("scope"))
	if e != nil {
		return fail(e)
	}
	resources, e := parseResources(form["resource"])
	if e != nil {
		return fail(e)
	}
	resp, e := handler(r.Context(), &tokenRequest{Snap: snap, Client: client, Form: form, Scopes: scopes, Resources: resources, Now: now})
	if e != nil {
		return fail(e)
	}
	writeTokenResponse(w, resp)
	ri.auditIssued(resp)
	res.outcome = outcomeSuccess
	return res
}
