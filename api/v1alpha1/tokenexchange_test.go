package v1alpha1_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Token exchange (RFC 8693) is off unless an OAuthClient asks for it, and
// then it must say what it may exchange; impersonation is off by default
// and refused where it would mean nothing.
func TestTokenExchangeValidation(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()

	const te = `"urn:ietf:params:oauth:grant-type:token-exchange"`
	own := `tokenExchange: {subjectTokens: [{type: AccessToken}]}`
	serves := `tokenExchange: {subjectTokens: [{type: AccessToken, audiences: ["https://orders.example.com"]}]`
	rejected := []struct{ name, base, patch, want string }{
		{"grant without tokenExchange", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null}`,
			"needs spec.tokenExchange: which tokens the client may exchange"},
		{"tokenExchange without the grant", validClient, `spec: {` + own + `}`,
			"spec.tokenExchange is set, but grantTypes does not include"},
		{"public client", validPublicClient, `spec: {grantTypes: [authorization_code, ` + te + `], ` + own + `}`,
			"a public client cannot use token exchange"},
		{"no subject tokens", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, tokenExchange: {subjectTokens: []}}`,
			"should have at least 1 items"},
		{"unknown token type", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, tokenExchange: {subjectTokens: [{type: RefreshToken}]}}`,
			`Unsupported value: "RefreshToken"`},
		{"impersonation of nobody", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, tokenExchange: {subjectTokens: [{type: AccessToken}], allowImpersonation: true}}`,
			"allowImpersonation has no effect here"},
		{"audiences on a ServiceAccount", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, tokenExchange: {subjectTokens: [{type: ServiceAccount, serviceAccounts: [worker], audiences: ["https://a"]}]}}`,
			"audiences is for type AccessToken"},
		{"ServiceAccount without names", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, tokenExchange: {subjectTokens: [{type: ServiceAccount}]}}`,
			"type ServiceAccount needs serviceAccounts"},
		{"a ServiceAccount name of another namespace", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, tokenExchange: {subjectTokens: [{type: ServiceAccount, serviceAccounts: ["other:worker"]}]}}`,
			"should match"},
		{"TrustedIssuer without subjects", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, tokenExchange: {subjectTokens: [{type: TrustedIssuer, issuer: github}]}}`,
			"type TrustedIssuer needs issuer and subjects"},
		{"subjects on an AccessToken", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, tokenExchange: {subjectTokens: [{type: AccessToken, issuer: github, subjects: [x]}]}}`,
			"issuer and subjects are for type TrustedIssuer"},
		{"audience with white space", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, tokenExchange: {subjectTokens: [{type: AccessToken, audiences: ["a b"]}]}}`,
			"an audience must not contain white space"},
	}
	for _, tc := range rejected {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			obj := object(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			err := cp.Client.Create(ctx, obj)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an Invalid error saying %q", err, tc.want)
			}
		})
	}
	accepted := []struct{ name, base, patch string }{
		{"own tokens", validClient, `spec: {grantTypes: [client_credentials, ` + te + `], redirectURIs: null, ` + own + `}`},
		{"callers' tokens with impersonation", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, ` + serves + `, allowImpersonation: true}}`},
		{"workloads with impersonation", validClient, `spec: {grantTypes: [` + te + `], redirectURIs: null, tokenExchange: {subjectTokens: [{type: ServiceAccount, serviceAccounts: [worker]}, {type: TrustedIssuer, issuer: github, subjects: ["repo:org/app:ref:refs/heads/main"]}], allowImpersonation: true}}`},
		{"actors", validClient, `spec: {grantTypes: [authorization_code, ` + te + `], ` + serves + `, actorTokens: [{type: AccessToken}]}}`},
	}
	for _, tc := range accepted {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			obj := object(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName(obj.GetName() + "-" + strings.NewReplacer(" ", "-", "'", "").Replace(strings.ToLower(tc.name)))
			if err := cp.Client.Create(ctx, obj); err != nil {
				t.Fatalf("create: %v", err)
			}
		})
	}
}

// Audiences lists every audience the Scopes' admission applies to.
func TestOAuthClientAudiences(t *testing.T) {
	oc := &oauthv1.OAuthClient{Spec: oauthv1.OAuthClientSpec{
		Audience: []oauthv1.Audience{"https://a"},
		TokenExchange: &oauthv1.TokenExchange{
			SubjectTokens: []oauthv1.ExchangeableToken{{Type: oauthv1.ExchangeAccessToken, Audiences: []oauthv1.Audience{"https://b", "https://a"}}},
			ActorTokens:   []oauthv1.ExchangeableToken{{Type: oauthv1.ExchangeAccessToken, Audiences: []oauthv1.Audience{"https://c"}}},
		},
	}}
	if got := oc.Audiences(); !slices.Equal(got, []oauthv1.Audience{"https://a", "https://b", "https://c"}) {
		t.Errorf("Audiences = %v", got)
	}
	if got := oc.Spec.Audience; !slices.Equal(got, []oauthv1.Audience{"https://a"}) {
		t.Errorf("Audiences changed spec.audience to %v", got)
	}
}
