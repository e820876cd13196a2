package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
)

// Clients without a secret (issue 20), measured beside client_credentials
// with client_secret_basic: the same grant and scope, authenticated by a
// service-account token of the dev control plane (reused, as a pod reuses
// its projected token) or by a private_key_jwt assertion signed afresh for
// every request (each is single-use), with an ES256, RS256 or EdDSA key.
const (
	flowCCServiceAccount = "client_credentials_sa"
	flowCCPrivateKeyJWT  = "client_credentials_private_key_jwt" // ES256
	benchSAClient        = "bench-sa"
	benchSignerClient    = "bench-signer"

	flowCCPrivateKeyJWTRS256 = "client_credentials_private_key_jwt_rs256"
	flowCCPrivateKeyJWTEdDSA = "client_credentials_private_key_jwt_eddsa"
)

func init() {
	flowTable[flowCCServiceAccount] = flow{
		setup: func(ctx context.Context, e *env, _ *worker) error { return e.secretlessClients(ctx) },
		op: func(ctx context.Context, e *env, w *worker) error {
			_, err := w.token(ctx, e, e.saForm())
			return err
		},
		lean: &leanFlow{request: func(e *env, _ *worker) ([]byte, error) {
			return e.leanPostAssertion(e.saForm())
		}, want: http.StatusOK, check: contains(`"access_token":"`)},
	}
	for flowName, alg := range privateKeyJWTFlows {
		flowTable[flowName] = flow{
			setup: func(ctx context.Context, e *env, _ *worker) error {
				if err := e.secretlessClients(ctx); err != nil {
					return err
				}
				return e.fillAssertions(alg)
			},
			op: func(ctx context.Context, e *env, w *worker) error {
				form, err := e.assertionForm(alg)
				if err != nil {
					return err
				}
				_, err = w.token(ctx, e, form)
				return err
			},
			lean: &leanFlow{request: func(e *env, _ *worker) ([]byte, error) {
				form, err := e.assertionForm(alg)
				if err != nil {
					return nil, err
				}
				return e.leanPostAssertion(form)
			}, rebuild: true, want: http.StatusOK, check: contains(`"access_token":"`)},
		}
	}
}

// privateKeyJWTFlows are the private_key_jwt flows by the algorithm of
// their client's key: the server's cost is mostly the assertion's
// signature check, which differs by algorithm.
var privateKeyJWTFlows = map[string]string{
	flowCCPrivateKeyJWT:      "ES256",
	flowCCPrivateKeyJWTRS256: "RS256",
	flowCCPrivateKeyJWTEdDSA: "EdDSA",
}

// assertionSigner is a private_key_jwt client's key pair.
type assertionSigner struct {
	client string // client_id
	kid    string
	key    crypto.Signer
	method jwt.SigningMethod
}

// secretless holds what the flows send.
type secretless struct {
	once     sync.Once
	err      error
	saClient string // client_id
	saToken  string
	signers  map[string]*assertionSigner // by algorithm
	pools    map[string]*assertionPool   // by algorithm (assertions.go)
	audience string
}

// secretlessClients registers, once, a ServiceAccount client and a
// private_key_jwt client per algorithm next to the demo client (same
// server, same scope), waits until all are Ready, and asks the control plane for the
// ServiceAccount's token with the issuer as audience.
func (e *env) secretlessClients(ctx context.Context) error {
	s := &e.secretless
	s.once.Do(func() { s.err = e.setupSecretless(ctx) })
	return s.err
}

func (e *env) setupSecretless(ctx context.Context) error {
	s := &e.secretless
	c, err := e.kubeClient()
	if err != nil {
		return err
	}
	ns := devenv.Namespace
	cc := []oauthv1.GrantType{oauthv1.GrantClientCredentials}
	scopes := []oauthv1.ScopeName{"orders:read"}
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: benchSAClient}},
		&oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: benchSAClient}, Spec: oauthv1.OAuthClientSpec{
			ServerRef: oauthv1.ServerReference{Name: devenv.Server}, GrantTypes: cc, Scopes: scopes,
			Authentication: &oauthv1.ClientAuthentication{ServiceAccount: &oauthv1.ServiceAccountAuthentication{Name: benchSAClient}}}},
	}
	names := []string{benchSAClient}
	s.signers, s.pools = map[string]*assertionSigner{}, map[string]*assertionPool{}
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		name := benchSignerClient
		if alg != "ES256" {
			name += "-" + strings.ToLower(alg)
		}
		sg, jwk, err := newAssertionSigner(alg, ns+"."+name)
		if err != nil {
			return err
		}
		s.signers[alg], s.pools[alg] = sg, &assertionPool{}
		names = append(names, name)
		objs = append(objs, &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: oauthv1.OAuthClientSpec{
			ServerRef: oauthv1.ServerReference{Name: devenv.Server}, GrantTypes: cc, Scopes: scopes,
			Authentication: &oauthv1.ClientAuthentication{PrivateKeyJWT: &oauthv1.PrivateKeyJWTAuthentication{Keys: []oauthv1.JSONWebKey{jwk}}}}})
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	for _, name := range names {
		if err := waitClientReady(ctx, c, ns, name); err != nil {
			return err
		}
	}
	s.saClient = ns + "." + benchSAClient
	s.audience = e.demo["GATEHOUSE_ISSUER"]
	cfg, err := clientcmd.BuildConfigFromFlags("", e.demo["KUBECONFIG"])
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, benchSAClient, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{s.audience}, ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting the ServiceAccount's token: %w", err)
	}
	s.saToken = tr.Status.Token
	// The server under test learns of the clients through its watch.
	time.Sleep(time.Second)
	progress("clients without a secret: %s (ServiceAccount %s) and %s, %s, %s (private_key_jwt, ES256, RS256, EdDSA)",
		s.saClient, benchSAClient, s.signers["ES256"].client, s.signers["RS256"].client, s.signers["EdDSA"].client)
	return nil
}

// newAssertionSigner makes a key pair for a private_key_jwt client under
// alg (RSA of 2048 bits, the smallest the server accepts) and its public
// JWK for the OAuthClient.
func newAssertionSigner(alg, clientID string) (*assertionSigner, oauthv1.JSONWebKey, error) {
	sg := &assertionSigner{client: clientID, kid: "bench-" + strings.ToLower(alg)}
	var err error
	switch alg {
	case "ES256":
		sg.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sg.method = jwt.SigningMethodES256
	case "RS256":
		sg.key, err = rsa.GenerateKey(rand.Reader, jwtverify.MinRSABits)
		sg.method = jwt.SigningMethodRS256
	case "EdDSA":
		_, sg.key, err = ed25519.GenerateKey(rand.Reader)
		sg.method = jwt.SigningMethodEdDSA
	}
	if err != nil {
		return nil, oauthv1.JSONWebKey{}, err
	}
	k, err := jwtverify.NewKey(sg.kid, sg.key.Public())
	if err != nil {
		return nil, oauthv1.JSONWebKey{}, err
	}
	j := k.JWK()
	return sg, oauthv1.JSONWebKey{Kty: j.Kty, Kid: j.Kid, Crv: j.Crv, X: j.X, Y: j.Y, N: j.N, E: j.E}, nil
}

func waitClientReady(ctx context.Context, c client.Client, ns, name string) error {
	for began := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		oc := &oauthv1.OAuthClient{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, oc); err != nil {
			return err
		}
		if meta.IsStatusConditionTrue(oc.Status.Conditions, oauthv1.ConditionReady) {
			return nil
		}
		if time.Since(began) > time.Minute {
			cond := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady)
			return fmt.Errorf("OAuthClient %s is not Ready: %+v", name, cond)
		}
	}
}

func (e *env) saForm() url.Values {
	s := &e.secretless
	return url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}, "client_id": {s.saClient},
		"client_assertion_type": {oauthv1.ClientAssertionTypeJWTBearer}, "client_assertion": {s.saToken}}
}

// assertionLifetime: long enough for an assertion signed ahead (pool) to
// be used within the flow's run, within the server's 5-minute limit.
const assertionLifetime = 3 * time.Minute

// signerForm is a token request with a new private_key_jwt assertion
// signed with the alg client's key.
func (e *env) signerForm(alg string) (url.Values, error) {
	s := &e.secretless
	sg := s.signers[alg]
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	now := time.Now()
	tok := jwt.NewWithClaims(sg.method, jwt.MapClaims{"iss": sg.client, "sub": sg.client, "aud": s.audience,
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(), "jti": hex.EncodeToString(jti)})
	tok.Header["kid"] = sg.kid
	a, err := tok.SignedString(sg.key)
	if err != nil {
		return nil, err
	}
	return url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}, "client_id": {sg.client},
		"client_assertion_type": {oauthv1.ClientAssertionTypeJWTBearer}, "client_assertion": {a}}, nil
}

// leanPostAssertion is a form POST that carries its own client
// authentication (no Authorization header).
func (e *env) leanPostAssertion(form url.Values) ([]byte, error) {
	return buildRequest(http.MethodPost, e.endpoints().Token, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
}

// clusterKeyFetches reads how often the server under test has fetched the
// cluster's service-account issuer keys; false when it does not say.
func (e *env) clusterKeyFetches(ctx context.Context) (float64, bool) {
	if e.metricsURL == "" || e.product != "gatehouse" {
		return 0, false
	}
	names := []string{`gatehouse_server_key_fetches_total{key_set="kubernetes",outcome="success"}`,
		`gatehouse_server_key_fetches_total{key_set="kubernetes",outcome="error"}`}
	m, err := scrapeMetrics(ctx, e.metricsURL, names...)
	if err != nil || len(m) == 0 {
		return 0, false
	}
	return m[names[0]] + m[names[1]], true
}
