package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/zitadel/oidc/v3/pkg/client/tokenexchange"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// Clients of the token-exchange tests.
const (
	ordersAPIClientID    = "shop.orders-api"    // serves ordersAPI, calls inventory for the caller
	inventoryAPIClientID = "shop.inventory-api" // serves inventoryAPI
	gatewayClientID      = "shop.gateway"       // may name an actor, may impersonate
	noExchangeClientID   = ccClientID           // has no token-exchange grant
)

var (
	ordersAPISecret    = mustSecret()
	inventoryAPISecret = mustSecret()
	gatewaySecret      = mustSecret()
)

// withExchangeClients adds the inventory API and three clients that may
// exchange tokens.
func withExchangeClients(ts *testServer) {
	withInventoryAPI(ts)
	te := oauthv1.GrantTokenExchange
	grants := map[oauthv1.GrantType]bool{te: true, oauthv1.GrantClientCredentials: true}
	accessTokens := func(auds ...string) []config.ExchangeableToken {
		return []config.ExchangeableToken{{Type: oauthv1.ExchangeAccessToken, Audiences: auds}}
	}
	ts.update(func(s *config.Snapshot) {
		s.Clients = s.Clients.
			With(&config.Client{ID: ordersAPIClientID, AuthMethod: oauthv1.AuthClientSecretBasic, GrantTypes: grants,
				AllowedScopes: []string{"orders:read", "inventory:read"}, SecretHashes: secretHash(ordersAPISecret),
				TokenExchange: &config.TokenExchange{SubjectTokens: accessTokens(ordersAPI)}}).
			With(&config.Client{ID: inventoryAPIClientID, AuthMethod: oauthv1.AuthClientSecretBasic, GrantTypes: grants,
				AllowedScopes: []string{"inventory:read"}, SecretHashes: secretHash(inventoryAPISecret),
				TokenExchange: &config.TokenExchange{SubjectTokens: accessTokens(inventoryAPI)}}).
			With(&config.Client{ID: gatewayClientID, AuthMethod: oauthv1.AuthClientSecretBasic, GrantTypes: grants,
				AllowedScopes: []string{"orders:read", "orders:write", "inventory:read"}, SecretHashes: secretHash(gatewaySecret),
				TokenExchange: &config.TokenExchange{SubjectTokens: accessTokens(ordersAPI), ActorTokens: accessTokens(billingAPI),
					AllowImpersonation: true}})
	})
}

// userToken is a token alice's browser got through the web client, for
// the orders and inventory APIs, with its refresh token.
func userToken(t *testing.T, ts *testServer, scopes ...string) *oauth2.Token {
	t.Helper()
	cfg := ts.webConfig(scopes...)
	verifier := oauth2.GenerateVerifier()
	back := newBrowser(t, ts).authorize(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "approve", false)
	tok, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// exchanger is zitadel/oidc's RFC 8693 client for a client, finding the
// token endpoint through discovery.
func exchanger(t *testing.T, ts *testServer, id, secret string) tokenexchange.TokenExchanger {
	t.Helper()
	te, err := tokenexchange.NewTokenExchangerClientCredentials(ctx(t), ts.URL, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	return te
}

type exchangeRequest struct {
	subject, subjectType string
	actor, actorType     string
	resource, audience   []string
	scopes               []string
	requested            string
}

func exchange(t *testing.T, te tokenexchange.TokenExchanger, r exchangeRequest) (*oidc.TokenExchangeResponse, error) {
	t.Helper()
	if r.subjectType == "" {
		r.subjectType = TokenTypeAccessToken
	}
	if r.actor != "" && r.actorType == "" {
		r.actorType = TokenTypeAccessToken
	}
	return tokenexchange.ExchangeToken(ctx(t), te, r.subject, oidc.TokenType(r.subjectType), r.actor, oidc.TokenType(r.actorType),
		r.resource, r.audience, r.scopes, oidc.TokenType(r.requested))
}

// claimsOf verifies an access token against the JWKS.
func claimsOf(t *testing.T, ts *testServer, token string) jwt.MapClaims {
	t.Helper()
	c, _ := ts.parseAccessToken(t, token)
	return c
}

func actOf(c jwt.MapClaims) string {
	b, _ := json.Marshal(c["act"])
	return string(b)
}

// TestTokenExchangeDelegation: the orders API, holding alice's token for
// it, exchanges it for a token to call the inventory API on her behalf
// (RFC 8693 §1.1 delegation): the same subject, only the inventory API's
// audience and scope, the orders API as actor and client, no refresh
// token, and no longer than the token it came from.
func TestTokenExchangeDelegation(t *testing.T) {
	ts := newTestServer(t)
	withExchangeClients(ts)
	user := userToken(t, ts, "orders:read", "inventory:read", "basic")
	userClaims := claimsOf(t, ts, user.AccessToken)

	ts.clock.Advance(4 * time.Minute)
	resp, err := exchange(t, exchanger(t, ts, ordersAPIClientID, ordersAPISecret),
		exchangeRequest{subject: user.AccessToken, audience: []string{inventoryAPI}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.IssuedTokenType != TokenTypeAccessToken || resp.TokenType != "Bearer" || resp.RefreshToken != "" ||
		resp.Scopes.String() != "inventory:read" {
		t.Fatalf("response %+v: want an access token (RFC 8693 §2.2.1), Bearer, no refresh token, scope inventory:read", resp)
	}
	c := claimsOf(t, ts, resp.AccessToken)
	aud, _ := c.GetAudience()
	if c["sub"] != testSubject || c["client_id"] != ordersAPIClientID || !slices.Equal(aud, []string{inventoryAPI}) ||
		c["scope"] != "inventory:read" || c["grant_id"] != userClaims["grant_id"] || c["auth_time"] != userClaims["auth_time"] {
		t.Fatalf("claims %v", c)
	}
	if got := actOf(c); got != `{"sub":"client:`+ordersAPIClientID+`"}` {
		t.Errorf("act = %s, want the orders API as the actor", got)
	}
	exp, _ := c.GetExpirationTime()
	userExp, _ := userClaims.GetExpirationTime()
	if !exp.Equal(userExp.Time) || resp.ExpiresIn != uint64(userExp.Sub(ts.clock.Now()).Round(time.Second)/time.Second) {
		t.Errorf("exp %v (expires_in %d), want the subject token's %v: an exchanged token never outlives it", exp, resp.ExpiresIn, userExp)
	}

	// The inventory API passes it on to a third party it serves for:
	// the chain nests, most recent actor outermost (§4.1).
	resp2, err := exchange(t, exchanger(t, ts, inventoryAPIClientID, inventoryAPISecret), exchangeRequest{subject: resp.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	c2 := claimsOf(t, ts, resp2.AccessToken)
	if got := actOf(c2); got != `{"act":{"sub":"client:`+ordersAPIClientID+`"},"sub":"client:`+inventoryAPIClientID+`"}` {
		t.Errorf("act = %s, want the inventory API acting, the orders API nested", got)
	}

	// Introspection shows the actor too.
	in := ts.introspect(t, resp2.AccessToken)
	if in["active"] != true || in["sub"] != testSubject || !strings.Contains(mustJSON(in["act"]), inventoryAPIClientID) {
		t.Errorf("introspection %v", in)
	}
}

// TestTokenExchangeOwnTokenNarrows: a client exchanging a token issued to
// itself gets a narrower one without a new actor: nobody acts for anyone.
func TestTokenExchangeOwnTokenNarrows(t *testing.T) {
	ts := newTestServer(t)
	withExchangeClients(ts)
	cc, err := ts.ccConfig(gatewayClientID, gatewaySecret, "orders:read", "orders:write").Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := exchange(t, exchanger(t, ts, gatewayClientID, gatewaySecret),
		exchangeRequest{subject: cc.AccessToken, scopes: []string{"orders:read"}, resource: []string{ordersAPI}})
	if err != nil {
		t.Fatal(err)
	}
	c := claimsOf(t, ts, resp.AccessToken)
	aud, _ := c.GetAudience()
	if c["sub"] != "client:"+gatewayClientID || c["scope"] != "orders:read" || !slices.Equal(aud, []string{ordersAPI}) || c["act"] != nil {
		t.Fatalf("claims %v", c)
	}
}

// TestTokenExchangeActorAndImpersonation: an actor token names the actor;
// without one a client allowed to impersonate gets a token with no new
// act claim, and one not allowed gets itself as actor.
func TestTokenExchangeActorAndImpersonation(t *testing.T) {
	ts := newTestServer(t)
	withExchangeClients(ts)
	user := userToken(t, ts, "orders:read")
	billing, err := ts.ccConfig(ccClientID, ccSecret, "orders:read").Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	gw := exchanger(t, ts, gatewayClientID, gatewaySecret)
	resp, err := exchange(t, gw, exchangeRequest{subject: user.AccessToken, actor: billing.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	if got := actOf(claimsOf(t, ts, resp.AccessToken)); got != `{"sub":"client:`+ccClientID+`"}` {
		t.Errorf("act = %s, want the actor token's subject", got)
	}
	resp, err = exchange(t, gw, exchangeRequest{subject: user.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	if c := claimsOf(t, ts, resp.AccessToken); c["act"] != nil || c["sub"] != testSubject || c["client_id"] != gatewayClientID {
		t.Errorf("impersonation: claims %v, want alice's subject and no act", c)
	}
	// The same exchange by a client not allowed to impersonate records it.
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(gatewayClientID)
		te := *c.TokenExchange
		te.AllowImpersonation = false
		c.TokenExchange = &te
		s.Clients = s.Clients.With(&c)
	})
	resp, err = exchange(t, gw, exchangeRequest{subject: user.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	if got := actOf(claimsOf(t, ts, resp.AccessToken)); got != `{"sub":"client:`+gatewayClientID+`"}` {
		t.Errorf("act = %s without impersonation, want the client", got)
	}
}

// TestTokenExchangeRefusals: each rule refuses with RFC 8693 §2.2.2's
// error and a reason.
func TestTokenExchangeRefusals(t *testing.T) {
	ts := newTestServer(t)
	withExchangeClients(ts)
	user := userToken(t, ts, "orders:read", "inventory:read")
	// A token of another client for the billing API only.
	billingOnly, err := exchangeCC(t, ts, billingAPI)
	if err != nil {
		t.Fatal(err)
	}
	orders := exchanger(t, ts, ordersAPIClientID, ordersAPISecret)
	for _, tc := range []struct {
		name string
		te   tokenexchange.TokenExchanger
		req  exchangeRequest
		want string
		why  string
	}{
		{"unsupported subject token type", orders, exchangeRequest{subject: user.AccessToken, subjectType: "urn:ietf:params:oauth:token-type:refresh_token"}, ErrInvalidRequest, "not supported"},
		{"not a token of this server", orders, exchangeRequest{subject: "eyJhbGciOiJub25lIn0.e30."}, ErrInvalidRequest, "not an access token of this server"},
		{"another client's token for an API it does not serve", orders, exchangeRequest{subject: billingOnly.AccessToken}, ErrInvalidRequest, "does not serve"},
		{"an ID token requested", orders, exchangeRequest{subject: user.AccessToken, requested: "urn:ietf:params:oauth:token-type:id_token"}, ErrInvalidRequest, "requested_token_type"},
		{"an actor token it may not present", orders, exchangeRequest{subject: user.AccessToken, actor: user.AccessToken}, ErrUnauthorizedClient, "actor_token"},
		{"an audience the client may not have", orders, exchangeRequest{subject: user.AccessToken, audience: []string{billingAPI}}, ErrInvalidTarget, "may not have a token"},
		{"a resource the client may not have", orders, exchangeRequest{subject: user.AccessToken, resource: []string{"https://elsewhere.example"}}, ErrInvalidTarget, "may not have a token"},
		{"a scope the subject token lacks", exchanger(t, ts, gatewayClientID, gatewaySecret), exchangeRequest{subject: user.AccessToken, scopes: []string{"orders:write"}}, ErrInvalidScope, "only narrow"},
		{"a client without the grant", exchanger(t, ts, noExchangeClientID, ccSecret), exchangeRequest{subject: user.AccessToken}, ErrUnauthorizedClient, "grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := exchange(t, tc.te, tc.req)
			assertExchangeError(t, err, tc.want, tc.why)
		})
	}

	// The raw form, for what the library would not send.
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"no subject_token", url.Values{"subject_token_type": {TokenTypeAccessToken}}, ErrInvalidRequest},
		{"no subject_token_type", url.Values{"subject_token": {user.AccessToken}}, ErrInvalidRequest},
		{"actor_token without a type", url.Values{"subject_token": {user.AccessToken}, "subject_token_type": {TokenTypeAccessToken}, "actor_token": {user.AccessToken}}, ErrInvalidRequest},
		{"actor_token_type without a token", url.Values{"subject_token": {user.AccessToken}, "subject_token_type": {TokenTypeAccessToken}, "actor_token_type": {TokenTypeAccessToken}}, ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("grant_type", string(oauthv1.GrantTokenExchange))
			assertOAuthError(t, ts.postForm(t, endpoints.TokenPath, tc.form, ordersAPIClientID, ordersAPISecret), http.StatusBadRequest, tc.want)
		})
	}

	t.Run("expired", func(t *testing.T) {
		ts.clock.Advance(ts.snap().AccessTokenTTL)
		_, err := exchange(t, orders, exchangeRequest{subject: user.AccessToken})
		assertExchangeError(t, err, ErrInvalidRequest, "expired")
	})
}

// exchangeCC gets the billing worker's own token restricted to one API.
func exchangeCC(t *testing.T, ts *testServer, resource string) (*oauth2.Token, error) {
	cfg := ts.ccConfig(ccClientID, ccSecret)
	cfg.EndpointParams = url.Values{"resource": {resource}}
	return cfg.Token(ctx(t))
}

func assertExchangeError(t *testing.T, err error, code, why string) {
	t.Helper()
	var oe *oidc.Error
	if !errors.As(err, &oe) {
		t.Fatalf("got %v, want an OAuth error %s", err, code)
	}
	if string(oe.ErrorType) != code || !strings.Contains(oe.Description, why) {
		t.Fatalf("got %s %q, want %s with a description saying %q", oe.ErrorType, oe.Description, code, why)
	}
}

// TestTokenExchangeRevocation: an exchanged token shares its subject
// token's refresh-token family (grant_id). Revoking the family (here by
// revoking alice's refresh token) makes the exchanged token inactive too,
// and the subject token can no longer be exchanged.
func TestTokenExchangeRevocation(t *testing.T) {
	ts := newTestServer(t)
	withExchangeClients(ts)
	user := userToken(t, ts, "orders:read", "inventory:read")
	orders := exchanger(t, ts, ordersAPIClientID, ordersAPISecret)
	resp, err := exchange(t, orders, exchangeRequest{subject: user.AccessToken, audience: []string{inventoryAPI}})
	if err != nil {
		t.Fatal(err)
	}
	if in := ts.introspect(t, resp.AccessToken); in["active"] != true {
		t.Fatalf("exchanged token inactive before revocation: %v", in)
	}
	r := ts.postForm(t, endpoints.RevokePath, url.Values{"token": {user.RefreshToken}}, webClientID, webSecret)
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", r.StatusCode)
	}
	if in := ts.introspect(t, resp.AccessToken); in["active"] != false {
		t.Errorf("exchanged token still active after its subject token's family was revoked: %v", in)
	}
	_, err = exchange(t, orders, exchangeRequest{subject: user.AccessToken})
	assertExchangeError(t, err, ErrInvalidRequest, "revoked")
}

// TestTokenExchangeRemovedUser: a person removed from the users directory
// cannot be the subject of an exchange, as they cannot refresh.
func TestTokenExchangeRemovedUser(t *testing.T) {
	ts := newTestServer(t)
	withExchangeClients(ts)
	user := userToken(t, ts, "orders:read")
	ts.update(func(s *config.Snapshot) { s.Users = nil })
	_, err := exchange(t, exchanger(t, ts, ordersAPIClientID, ordersAPISecret), exchangeRequest{subject: user.AccessToken})
	assertExchangeError(t, err, ErrInvalidRequest, "no longer exists")
}

// TestTokenExchangeActorChainBounded: a chain of actors stops growing.
func TestTokenExchangeActorChainBounded(t *testing.T) {
	ts := newTestServer(t)
	withExchangeClients(ts)
	var chain *actor
	for i := range maxActorChain {
		chain = &actor{Subject: "client:hop-" + string(rune('a'+i)), Act: chain}
	}
	snap := ts.snap()
	at, e := ts.srv.signAccessToken(snap, tokenGrant{Client: snap.Clients.Get(webClientID), Subject: testSubject,
		Scopes: []string{"orders:read"}, AuthTime: ts.clock.Now(), Act: chain}, newID(), ts.clock.Now())
	if e != nil {
		t.Fatal(e)
	}
	_, err := exchange(t, exchanger(t, ts, ordersAPIClientID, ordersAPISecret), exchangeRequest{subject: at.JWT})
	assertExchangeError(t, err, ErrInvalidRequest, "deep")
}

// The server's RFC 8414 metadata and its OpenID Connect discovery document
// list the token-exchange grant, so a library that reads them finds it.
func TestMetadataAdvertisesTokenExchange(t *testing.T) {
	ts := newTestServer(t)
	for _, u := range []string{ts.snap().Endpoints.Metadata, ts.snap().Endpoints.OpenIDConfiguration} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			GrantTypes []string `json:"grant_types_supported"`
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil || !slices.Contains(doc.GrantTypes, string(oauthv1.GrantTokenExchange)) {
			t.Errorf("%s: grant_types_supported %v (%v)", u, doc.GrantTypes, err)
		}
	}
}
