package server

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/formparse"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Token type identifiers (RFC 8693 §3).
const (
	TokenTypeAccessToken = oauthv1.TokenTypeAccessToken
	TokenTypeJWT         = oauthv1.TokenTypeJWT
)

// maxActorChain bounds the act claim's nesting: a chain of delegations
// longer than this is more likely a loop than a design.
const maxActorChain = 8

// exchangedToken is a subject or actor token that verified and that the
// client may present: whom it names, and what it carries over.
type exchangedToken struct {
	Subject   string
	ClientID  string // the client it was issued to
	Scopes    []string
	AuthTime  time.Time
	GrantID   string
	ExpiresAt time.Time
	Act       *actor
	// Foreign: another issuer's token, which carries no scopes of ours.
	Foreign bool
}

// grantTokenExchange is OAuth 2.0 Token Exchange (RFC 8693): the client
// trades a subject token, and optionally an actor token, for an access
// token of this server about the same subject.
//
// What the client may present is spec.tokenExchange's to say, and nothing
// else is accepted: access tokens issued to the client itself, and those
// issued to others for the APIs it serves. The new token is decided as
// every grant's is, and can only shrink:
//   - scopes: those of the subject token that the client may request,
//     narrowed by scope;
//   - audience: audience and resource select among the audiences the
//     client may have (resolveTargets), invalid_target for any other;
//   - expiry: never after the subject or actor token's;
//   - act (§4.1): the actor token's subject, or the client's own when it
//     acts for someone else's token, with the subject token's actors
//     nested inside; nothing new only when the client exchanges its own
//     token, or impersonation is allowed and no actor token was sent.
//
// The new token inherits the subject token's grant_id, so revoking that
// refresh-token family (revocation, reuse, a replayed code) revokes the
// exchanged tokens as well; and there is no refresh token: the client
// exchanges again. Refusals are §2.2.2's: invalid_request for a token
// that is malformed, invalid or against policy, unauthorized_client for a
// kind of token the client may not present at all, invalid_target for an
// audience it may not have, invalid_scope for a scope.
func (s *Server) grantTokenExchange(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	te := req.Client.TokenExchange
	if te == nil {
		return nil, unauthorizedClient("the client has no spec.tokenExchange: it may not exchange tokens")
	}
	f := req.Form
	if e := checkExchangeParams(f); e != nil {
		return nil, e
	}
	audiences, e := parseAudiences(f["audience"])
	if e != nil {
		return nil, e
	}

	subject, e := s.exchangeable(ctx, req, "subject", te.SubjectTokens, f.Get("subject_token"), f.Get("subject_token_type"))
	if e != nil {
		return nil, e
	}
	var act *exchangedToken
	if f.Get("actor_token") != "" {
		if len(te.ActorTokens) == 0 {
			return nil, unauthorizedClient("the client may not present an actor_token: its spec.tokenExchange.actorTokens is empty, so it acts only as itself")
		}
		if act, e = s.exchangeable(ctx, req, "actor", te.ActorTokens, f.Get("actor_token"), f.Get("actor_token_type")); e != nil {
			return nil, e
		}
	}

	scopes, e := exchangeScopes(req, subject)
	if e != nil {
		return nil, e
	}
	targets, e := resolveTargets(req.Snap, req.Client, nil, append(slices.Clip(audiences), req.Resources...))
	if e != nil {
		return nil, e
	}
	if e := checkScopesFitTargets(req.Snap, req.Scopes, targets); e != nil {
		return nil, e
	}
	scopes = scopesForTargets(req.Snap, scopes, targets)

	g := tokenGrant{
		Client: req.Client, Subject: subject.Subject, Scopes: scopes, AuthTime: subject.AuthTime,
		GrantID: subject.GrantID, Resources: targets, NotAfter: subject.ExpiresAt,
		Act: exchangeActor(req.Client, te, subject, act),
	}
	if act != nil && act.ExpiresAt.Before(g.NotAfter) {
		g.NotAfter = act.ExpiresAt
	}
	if g.Act.depth() > maxActorChain {
		return nil, invalidRequest("the subject token's chain of actors is already " + strconv.Itoa(maxActorChain) + " deep; this server delegates no further")
	}
	g = s.withPerson(req.Snap, g)
	at, e := s.signAccessToken(req.Snap, g, newID(), req.Now)
	if e != nil {
		return nil, e
	}
	resp := newTokenResponse(at, "", g.Scopes, req.Now)
	resp.IssuedTokenType = TokenTypeAccessToken
	return resp, nil
}

// checkExchangeParams checks the request's shape (RFC 8693 §2.1).
func checkExchangeParams(f url.Values) *Error {
	switch {
	case f.Get("subject_token") == "":
		return invalidRequest("subject_token is required")
	case f.Get("subject_token_type") == "":
		return invalidRequest("subject_token_type is required")
	case f.Get("actor_token") != "" && f.Get("actor_token_type") == "":
		return invalidRequest("actor_token_type is required with actor_token (RFC 8693 §2.1)")
	case f.Get("actor_token") == "" && f.Get("actor_token_type") != "":
		return invalidRequest("actor_token_type was sent without actor_token")
	}
	if rt := f.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		return invalidRequest("requested_token_type " + formparse.SafeName(rt) + " cannot be issued; this server issues " + TokenTypeAccessToken)
	}
	return nil
}

// exchangeScopes decides the new token's scopes before targets narrow
// them: never more than the subject token carried, and only what the
// client may request itself, narrowed by scope. Another issuer's token
// carries none of ours: a workload gets the client's scopes, except those
// about a person.
func exchangeScopes(req *tokenRequest, subject *exchangedToken) ([]string, *Error) {
	available := usableScopes(req.Snap, req.Client, subject.Scopes)
	if subject.Foreign {
		available = slices.DeleteFunc(usableScopes(req.Snap, req.Client, req.Client.AllowedScopes), oidc.IsBuiltin)
	}
	if len(req.Scopes) == 0 {
		return available, nil
	}
	for _, sc := range req.Scopes {
		if !slices.Contains(available, sc) {
			return nil, invalidScope("scope " + formparse.SafeName(sc) + " is not among the subject token's scopes that this client may request; an exchange can only narrow the scope")
		}
	}
	return req.Scopes, nil
}

// exchangeActor decides the new token's act claim (RFC 8693 §4.1). The
// subject token's own actors stay, innermost: who acted before.
func exchangeActor(c *config.Client, te *config.TokenExchange, subject, act *exchangedToken) *actor {
	switch {
	case act != nil:
		return &actor{Subject: act.Subject, Act: subject.Act}
	case subject.ClientID == c.ID:
		// Its own token, narrowed: it acted for the subject already.
		return subject.Act
	case te.AllowImpersonation:
		return subject.Act
	default:
		return &actor{Subject: users.ClientSubject(c.ID), Act: subject.Act}
	}
}

// exchangeable verifies a subject or actor token (role) of type tokenType
// and checks that the client may present it (list).
func (s *Server) exchangeable(ctx context.Context, req *tokenRequest, role string, list []config.ExchangeableToken, token, tokenType string) (*exchangedToken, *Error) {
	switch tokenType {
	case TokenTypeAccessToken:
		return s.exchangeableAccessToken(ctx, req, role, list, token)
	case TokenTypeJWT:
		return s.exchangeableJWT(ctx, req, role, list, token)
	default:
		return nil, invalidRequest(role + "_token_type " + formparse.SafeName(tokenType) + " is not supported; this server accepts " +
			TokenTypeAccessToken + " and " + TokenTypeJWT)
	}
}

// exchangeableJWT accepts another issuer's JWT: a service-account token of
// the cluster, or a trusted issuer's token, verified offline by
// jwtverify against keys fetched in the background, exactly as a client
// assertion of that kind is (clientassertion.go), and of a subject the
// client's list names. Its subject becomes system:serviceaccount:... or
// federated:<issuer>:<sub>; it carries no scope, so the new token's scopes
// are the client's own.
func (s *Server) exchangeableJWT(ctx context.Context, req *tokenRequest, role string, list []config.ExchangeableToken, token string) (*exchangedToken, *Error) {
	var accounts, federated []config.ExchangeableToken
	for _, t := range list {
		switch t.Type {
		case oauthv1.ExchangeServiceAccount:
			accounts = append(accounts, t)
		case oauthv1.ExchangeTrustedIssuer:
			federated = append(federated, t)
		}
	}
	if len(accounts) == 0 && len(federated) == 0 {
		return nil, unauthorizedClient("the client may not present a JWT as " + role + "_token: spec.tokenExchange." + role + "Tokens lists no ServiceAccount or TrustedIssuer")
	}
	peek, err := jwtverify.Peek(token)
	if err != nil {
		return nil, invalidRequest("the " + role + "_token is not a JWT")
	}
	snap := req.Snap
	var keys jwtverify.KeySet
	var p jwtverify.Policy
	var allowed func(c *jwtverify.Claims) (string, *Error)
	singleUse := false
	switch {
	case len(accounts) > 0 && s.saIssuer != nil && s.saIssuer.Issuer() != "" && peek.Issuer == s.saIssuer.Issuer():
		keys = s.saIssuer
		p = jwtverify.Policy{Issuer: peek.Issuer, Audiences: []string{snap.Issuer}, MaxLifetime: snap.ServiceAccountTokenMaxLifetime}
		allowed = func(c *jwtverify.Claims) (string, *Error) {
			for _, t := range accounts {
				if slices.Contains(t.ServiceAccountSubjects, c.Subject) {
					return c.Subject, serviceAccountBound(role, c, t.ServiceAccountUIDs[c.Subject])
				}
			}
			return "", notListed(role)
		}
	default:
		var ti *config.TrustedIssuer
		var entries []config.ExchangeableToken
		for _, t := range federated {
			if c := snap.TrustedIssuers[t.Issuer]; c != nil && c.Issuer == peek.Issuer && c.Admits(req.Client.Namespace) {
				ti = c
				entries = append(entries, t)
			}
		}
		if ti == nil || ti.Keys == nil {
			return nil, invalidRequest("the " + role + "_token's issuer is not one whose tokens this client may present (the cluster's service accounts, or a trusted issuer in spec.tokenExchange." + role + "Tokens that admits its namespace)")
		}
		keys = ti.Keys
		p = jwtverify.Policy{Issuer: ti.Issuer, Audiences: ti.Audiences, MaxLifetime: ti.MaxLifetime, RequireJTI: ti.SingleUse}
		singleUse = ti.SingleUse
		allowed = func(c *jwtverify.Claims) (string, *Error) {
			for _, t := range entries {
				if slices.Contains(t.Subjects, c.Subject) {
					return users.FederatedSubject(ti.Name, c.Subject), nil
				}
			}
			return "", notListed(role)
		}
	}
	claims, err := jwtverify.Verify(token, keys, &p, req.Now)
	if err != nil {
		if jwtverify.ReasonOf(err) == jwtverify.ReasonKeysUnavailable {
			return nil, newError(ErrTemporarilyUnavailable, "the "+role+"_token's issuer keys cannot be had right now; try again later")
		}
		return nil, invalidRequest("the " + role + "_token was refused: " + string(jwtverify.ReasonOf(err)))
	}
	subject, e := allowed(claims)
	if e != nil {
		return nil, e
	}
	if singleUse {
		switch err := s.store.UseAssertion(ctx, storage.AssertionID(claims.Issuer, claims.ID), claims.ExpiresAt.Add(jwtverify.DefaultLeeway), req.Now); {
		case errors.Is(err, storage.ErrAssertionReplayed):
			return nil, invalidRequest("the " + role + "_token was used before, and its issuer's tokens are single-use")
		case err != nil:
			return nil, s.storageFailed(ctx, "recording a used token", err)
		}
	}
	return &exchangedToken{Subject: subject, ExpiresAt: claims.ExpiresAt, Foreign: true}, nil
}

func notListed(role string) *Error {
	return invalidRequest("the " + role + "_token's subject is not one this client may present; list it in spec.tokenExchange." + role + "Tokens")
}

// serviceAccountBound holds a service-account token to the UID of the
// ServiceAccount the operator found under its name (uid; empty when it
// found none), as client authentication does (checkBinding): a token of a
// ServiceAccount deleted and re-created under the same name is refused.
func serviceAccountBound(role string, c *jwtverify.Claims, uid string) *Error {
	k := c.Kubernetes
	switch {
	case uid == "":
		return invalidRequest("the " + role + "_token is of " + c.Subject + ", which the operator has not found (does the ServiceAccount exist?)")
	case k == nil || k.ServiceAccount.UID == "":
		return invalidRequest("the " + role + "_token carries no ServiceAccount UID (not a bound service-account token)")
	case k.ServiceAccount.UID != uid:
		return invalidRequest("the " + role + "_token is of an earlier ServiceAccount of that name (UID " + k.ServiceAccount.UID +
			", not " + uid + "): it was deleted and re-created")
	}
	return nil
}

// exchangeableAccessToken accepts an access token of this server: valid,
// unexpired, unrevoked, of a subject that still exists, and issued to the
// client or for an API it serves.
func (s *Server) exchangeableAccessToken(ctx context.Context, req *tokenRequest, role string, list []config.ExchangeableToken, token string) (*exchangedToken, *Error) {
	allowed := slices.IndexFunc(list, func(t config.ExchangeableToken) bool { return t.Type == oauthv1.ExchangeAccessToken }) >= 0
	if !allowed {
		return nil, unauthorizedClient("the client may not present an access token as " + role + "_token: spec.tokenExchange." + role + "Tokens lists no AccessToken")
	}
	claims, ok := s.verifiedAccessToken(req.Snap, token)
	switch {
	case !ok:
		return nil, invalidRequest("the " + role + "_token is not an access token of this server (signature, issuer or type)")
	case !claims.ExpiresAt.After(req.Now):
		return nil, invalidRequest("the " + role + "_token has expired")
	case claims.ClientID != req.Client.ID && !servesAudience(list, claims.Audience):
		return nil, invalidRequest("the " + role + "_token was issued to another client for an API this client does not serve; list that API in spec.tokenExchange." + role + "Tokens[].audiences")
	}
	revoked, err := s.store.IsAccessTokenRevoked(ctx, claims.ID, claims.GrantID, req.Now)
	if err != nil {
		return nil, s.storageFailed(ctx, "checking an access token's revocation", err)
	}
	if revoked {
		return nil, invalidRequest("the " + role + "_token has been revoked")
	}
	et := &exchangedToken{
		Subject: claims.Subject, ClientID: claims.ClientID, Scopes: strings.Fields(claims.Scope),
		GrantID: claims.GrantID, ExpiresAt: claims.ExpiresAt.Time, Act: claims.Act,
	}
	if claims.AuthTime != 0 {
		et.AuthTime = time.Unix(claims.AuthTime, 0)
		// A person's token: they must still exist, as at refresh.
		switch req.Snap.Subject(claims.Subject) {
		case config.SubjectRemoved:
			return nil, invalidRequest("the user the " + role + "_token was issued for no longer exists")
		case config.SubjectUndetermined:
			return nil, newError(ErrTemporarilyUnavailable, "the users directory cannot be read right now; try again later")
		}
	}
	return et, nil
}

// servesAudience reports whether aud names an API the client serves
// according to the access-token entries of list.
func servesAudience(list []config.ExchangeableToken, aud []string) bool {
	for _, t := range list {
		if t.Type != oauthv1.ExchangeAccessToken {
			continue
		}
		for _, a := range aud {
			if slices.Contains(t.Audiences, a) {
				return true
			}
		}
	}
	return false
}

// parseAudiences checks the audience parameters of a token exchange
// (RFC 8693 §2.1): logical names of targets, bounded like resources.
func parseAudiences(values []string) ([]string, *Error) {
	if len(values) > maxResources {
		return nil, invalidTarget("at most 16 audience values are accepted")
	}
	var out []string
	for _, v := range values {
		if len(v) > maxResourceLength {
			return nil, invalidTarget("audience " + formparse.SafeName(v) + " is longer than 256 characters")
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}
