package server

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/server/config"
)

// An independent client library, zitadel/oidc v3.52.0, makes and sends the
// private_key_jwt assertions (issue 20): a relying party configured by
// discovery gets a client_credentials token, and the token is then
// introspected with another of its assertions. Its relying party's own
// code exchange, refresh and revocation sign assertions valid for an hour,
// which the server refuses by default (spec.clientAssertions.maxExpiresIn
// 5m) and accepts once raised to 1h.
func TestPrivateKeyJWTWithZitadelClient(t *testing.T) {
	f := newAssertionFixture(t)
	ctx := t.Context()
	der, err := x509.MarshalPKCS8PrivateKey(f.client.priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	signer, err := client.NewSignerFromPrivateKeyByte(keyPEM, f.client.kid)
	if err != nil {
		t.Fatal(err)
	}
	party, err := rp.NewRelyingPartyOIDC(ctx, f.ts.URL, pkjClientID, "", "", []string{"orders:read"},
		rp.WithJWTProfile(rp.SignerFromKeyAndKeyID(keyPEM, f.client.kid)), rp.WithAuthStyle(oauth2.AuthStyleInParams))
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	assertion := func(lifetime time.Duration) string {
		a, err := client.SignedJWTProfileAssertion(pkjClientID, []string{f.ts.URL}, lifetime, signer)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	params := func(a string) url.Values {
		return url.Values{"client_assertion": {a}, "client_assertion_type": {oidc.ClientAssertionTypeJWTAssertion}}
	}

	tok, err := rp.ClientCredentials(ctx, party, params(assertion(time.Minute)))
	if err != nil {
		t.Fatalf("client_credentials with a zitadel assertion: %v", err)
	}
	var claims map[string]any
	parseUnverified(t, tok.AccessToken, &claims)
	if claims["client_id"] != pkjClientID || claims["sub"] != "client:"+pkjClientID || claims["scope"] != "orders:read" {
		t.Errorf("access token claims %v", claims)
	}

	// The same assertion again is a replay.
	a := assertion(time.Minute)
	if _, err := rp.ClientCredentials(ctx, party, params(a)); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.ClientCredentials(ctx, party, params(a)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("a replayed assertion: %v", err)
	}

	resp, body := f.post(t, "/introspect", pkjClientID, assertion(time.Minute), url.Values{"token": {tok.AccessToken}})
	if resp.StatusCode != http.StatusOK || body["active"] != true || body["client_id"] != pkjClientID {
		t.Fatalf("introspection: %d %v", resp.StatusCode, body)
	}

	// The relying party's revocation signs an assertion valid for an
	// hour: refused by default, accepted with maxExpiresIn 1h.
	if err := rp.RevokeToken(ctx, party, tok.AccessToken, "access_token"); err == nil {
		t.Fatal("a one-hour assertion was accepted with maxExpiresIn 5m")
	}
	if got := f.lastEvent(t, EventClientAuthFailed)["reason"]; got != "assertion_expires_too_late" {
		t.Errorf("the one-hour assertion was refused for %v", got)
	}
	f.ts.update(func(s *config.Snapshot) { s.AssertionMaxExpiresIn = time.Hour })
	if err := rp.RevokeToken(ctx, party, tok.AccessToken, "access_token"); err != nil {
		t.Fatalf("revocation with maxExpiresIn 1h: %v", err)
	}
	resp, body = f.post(t, "/introspect", pkjClientID, assertion(time.Minute), url.Values{"token": {tok.AccessToken}})
	if resp.StatusCode != http.StatusOK || body["active"] != false {
		t.Fatalf("introspection after revocation: %d %v", resp.StatusCode, body)
	}
}
