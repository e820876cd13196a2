package server

import (
	"cmp"
	"context"
	"errors"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// ServiceAccountIssuer is the cluster's service-account issuer: its keys
// and the issuer its discovery document names (jwtverify.NewKubernetes).
type ServiceAccountIssuer interface {
	jwtverify.KeySet
	// Issuer is the iss of the cluster's service-account tokens; empty
	// until discovery has answered.
	Issuer() string
}

// reusedTokenCacheSize bounds the cache of verified reusable tokens
// (service-account tokens, UntilExpiry trusted issuers' tokens): about a
// kilobyte each.
const reusedTokenCacheSize = 4096

// Reasons of refused client assertions in the security log, besides
// "assertion_<rule>" for each jwtverify.Reason.
const (
	reasonAssertionReplay    = "assertion_replay"
	reasonUnusableCredential = "client_credential_unusable"
	reasonNoSAIssuer         = "service_account_issuer_unavailable"
	reasonSAUID              = "service_account_uid"
	reasonUnknownIssuer      = "unknown_trusted_issuer"
	reasonIssuerNotAllowed   = "trusted_issuer_not_allowed"
	reasonClaimMismatch      = "claim_mismatch"
)

// checkAssertion verifies a JWT client assertion for client c, which
// authenticates with one (c.Assertion says how): the reason and a detail
// for the security log when it is refused, and the error to answer with:
// invalid_client for every refusal, server_error when storage fails.
//
// The rules, each pinned by a test in clientassertion_test.go:
//   - private_key_jwt (RFC 7523 §3, OpenID Connect Core §9): signed by one
//     of the client's keys; iss and sub are the client_id; aud is the
//     issuer or the token endpoint; exp at most
//     spec.clientAssertions.maxExpiresIn (5 minutes) away; a jti,
//     accepted once across replicas.
//   - a ServiceAccount: signed by the cluster's service-account issuer;
//     iss is that issuer; aud is this server's issuer; sub is exactly
//     system:serviceaccount:<client namespace>:<name>; the token's
//     ServiceAccount UID is the one the operator resolved; exp - iat at
//     most spec.workloadIdentity.serviceAccountTokens.maxTokenLifetime. A
//     pod reuses its projected token until the kubelet replaces it, so it
//     is not single-use: its audience, short life and UID bind it.
//   - federated: the trusted issuer exists and admits the client's
//     namespace; signed by its keys; iss, aud, exact sub and claims; exp -
//     iat at most its maxTokenLifetime; a jti accepted once for SingleUse.
func (s *Server) checkAssertion(ctx context.Context, snap *config.Snapshot, c *config.Client, assertion string, now time.Time) (reason, detail string, e *Error) {
	refused := invalidClient("client authentication failed", false)
	a := c.Assertion
	if a == nil || a.Problem != "" {
		if a != nil {
			detail = a.Problem
		}
		return reasonUnusableCredential, detail, refused
	}
	var keys jwtverify.KeySet
	var p jwtverify.Policy
	singleUse := false
	switch {
	case a.Keys != nil:
		keys = a.Keys
		p = jwtverify.Policy{Issuer: c.ID, Subject: c.ID, Audiences: []string{snap.Issuer, snap.Endpoints.Token},
			MaxExpiresIn: cmp.Or(snap.AssertionMaxExpiresIn, oauthv1.DefaultAssertionMaxExpiresIn), RequireJTI: true}
		singleUse = true
	case a.ServiceAccount != nil:
		if s.saIssuer == nil || s.saIssuer.Issuer() == "" {
			return reasonNoSAIssuer, "the cluster's service-account issuer is not known (yet)", refused
		}
		keys = s.saIssuer
		p = jwtverify.Policy{Issuer: s.saIssuer.Issuer(), Subject: a.ServiceAccount.Subject, Audiences: []string{snap.Issuer},
			MaxLifetime: snap.ServiceAccountTokenMaxLifetime}
	case a.Federated != nil:
		ti := snap.TrustedIssuers[a.Federated.Issuer]
		switch {
		case ti == nil:
			return reasonUnknownIssuer, "no trusted issuer " + a.Federated.Issuer, refused
		case !ti.Admits(c.Namespace):
			return reasonIssuerNotAllowed, "trusted issuer " + ti.Name + " does not admit namespace " + c.Namespace, refused
		case ti.Keys == nil:
			return reasonUnusableCredential, "trusted issuer " + ti.Name + " has no keys", refused
		}
		keys = ti.Keys
		p = jwtverify.Policy{Issuer: ti.Issuer, Subject: a.Federated.Subject, Audiences: ti.Audiences,
			MaxLifetime: ti.MaxLifetime, RequireJTI: ti.SingleUse}
		singleUse = ti.SingleUse
	default:
		return reasonUnusableCredential, "", refused
	}
	verify := jwtverify.Verify
	if !singleUse {
		// A token presented again and again (a pod's projected token):
		// its signature is checked once.
		verify = s.reusedTokens.Verify
	}
	claims, err := verify(assertion, keys, &p, now)
	if err != nil {
		return "assertion_" + string(jwtverify.ReasonOf(err)), err.Error(), refused
	}
	if r, d := checkBinding(a, claims); r != "" {
		return r, d, refused
	}
	if !singleUse {
		return "", "", nil
	}
	// Last, once everything else holds: an assertion refused for another
	// reason does not use up its jti.
	leeway := jwtverify.DefaultLeeway
	switch err := s.store.UseAssertion(ctx, storage.AssertionID(claims.Issuer, claims.ID), claims.ExpiresAt.Add(leeway), now); {
	case errors.Is(err, storage.ErrAssertionReplayed):
		return reasonAssertionReplay, "jti " + claims.ID + " was used before", refused
	case err != nil:
		return "", "", s.storageFailed(ctx, "recording a client assertion", err)
	}
	return "", "", nil
}

// checkBinding applies what the signature and policy cannot: a
// ServiceAccount's UID, and a federated binding's claims.
func checkBinding(a *config.ClientAssertion, claims *jwtverify.Claims) (reason, detail string) {
	if sa := a.ServiceAccount; sa != nil {
		k := claims.Kubernetes
		switch {
		case sa.UID == "":
			return reasonSAUID, "the operator has not resolved ServiceAccount " + sa.Name + " yet"
		case k == nil || k.ServiceAccount.UID == "":
			return reasonSAUID, "the token carries no ServiceAccount UID (not a bound service-account token)"
		case k.ServiceAccount.UID != sa.UID || k.Namespace != sa.Namespace || k.ServiceAccount.Name != sa.Name:
			return reasonSAUID, "the token is of ServiceAccount " + k.Namespace + "/" + k.ServiceAccount.Name + " UID " + k.ServiceAccount.UID +
				", not UID " + sa.UID + " (deleted and re-created?)"
		}
	}
	if f := a.Federated; f != nil {
		for name, want := range f.Claims {
			if got, ok := claims.StringClaim(name); !ok || got != want {
				return reasonClaimMismatch, "claim " + name + " is not " + want
			}
		}
	}
	return "", ""
}
