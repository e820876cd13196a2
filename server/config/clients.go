package config

import (
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/claimmap"
)

// compileClient turns an OAuthClient of the server into the Client the
// request paths read, or nil when it is not to be served: being deleted,
// without a client_id, or not Ready. The Scopes of server decide which of
// its scopes and audiences are kept. grants interns the grant-type sets,
// which few distinct values repeat across thousands of clients.
func compileClient(oc *oauthv1.OAuthClient, server *Snapshot, grants map[string]map[oauthv1.GrantType]bool) *Client {
	if oc.DeletionTimestamp != nil || oc.Status.ClientID == "" {
		return nil
	}
	// The operator sets Ready only once the namespace is admitted,
	// every scope exists and the credentials are in place.
	if !meta.IsStatusConditionTrue(oc.Status.Conditions, oauthv1.ConditionReady) {
		return nil
	}
	// Every default comes from the API package's accessors, which the
	// operator reads too.
	c := &Client{
		ID:          oc.Status.ClientID,
		DisplayName: oc.ShownName(),
		Public:      oc.IsPublic(),
		AuthMethod:  oc.AuthMethod(),
		AuthMethods: internAuthMethods(oc.AuthMethods()),
		SkipConsent: oc.Spec.SkipConsent,
		IDTokenAlg:  oc.Spec.IDTokenSignedResponseAlg,
		RequirePKCE: oc.PKCERequired(),
		Namespace:   oc.Namespace,
		UID:         oc.UID,
		Assertion:   compileAssertion(oc, server),
		RequirePAR:  oc.Spec.RequirePushedAuthorizationRequests,
		// Each lifetime it leaves unset is the server's at the time of
		// the request (Snapshot.Lifetimes), which a server-wide change
		// moves without recompiling the client.
		TokenLifetimes: oc.Spec.TokenLifetimes,
		CORSOrigins:    toStrings(oc.Spec.AllowedCORSOrigins),
		LogoURI:        string(oc.Spec.LogoURI),
		PolicyURI:      string(oc.Spec.PolicyURI),
		TOSURI:         string(oc.Spec.TOSURI),
	}
	c.ClaimMapping, c.ClaimMappingErr = claimmap.Compile(oc.Spec.ClaimMapping)
	if b := oc.Spec.BackchannelLogout; b != nil {
		c.Backchannel = &Backchannel{URI: b.URI, SessionRequired: b.SessionRequired}
	}
	c.RedirectURIs = toStrings(oc.Spec.RedirectURIs)
	c.PostLogoutRedirectURIs = toStrings(oc.Spec.PostLogoutRedirectURIs)
	c.GrantTypes = grantSet(oc.Grants(), grants)
	for _, sc := range oc.Spec.Scopes {
		// The operator keeps such a client from being Ready; this holds
		// in the moment between a Scope closing and that verdict.
		if scope := server.Scopes[string(sc)]; scope != nil && !scope.admits(oc.Namespace) {
			continue
		}
		c.AllowedScopes = append(c.AllowedScopes, string(sc))
	}
	for _, a := range oc.Spec.Audience {
		// Like scopes: only an API whose Scope admits the client (the
		// operator's AudienceNotAllowed, held here too).
		if !server.audienceAdmits(string(a), oc.Namespace) {
			continue
		}
		c.Audience = append(c.Audience, string(a))
	}
	if te := oc.Spec.TokenExchange; te != nil && c.GrantTypes[oauthv1.GrantTokenExchange] {
		c.TokenExchange = &TokenExchange{
			SubjectTokens:      exchangeable(te.SubjectTokens, server, oc.Namespace, oc.Status.ExchangeServiceAccounts),
			ActorTokens:        exchangeable(te.ActorTokens, server, oc.Namespace, oc.Status.ExchangeServiceAccounts),
			AllowImpersonation: te.AllowImpersonation,
		}
	}
	for _, h := range oc.Status.SecretHashes {
		sh := SecretHash{Hash: h.Hash}
		if h.NotAfter != nil {
			sh.NotAfter = h.NotAfter.Time
		}
		c.SecretHashes = append(c.SecretHashes, sh)
	}
	return c
}

// authMethodSets are the few distinct lists of accepted methods, shared
// by every client that has one (Clients are never modified).
var authMethodSets sync.Map

func internAuthMethods(ms []oauthv1.TokenEndpointAuthMethod) []oauthv1.TokenEndpointAuthMethod {
	key := strings.Join(toStrings(ms), " ")
	v, _ := authMethodSets.LoadOrStore(key, slices.Clip(ms))
	return v.([]oauthv1.TokenEndpointAuthMethod)
}

// exchangeable compiles a list of exchangeable tokens, keeping only the
// audiences whose Scope admits the client, like spec.audience, and binding
// each ServiceAccount to the UID the operator found (uids).
func exchangeable(in []oauthv1.ExchangeableToken, server *Snapshot, namespace string, uids []oauthv1.ServiceAccountUID) []ExchangeableToken {
	if len(in) == 0 {
		return nil
	}
	out := make([]ExchangeableToken, 0, len(in))
	for _, t := range in {
		et := ExchangeableToken{Type: t.Type, Issuer: t.Issuer, Subjects: slices.Clone(t.Subjects)}
		for _, sa := range t.ServiceAccounts {
			// Only the client's own namespace: one team cannot take on
			// another's workloads' identity.
			sub := ServiceAccountSubject(namespace, sa)
			et.ServiceAccountSubjects = append(et.ServiceAccountSubjects, sub)
			if i := slices.IndexFunc(uids, func(u oauthv1.ServiceAccountUID) bool { return u.Name == sa }); i >= 0 {
				if et.ServiceAccountUIDs == nil {
					et.ServiceAccountUIDs = map[string]string{}
				}
				et.ServiceAccountUIDs[sub] = uids[i].UID
			}
		}
		for _, a := range t.Audiences {
			if server.audienceAdmits(string(a), namespace) {
				et.Audiences = append(et.Audiences, string(a))
			}
		}
		out = append(out, et)
	}
	return out
}

func toStrings[S ~string](in []S) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

// grantSet is the client's grant types as a set, shared with every client
// that has the same set (Clients are never modified).
func grantSet(grants []oauthv1.GrantType, interned map[string]map[oauthv1.GrantType]bool) map[oauthv1.GrantType]bool {
	keep := toStrings(grants)
	slices.Sort(keep)
	key := strings.Join(slices.Compact(keep), " ")
	if set, ok := interned[key]; ok {
		return set
	}
	set := map[oauthv1.GrantType]bool{}
	for _, g := range keep {
		set[oauthv1.GrantType(g)] = true
	}
	if interned != nil {
		interned[key] = set
	}
	return set
}
