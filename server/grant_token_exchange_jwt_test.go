package server

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

const (
	workloadExchangerID = "shop.broker"    // may exchange shop/worker's and the GitHub workflow's tokens
	tokensOnlyID        = "shop.narrower"  // may exchange access tokens only
	otherSAName         = "other-workload" // a ServiceAccount nobody listed
	missingSAName       = "gone-workload"  // listed, but the operator found no such ServiceAccount
)

var (
	workloadExchangerSecret = mustSecret()
	tokensOnlySecret        = mustSecret()
)

// withWorkloadExchangers adds, to the client-assertion fixture's server
// (the cluster's service-account issuer and the trusted issuers github,
// east and private), two clients that may exchange tokens.
func withWorkloadExchangers(f *assertionFixture) {
	grants := map[oauthv1.GrantType]bool{oauthv1.GrantTokenExchange: true}
	sa := config.ExchangeableToken{Type: oauthv1.ExchangeServiceAccount,
		ServiceAccountSubjects: []string{config.ServiceAccountSubject(saNamespace, saName), config.ServiceAccountSubject(saNamespace, missingSAName)},
		// missingSAName is listed but the operator found no such
		// ServiceAccount: no UID.
		ServiceAccountUIDs: map[string]string{config.ServiceAccountSubject(saNamespace, saName): saUID}}
	gh := config.ExchangeableToken{Type: oauthv1.ExchangeTrustedIssuer, Issuer: "github", Subjects: []string{githubSubject}}
	private := config.ExchangeableToken{Type: oauthv1.ExchangeTrustedIssuer, Issuer: "private", Subjects: []string{githubSubject}}
	f.ts.update(func(s *config.Snapshot) {
		s.Clients = s.Clients.
			With(&config.Client{ID: workloadExchangerID, Namespace: saNamespace, AuthMethod: oauthv1.AuthClientSecretBasic,
				GrantTypes: grants, AllowedScopes: []string{"orders:read", "openid"}, SecretHashes: secretHash(workloadExchangerSecret),
				TokenExchange: &config.TokenExchange{SubjectTokens: []config.ExchangeableToken{sa, gh, private}, ActorTokens: []config.ExchangeableToken{sa}}}).
			With(&config.Client{ID: tokensOnlyID, Namespace: saNamespace, AuthMethod: oauthv1.AuthClientSecretBasic,
				GrantTypes: grants, AllowedScopes: []string{"orders:read"}, SecretHashes: secretHash(tokensOnlySecret),
				TokenExchange: &config.TokenExchange{SubjectTokens: []config.ExchangeableToken{{Type: oauthv1.ExchangeAccessToken}}}})
	})
}

// TestTokenExchangeWorkloadTokens: a Kubernetes service-account token or
// a trusted issuer's JWT, verified offline like a client assertion, is
// exchanged for an access token about that workload: its own subject
// (system:serviceaccount:..., federated:<issuer>:<sub>), the client's
// scopes but none about a person, the client as actor, never outliving
// the token it came from.
func TestTokenExchangeWorkloadTokens(t *testing.T) {
	f := newAssertionFixture(t)
	withWorkloadExchangers(f)
	ts := f.ts
	broker := exchanger(t, ts, workloadExchangerID, workloadExchangerSecret)

	saToken := f.cluster.sign(t, f.serviceAccountToken(), nil)
	resp, err := exchange(t, broker, exchangeRequest{subject: saToken, subjectType: TokenTypeJWT})
	if err != nil {
		t.Fatal(err)
	}
	c := claimsOf(t, ts, resp.AccessToken)
	exp, _ := c.GetExpirationTime()
	if c["sub"] != "system:serviceaccount:shop:worker" || c["client_id"] != workloadExchangerID || c["scope"] != "orders:read" ||
		actOf(c) != `{"sub":"client:`+workloadExchangerID+`"}` || c["auth_time"] != nil || exp.After(ts.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("from a service-account token: claims %v", c)
	}

	ghToken := f.github.sign(t, f.githubToken(), nil)
	resp, err = exchange(t, broker, exchangeRequest{subject: ghToken, subjectType: TokenTypeJWT, actor: saToken, actorType: TokenTypeJWT})
	if err != nil {
		t.Fatal(err)
	}
	c = claimsOf(t, ts, resp.AccessToken)
	if c["sub"] != "federated:github:"+githubSubject || actOf(c) != `{"sub":"system:serviceaccount:shop:worker"}` {
		t.Fatalf("from a GitHub token with a service-account actor: claims %v", c)
	}
	// exp: the GitHub token's 5 minutes, not the access token's 10.
	if exp, _ := c.GetExpirationTime(); !exp.Equal(ts.clock.Now().Add(5 * time.Minute).Truncate(time.Second)) {
		t.Errorf("exp %v, want the subject token's", exp)
	}

	// The refusals, each with a reason.
	other := f.serviceAccountToken()
	other["sub"] = config.ServiceAccountSubject(saNamespace, otherSAName)
	wrongAud := f.serviceAccountToken()
	wrongAud["aud"] = []string{"https://kubernetes.default.svc"}
	expired := f.serviceAccountToken()
	expired["iat"], expired["exp"] = ts.clock.Now().Add(-time.Hour).Unix(), ts.clock.Now().Add(-30*time.Minute).Unix()
	// A token of the ServiceAccount before it was deleted and re-created
	// under the same name: another UID.
	recreated := f.serviceAccountToken()
	recreated["kubernetes.io"] = map[string]any{"namespace": saNamespace, "serviceaccount": map[string]any{"name": saName, "uid": "0f0e0d0c-earlier"}}
	unbound := f.serviceAccountToken()
	delete(unbound, "kubernetes.io")
	missing := f.serviceAccountToken()
	missing["sub"] = config.ServiceAccountSubject(saNamespace, missingSAName)
	missing["kubernetes.io"] = map[string]any{"namespace": saNamespace, "serviceaccount": map[string]any{"name": missingSAName, "uid": "9a9a"}}
	for _, tc := range []struct {
		name, token string
		req         exchangeRequest
		te          string
		want, why   string
	}{
		{"another ServiceAccount", f.cluster.sign(t, other, nil), exchangeRequest{}, "", ErrInvalidRequest, "subject is not one this client may present"},
		{"another audience", f.cluster.sign(t, wrongAud, nil), exchangeRequest{}, "", ErrInvalidRequest, "refused: aud"},
		{"expired", f.cluster.sign(t, expired, nil), exchangeRequest{}, "", ErrInvalidRequest, "refused: exp"},
		{"a deleted and re-created ServiceAccount's", f.cluster.sign(t, recreated, nil), exchangeRequest{}, "", ErrInvalidRequest, "deleted and re-created"},
		{"a token without the ServiceAccount's UID", f.cluster.sign(t, unbound, nil), exchangeRequest{}, "", ErrInvalidRequest, "no ServiceAccount UID"},
		{"a listed ServiceAccount the operator did not find", f.cluster.sign(t, missing, nil), exchangeRequest{}, "", ErrInvalidRequest, "has not found"},
		{"an actor token of a re-created ServiceAccount", saToken, exchangeRequest{actor: f.cluster.sign(t, recreated, nil), actorType: TokenTypeJWT},
			"", ErrInvalidRequest, "actor_token is of an earlier ServiceAccount"},
		{"forged", f.github.sign(t, f.serviceAccountToken(), nil), exchangeRequest{}, "", ErrInvalidRequest, "refused"},
		{"a GitHub token replayed", ghToken, exchangeRequest{}, "", ErrInvalidRequest, "used before"},
		{"an issuer that does not admit the namespace", f.github.sign(t, jwt.MapClaims{"iss": "https://private.example.com", "sub": githubSubject,
			"aud": ts.URL, "iat": ts.clock.Now().Unix(), "exp": ts.clock.Now().Add(time.Minute).Unix(), "jti": f.nextJTI()}, nil),
			exchangeRequest{}, "", ErrInvalidRequest, "issuer is not one"},
		{"a person's scope for a workload", saToken, exchangeRequest{scopes: []string{"openid"}}, "", ErrInvalidScope, "scope"},
		{"a client that lists no JWTs", saToken, exchangeRequest{}, tokensOnlyID, ErrUnauthorizedClient, "lists no ServiceAccount or TrustedIssuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := broker
			if tc.te == tokensOnlyID {
				te = exchanger(t, ts, tokensOnlyID, tokensOnlySecret)
			}
			req := tc.req
			req.subject, req.subjectType = tc.token, TokenTypeJWT
			_, err := exchange(t, te, req)
			assertExchangeError(t, err, tc.want, tc.why)
		})
	}

	// Without the cluster's issuer (discovery has not answered), a
	// service-account token cannot be told from a stranger's.
	ts.srv.saIssuer = nil
	_, err = exchange(t, broker, exchangeRequest{subject: f.cluster.sign(t, f.serviceAccountToken(), nil), subjectType: TokenTypeJWT})
	assertExchangeError(t, err, ErrInvalidRequest, "issuer is not one")
}

// A workload with no secret anywhere exchanges: shop.worker authenticates
// with its projected service-account token (a client assertion) and
// trades a person's token sent to the API it serves for one to call
// another API on their behalf.
func TestTokenExchangeBySecretlessClient(t *testing.T) {
	f := newAssertionFixture(t)
	ts := f.ts
	withInventoryAPI(ts)
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(saClientID)
		c.GrantTypes = map[oauthv1.GrantType]bool{oauthv1.GrantTokenExchange: true}
		c.AllowedScopes = []string{"orders:read", "inventory:read"}
		c.TokenExchange = &config.TokenExchange{SubjectTokens: []config.ExchangeableToken{
			{Type: oauthv1.ExchangeAccessToken, Audiences: []string{ordersAPI}}}}
		s.Clients = s.Clients.With(&c)
		w := *s.Clients.Get(webClientID)
		w.AllowedScopes = append(slices.Clone(w.AllowedScopes), "inventory:read")
		s.Clients = s.Clients.With(&w)
	})
	user := userToken(t, ts, "orders:read", "inventory:read")
	resp, body := f.post(t, "/token", saClientID, f.cluster.sign(t, f.serviceAccountToken(), nil), url.Values{
		"grant_type": {string(oauthv1.GrantTokenExchange)}, "subject_token": {user.AccessToken},
		"subject_token_type": {TokenTypeAccessToken}, "resource": {inventoryAPI}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange by a client authenticated with its service-account token: %d %v", resp.StatusCode, body)
	}
	c := claimsOf(t, ts, body["access_token"].(string))
	aud, _ := c.GetAudience()
	if c["sub"] != testSubject || c["client_id"] != saClientID || !slices.Equal(aud, []string{inventoryAPI}) ||
		actOf(c) != `{"sub":"client:`+saClientID+`"}` || body["issued_token_type"] != TokenTypeAccessToken {
		t.Fatalf("claims %v, response %v", c, body)
	}
}
