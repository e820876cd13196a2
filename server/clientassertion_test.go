package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// Clients without secrets (issue 20). The client_ids and bindings of the
// fixture below.
const (
	pkjClientID    = "shop.signer" // private_key_jwt, inline keys
	saClientID     = "shop.worker" // ServiceAccount shop/worker
	fedClientID    = "ci.deployer" // trusted issuer github, repo org/app on main
	syncClientID   = "east.sync"   // trusted issuer east (UntilExpiry), another cluster's SA
	saNamespace    = "shop"
	saName         = "worker"
	saUID          = "5b1e0f0a-11c3-4c55-9d7e-0d6a1c1f2a01"
	clusterIssuer  = "https://kubernetes.default.svc.cluster.local"
	githubIssuer   = "https://token.actions.githubusercontent.com"
	githubSubject  = "repo:org/app:ref:refs/heads/main"
	eastIssuer     = "https://east.example.com"
	eastSubject    = "system:serviceaccount:sync:agent"
	jwtBearerValue = oauthv1.ClientAssertionTypeJWTBearer
)

// jwtKey is a signing key of a test party.
type jwtKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

func newJWTKey(t testing.TB, alg, kid string) *jwtKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &jwtKey{kid: kid, alg: alg, priv: priv}
}

func (k *jwtKey) static(t testing.TB) *jwtverify.Static {
	t.Helper()
	pub, err := jwtverify.NewKey(k.kid, k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwtverify.NewStatic(pub)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (k *jwtKey) sign(t testing.TB, c jwt.MapClaims, edit func(h map[string]any)) string {
	t.Helper()
	methods := map[string]jwt.SigningMethod{"ES256": jwt.SigningMethodES256, "RS256": jwt.SigningMethodRS256, "EdDSA": jwt.SigningMethodEdDSA}
	tok := jwt.NewWithClaims(methods[k.alg], c)
	tok.Header["kid"] = k.kid
	if edit != nil {
		edit(tok.Header)
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// saIssuer is the cluster's service-account issuer of the tests.
type saIssuer struct {
	*jwtverify.Static
	issuer string
}

func (s *saIssuer) Issuer() string { return s.issuer }

// assertionFixture is a token server with one client of each kind without
// a secret, and the keys of everyone who signs for them.
type assertionFixture struct {
	ts      *testServer
	logs    *testenv.LogBuffer
	client  *jwtKey // shop.signer's own key
	cluster *jwtKey // the cluster's service-account key
	github  *jwtKey
	east    *jwtKey
	seen    map[string]int
	jti     int
	mu      sync.Mutex
}

func newAssertionFixture(t testing.TB) *assertionFixture {
	t.Helper()
	f := &assertionFixture{logs: &testenv.LogBuffer{}, seen: map[string]int{},
		client: newJWTKey(t, "ES256", "signer-1"), cluster: newJWTKey(t, "RS256", "cluster-sa-1"),
		github: newJWTKey(t, "RS256", "gh-1"), east: newJWTKey(t, "ES256", "east-1")}
	sa := &saIssuer{Static: f.cluster.static(t), issuer: clusterIssuer}
	f.ts = newTestServerWith(t, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(f.logs, nil))
		o.ServiceAccountIssuer = sa
	})
	cc := map[oauthv1.GrantType]bool{oauthv1.GrantClientCredentials: true}
	client := func(id, ns string, method oauthv1.TokenEndpointAuthMethod, a *config.ClientAssertion) *config.Client {
		return &config.Client{ID: id, DisplayName: id, Namespace: ns, AuthMethod: method, GrantTypes: cc,
			AllowedScopes: []string{"orders:read"}, RequirePKCE: true, Assertion: a}
	}
	f.ts.update(func(s *config.Snapshot) {
		s.ServiceAccountTokenMaxLifetime = time.Hour
		s.TrustedIssuers = map[string]*config.TrustedIssuer{}
		for _, ti := range []struct {
			name, issuer string
			key          *jwtKey
			singleUse    bool
			from         oauthv1.FromNamespaces
		}{
			{"github", githubIssuer, f.github, true, oauthv1.NamespacesFromAll},
			{"east", eastIssuer, f.east, false, oauthv1.NamespacesFromAll},
			{"private", "https://private.example.com", f.github, true, oauthv1.NamespacesFromSame},
		} {
			s.TrustedIssuers[ti.name] = config.NewTrustedIssuer(ti.name, ti.issuer, ti.key.static(t), []string{s.Issuer}, time.Hour,
				ti.singleUse, "auth", ti.from)
		}
		for _, c := range []*config.Client{
			client(pkjClientID, "shop", oauthv1.AuthPrivateKeyJWT, &config.ClientAssertion{Keys: f.client.static(t)}),
			client(saClientID, saNamespace, oauthv1.AuthFederatedJWT, &config.ClientAssertion{ServiceAccount: &config.ServiceAccountBinding{
				Namespace: saNamespace, Name: saName, Subject: config.ServiceAccountSubject(saNamespace, saName), UID: saUID}}),
			client(fedClientID, "ci", oauthv1.AuthFederatedJWT, &config.ClientAssertion{Federated: &config.FederatedBinding{
				Issuer: "github", Subject: githubSubject, Claims: map[string]string{"repository": "org/app", "ref": "refs/heads/main"}}}),
			client(syncClientID, "east", oauthv1.AuthFederatedJWT, &config.ClientAssertion{Federated: &config.FederatedBinding{
				Issuer: "east", Subject: eastSubject}}),
			client("ci.private", "ci", oauthv1.AuthFederatedJWT, &config.ClientAssertion{Federated: &config.FederatedBinding{
				Issuer: "private", Subject: githubSubject}}),
			client("ci.ghost", "ci", oauthv1.AuthFederatedJWT, &config.ClientAssertion{Federated: &config.FederatedBinding{
				Issuer: "gitlab", Subject: githubSubject}}),
			client("shop.unresolved", saNamespace, oauthv1.AuthFederatedJWT, &config.ClientAssertion{ServiceAccount: &config.ServiceAccountBinding{
				Namespace: saNamespace, Name: saName, Subject: config.ServiceAccountSubject(saNamespace, saName)}}),
		} {
			s.Clients = s.Clients.With(c)
		}
	})
	return f
}

func (f *assertionFixture) now() time.Time { return f.ts.clock.Now() }

func (f *assertionFixture) nextJTI() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jti++
	return fmt.Sprintf("jti-%d", f.jti)
}

// privateKeyJWT is a valid private_key_jwt assertion of shop.signer.
func (f *assertionFixture) privateKeyJWT() jwt.MapClaims {
	now := f.now()
	return jwt.MapClaims{"iss": pkjClientID, "sub": pkjClientID, "aud": f.ts.URL, "iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(), "jti": f.nextJTI()}
}

// serviceAccountToken is a projected token of shop/worker for this server.
func (f *assertionFixture) serviceAccountToken() jwt.MapClaims {
	now := f.now()
	return jwt.MapClaims{"iss": clusterIssuer, "sub": config.ServiceAccountSubject(saNamespace, saName), "aud": []string{f.ts.URL},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": f.nextJTI(),
		"kubernetes.io": map[string]any{"namespace": saNamespace, "serviceaccount": map[string]any{"name": saName, "uid": saUID},
			"pod": map[string]any{"name": "worker-7d9f", "uid": "0c1d"}}}
}

// githubToken is a GitHub Actions token for org/app on main.
func (f *assertionFixture) githubToken() jwt.MapClaims {
	now := f.now()
	return jwt.MapClaims{"iss": githubIssuer, "sub": githubSubject, "aud": f.ts.URL, "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "jti": f.nextJTI(), "repository": "org/app", "ref": "refs/heads/main"}
}

func (f *assertionFixture) eastToken() jwt.MapClaims {
	now := f.now()
	return jwt.MapClaims{"iss": eastIssuer, "sub": eastSubject, "aud": f.ts.URL, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
}

// post sends a form with the client assertion to an endpoint.
func (f *assertionFixture) post(t *testing.T, endpoint, clientID, assertion string, extra url.Values) (*http.Response, map[string]any) {
	t.Helper()
	form := url.Values{"client_assertion_type": {jwtBearerValue}, "client_assertion": {assertion}}
	if clientID != "" {
		form.Set("client_id", clientID)
	}
	for k, v := range extra {
		form[k] = v
	}
	resp, err := http.PostForm(f.ts.URL+endpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp, body
}

func (f *assertionFixture) token(t *testing.T, clientID, assertion string) (*http.Response, map[string]any) {
	t.Helper()
	return f.post(t, "/token", clientID, assertion, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}})
}

// lastEvent returns the newest security event line of event, checking
// that one was added since the last call for that event.
func (f *assertionFixture) lastEvent(t *testing.T, event string) map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "security event" && m["event"] == event {
			lines = append(lines, m)
		}
	}
	if len(lines) <= f.seen[event] {
		t.Fatalf("no new %s event", event)
	}
	f.seen[event] = len(lines)
	return lines[len(lines)-1]
}

// refused checks an invalid_client answer whose security event names
// reason.
func (f *assertionFixture) refused(t *testing.T, resp *http.Response, body map[string]any, reason string) {
	t.Helper()
	if resp.StatusCode != http.StatusBadRequest || body["error"] != ErrInvalidClient || body["error_description"] != "client authentication failed" {
		t.Fatalf("got %d %v, want 400 invalid_client \"client authentication failed\"", resp.StatusCode, body)
	}
	event := EventClientAuthFailed
	if reason == reasonAssertionReplay {
		event = EventClientAssertionReplay
	}
	if got := f.lastEvent(t, event)["reason"]; got != reason {
		t.Fatalf("security event reason %v, want %s", got, reason)
	}
}

func accepted(t *testing.T, resp *http.Response, body map[string]any) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("got %d %v, want a token", resp.StatusCode, body)
	}
}

// TestPrivateKeyJWTRules: one case per verification rule of a
// private_key_jwt assertion; each fails if its rule is removed.
func TestPrivateKeyJWTRules(t *testing.T) {
	f := newAssertionFixture(t)
	other := newJWTKey(t, "ES256", "signer-1") // same kid, not the client's key
	edit := func(fn func(c jwt.MapClaims)) jwt.MapClaims { c := f.privateKeyJWT(); fn(c); return c }

	resp, body := f.token(t, pkjClientID, f.client.sign(t, f.privateKeyJWT(), nil))
	accepted(t, resp, body)
	// No client_id: the client is the assertion's sub (RFC 7521 §4.2).
	resp, body = f.token(t, "", f.client.sign(t, f.privateKeyJWT(), nil))
	accepted(t, resp, body)
	// aud may be the token endpoint too (OpenID Connect Core §9).
	resp, body = f.token(t, pkjClientID, f.client.sign(t, edit(func(c jwt.MapClaims) { c["aud"] = f.ts.URL + "/token" }), nil))
	accepted(t, resp, body)

	cases := []struct {
		name      string
		clientID  string
		assertion string
		reason    string
	}{
		{"alg none", pkjClientID, unsignedJWT(t, map[string]any{"alg": "none", "kid": "signer-1"}, f.privateKeyJWT()), "assertion_algorithm"},
		{"alg HS256 keyed with the public key", pkjClientID, hs256WithPublicKey(t, f.client, f.privateKeyJWT()), "assertion_algorithm"},
		{"key source: another key with the client's kid", pkjClientID, other.sign(t, f.privateKeyJWT(), nil), "assertion_signature"},
		{"key source: a key the token brings", pkjClientID, other.sign(t, f.privateKeyJWT(), func(h map[string]any) {
			h["kid"] = "mine"
			h["jwk"] = map[string]any{"kty": "EC", "crv": "P-256"}
		}), "assertion_unknown_key"},
		{"aud another server", pkjClientID, f.client.sign(t, edit(func(c jwt.MapClaims) { c["aud"] = "https://other.example.com" }), nil), "assertion_audience"},
		{"aud the introspection endpoint", pkjClientID, f.client.sign(t, edit(func(c jwt.MapClaims) { c["aud"] = f.ts.URL + "/introspect" }), nil), "assertion_audience"},
		{"no exp", pkjClientID, f.client.sign(t, edit(func(c jwt.MapClaims) { delete(c, "exp") }), nil), "assertion_no_expiry"},
		{"expired", pkjClientID, f.client.sign(t, edit(func(c jwt.MapClaims) { c["exp"] = f.now().Add(-time.Minute).Unix() }), nil), "assertion_expired"},
		{"exp an hour away", pkjClientID, f.client.sign(t, edit(func(c jwt.MapClaims) { c["exp"] = f.now().Add(time.Hour).Unix() }), nil), "assertion_expires_too_late"},
		{"iss another client", pkjClientID, f.client.sign(t, edit(func(c jwt.MapClaims) { c["iss"] = saClientID }), nil), "assertion_issuer"},
		{"sub another client", pkjClientID, f.client.sign(t, edit(func(c jwt.MapClaims) { c["sub"] = saClientID }), nil), "assertion_subject"},
		{"no jti", pkjClientID, f.client.sign(t, edit(func(c jwt.MapClaims) { delete(c, "jti") }), nil), "assertion_no_jti"},
		{"the client's assertion for another client_id", saClientID, f.client.sign(t, f.privateKeyJWT(), nil), "assertion_unknown_key"},
		{"unknown client", "shop.nobody", f.client.sign(t, f.privateKeyJWT(), nil), "unknown_client"},
		{"a client with a secret", ccClientID, f.client.sign(t, f.privateKeyJWT(), nil), "wrong_method"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.token(t, tc.clientID, tc.assertion)
			f.refused(t, resp, body, tc.reason)
		})
	}

	t.Run("jti single use", func(t *testing.T) {
		assertion := f.client.sign(t, f.privateKeyJWT(), nil)
		resp, body := f.token(t, pkjClientID, assertion)
		accepted(t, resp, body)
		resp, body = f.token(t, pkjClientID, assertion)
		f.refused(t, resp, body, reasonAssertionReplay)
		if got := securityCount(t, f.ts, EventClientAssertionReplay); got != 1 {
			t.Errorf("replays counted: %v", got)
		}
		// A refused assertion does not use up its jti: fixed, the same
		// jti is accepted.
		c := f.privateKeyJWT()
		bad := jwt.MapClaims{}
		for k, v := range c {
			bad[k] = v
		}
		bad["aud"] = "https://other.example.com"
		resp, body = f.token(t, pkjClientID, f.client.sign(t, bad, nil))
		f.refused(t, resp, body, "assertion_audience")
		resp, body = f.token(t, pkjClientID, f.client.sign(t, c, nil))
		accepted(t, resp, body)
	})
}

// TestServiceAccountTokenRules: one case per rule of a ServiceAccount
// client's projected token.
func TestServiceAccountTokenRules(t *testing.T) {
	f := newAssertionFixture(t)
	edit := func(fn func(c jwt.MapClaims)) jwt.MapClaims { c := f.serviceAccountToken(); fn(c); return c }
	good := f.cluster.sign(t, f.serviceAccountToken(), nil)
	resp, body := f.token(t, saClientID, good)
	accepted(t, resp, body)
	// A pod reuses its projected token until the kubelet replaces it.
	resp, body = f.token(t, saClientID, good)
	accepted(t, resp, body)
	var claims map[string]any
	parseUnverified(t, body["access_token"].(string), &claims)
	if claims["sub"] != "client:"+saClientID || claims["client_id"] != saClientID {
		t.Errorf("access token claims %v", claims)
	}

	otherCluster := newJWTKey(t, "RS256", "cluster-sa-1")
	cases := []struct {
		name, clientID, token, reason string
	}{
		{"another cluster's key", saClientID, otherCluster.sign(t, f.serviceAccountToken(), nil), "assertion_signature"},
		{"iss another issuer", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) { c["iss"] = "https://other-cluster.example.com" }), nil), "assertion_issuer"},
		{"aud another audience", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) { c["aud"] = []string{"https://kubernetes.default.svc"} }), nil), "assertion_audience"},
		{"aud the token endpoint", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) { c["aud"] = f.ts.URL + "/token" }), nil), "assertion_audience"},
		{"sub another ServiceAccount", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) {
			c["sub"] = config.ServiceAccountSubject(saNamespace, "default")
		}), nil), "assertion_subject"},
		{"sub the same name in another namespace", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) {
			c["sub"] = config.ServiceAccountSubject("other", saName)
		}), nil), "assertion_subject"},
		{"expired", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) {
			c["iat"], c["nbf"], c["exp"] = f.now().Add(-20*time.Minute).Unix(), f.now().Add(-20*time.Minute).Unix(), f.now().Add(-10*time.Minute).Unix()
		}), nil), "assertion_expired"},
		{"no exp (a legacy Secret token)", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) { delete(c, "exp") }), nil), "assertion_no_expiry"},
		{"a year-long token", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) { c["exp"] = f.now().Add(365 * 24 * time.Hour).Unix() }), nil), "assertion_lifetime"},
		{"no iat", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) { delete(c, "iat") }), nil), "assertion_lifetime"},
		{"ServiceAccount re-created (another UID)", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) {
			c["kubernetes.io"] = map[string]any{"namespace": saNamespace, "serviceaccount": map[string]any{"name": saName, "uid": "8c7d-recreated"}}
		}), nil), reasonSAUID},
		{"no kubernetes.io claims", saClientID, f.cluster.sign(t, edit(func(c jwt.MapClaims) { delete(c, "kubernetes.io") }), nil), reasonSAUID},
		{"UID not resolved yet", "shop.unresolved", good, reasonSAUID},
		{"alg none", saClientID, unsignedJWT(t, map[string]any{"alg": "none", "kid": "cluster-sa-1"}, f.serviceAccountToken()), "assertion_algorithm"},
		{"the token of a ServiceAccount for another client", fedClientID, good, "assertion_unknown_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.token(t, tc.clientID, tc.token)
			f.refused(t, resp, body, tc.reason)
		})
	}

	t.Run("without the cluster's issuer", func(t *testing.T) {
		f.ts.srv.saIssuer = nil
		defer func() { f.ts.srv.saIssuer = &saIssuer{Static: f.cluster.static(t), issuer: clusterIssuer} }()
		resp, body := f.token(t, saClientID, good)
		f.refused(t, resp, body, reasonNoSAIssuer)
	})
	t.Run("the lifetime cap is the server's", func(t *testing.T) {
		f.ts.update(func(s *config.Snapshot) { s.ServiceAccountTokenMaxLifetime = 5 * time.Minute })
		resp, body := f.token(t, saClientID, f.cluster.sign(t, f.serviceAccountToken(), nil))
		f.refused(t, resp, body, "assertion_lifetime")
	})
}

// TestFederatedTokenRules: trusted issuers' tokens.
func TestFederatedTokenRules(t *testing.T) {
	f := newAssertionFixture(t)
	edit := func(fn func(c jwt.MapClaims)) jwt.MapClaims { c := f.githubToken(); fn(c); return c }
	resp, body := f.token(t, fedClientID, f.github.sign(t, f.githubToken(), nil))
	accepted(t, resp, body)

	cases := []struct {
		name, clientID, token, reason string
	}{
		{"another branch", fedClientID, f.github.sign(t, edit(func(c jwt.MapClaims) { c["ref"] = "refs/heads/feature" }), nil), reasonClaimMismatch},
		{"claim missing", fedClientID, f.github.sign(t, edit(func(c jwt.MapClaims) { delete(c, "repository") }), nil), reasonClaimMismatch},
		{"claim not a string", fedClientID, f.github.sign(t, edit(func(c jwt.MapClaims) { c["repository"] = []string{"org/app"} }), nil), reasonClaimMismatch},
		{"another repository's subject", fedClientID, f.github.sign(t, edit(func(c jwt.MapClaims) { c["sub"] = "repo:org/other:ref:refs/heads/main" }), nil), "assertion_subject"},
		{"subject prefix", fedClientID, f.github.sign(t, edit(func(c jwt.MapClaims) { c["sub"] = githubSubject + "x" }), nil), "assertion_subject"},
		{"another issuer's key", fedClientID, f.east.sign(t, f.githubToken(), func(h map[string]any) { h["kid"] = "gh-1" }), "assertion_algorithm"},
		{"aud not this server", fedClientID, f.github.sign(t, edit(func(c jwt.MapClaims) { c["aud"] = "https://github.com/org" }), nil), "assertion_audience"},
		{"no jti for a single-use issuer", fedClientID, f.github.sign(t, edit(func(c jwt.MapClaims) { delete(c, "jti") }), nil), "assertion_no_jti"},
		{"lifetime over the issuer's cap", fedClientID, f.github.sign(t, edit(func(c jwt.MapClaims) {
			c["iat"] = f.now().Add(-2 * time.Hour).Unix()
		}), nil), "assertion_lifetime"},
		{"issuer that does not admit the namespace", "ci.private", f.github.sign(t, f.githubToken(), nil), reasonIssuerNotAllowed},
		{"issuer the server does not trust", "ci.ghost", f.github.sign(t, f.githubToken(), nil), reasonUnknownIssuer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.token(t, tc.clientID, tc.token)
			f.refused(t, resp, body, tc.reason)
		})
	}
	t.Run("single use", func(t *testing.T) {
		tok := f.github.sign(t, f.githubToken(), nil)
		resp, body := f.token(t, fedClientID, tok)
		accepted(t, resp, body)
		resp, body = f.token(t, fedClientID, tok)
		f.refused(t, resp, body, reasonAssertionReplay)
	})
	t.Run("until expiry", func(t *testing.T) {
		tok := f.east.sign(t, f.eastToken(), nil)
		for range 2 {
			resp, body := f.token(t, syncClientID, tok)
			accepted(t, resp, body)
		}
	})
}

// Introspection and revocation authenticate clients the same way.
func TestClientAssertionAtIntrospectionAndRevocation(t *testing.T) {
	f := newAssertionFixture(t)
	resp, body := f.token(t, saClientID, f.cluster.sign(t, f.serviceAccountToken(), nil))
	accepted(t, resp, body)
	at := body["access_token"].(string)

	resp, body = f.post(t, "/introspect", pkjClientID, f.client.sign(t, f.privateKeyJWT(), nil), url.Values{"token": {at}})
	if resp.StatusCode != http.StatusOK || body["active"] != true {
		t.Fatalf("introspection with private_key_jwt: %d %v", resp.StatusCode, body)
	}
	resp, body = f.post(t, "/introspect", saClientID, f.cluster.sign(t, f.serviceAccountToken(), nil), url.Values{"token": {at}})
	if resp.StatusCode != http.StatusOK || body["active"] != true {
		t.Fatalf("introspection with a service-account token: %d %v", resp.StatusCode, body)
	}
	resp, body = f.post(t, "/introspect", pkjClientID, f.client.sign(t, jwt.MapClaims{"iss": pkjClientID, "sub": pkjClientID}, nil), url.Values{"token": {at}})
	f.refused(t, resp, body, "assertion_audience")

	resp, _ = f.post(t, "/revoke", saClientID, f.cluster.sign(t, f.serviceAccountToken(), nil), url.Values{"token": {at}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation: %d", resp.StatusCode)
	}
	resp, body = f.post(t, "/introspect", saClientID, f.cluster.sign(t, f.serviceAccountToken(), nil), url.Values{"token": {at}})
	if resp.StatusCode != http.StatusOK || body["active"] != false {
		t.Fatalf("introspection after revocation: %d %v", resp.StatusCode, body)
	}
}

// A client assertion is the one credential of its request (RFC 6749
// §2.3), and secret clients cannot use one nor assertion clients a secret.
func TestClientAssertionRequestShape(t *testing.T) {
	f := newAssertionFixture(t)
	assertion := f.client.sign(t, f.privateKeyJWT(), nil)
	post := func(form url.Values, basic bool) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, f.ts.URL+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(pkjClientID, "x")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	base := func() url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {jwtBearerValue}, "client_assertion": {assertion}}
	}
	for _, tc := range []struct {
		name  string
		form  func(v url.Values)
		basic bool
		want  string
	}{
		{"with HTTP Basic", nil, true, ErrInvalidRequest},
		{"with client_secret", func(v url.Values) { v.Set("client_secret", "x") }, false, ErrInvalidRequest},
		{"without a type", func(v url.Values) { v.Del("client_assertion_type") }, false, ErrInvalidRequest},
		{"without an assertion", func(v url.Values) { v.Del("client_assertion") }, false, ErrInvalidRequest},
		{"SAML type", func(v url.Values) {
			v.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		}, false, ErrInvalidClient},
		{"not a JWT and no client_id", func(v url.Values) { v.Set("client_assertion", "opaque") }, false, ErrInvalidClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := base()
			if tc.form != nil {
				tc.form(form)
			}
			resp, body := post(form, tc.basic)
			if body["error"] != tc.want || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("got %d %v, want %s", resp.StatusCode, body, tc.want)
			}
		})
	}
	t.Run("assertion client with a secret", func(t *testing.T) {
		resp, body := post(url.Values{"grant_type": {"client_credentials"}, "client_id": {pkjClientID}, "client_secret": {"anything"}}, false)
		f.refused(t, resp, body, "wrong_method")
	})
}

func unsignedJWT(t testing.TB, header map[string]any, c jwt.MapClaims) string {
	t.Helper()
	h, _ := json.Marshal(header)
	b, _ := json.Marshal(c)
	return b64url(h) + "." + b64url(b) + "."
}

func hs256WithPublicKey(t testing.TB, k *jwtKey, c jwt.MapClaims) string {
	t.Helper()
	pub, _ := json.Marshal(k.priv.Public())
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(pub)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// parseUnverified decodes a JWT's payload into v.
func parseUnverified(t testing.TB, token string, v any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
