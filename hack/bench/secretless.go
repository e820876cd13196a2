package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
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
)

// Clients without a secret (issue 20), measured beside client_credentials
// with client_secret_basic: the same grant and scope, authenticated by a
// service-account token of the dev control plane (reused, as a pod reuses
// its projected token) or by a private_key_jwt assertion signed afresh for
// every request (each is single-use).
const (
	flowCCServiceAccount = "client_credentials_sa"
	flowCCPrivateKeyJWT  = "client_credentials_private_key_jwt"
	benchSAClient        = "bench-sa"
	benchSignerClient    = "bench-signer"
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
	flowTable[flowCCPrivateKeyJWT] = flow{
		setup: func(ctx context.Context, e *env, _ *worker) error { return e.secretlessClients(ctx) },
		op: func(ctx context.Context, e *env, w *worker) error {
			form, err := e.signerForm()
			if err != nil {
				return err
			}
			_, err = w.token(ctx, e, form)
			return err
		},
		lean: &leanFlow{request: func(e *env, _ *worker) ([]byte, error) {
			form, err := e.signerForm()
			if err != nil {
				return nil, err
			}
			return e.leanPostAssertion(form)
		}, rebuild: true, want: http.StatusOK, check: contains(`"access_token":"`)},
	}
}

// secretless holds what the two flows send.
type secretless struct {
	once     sync.Once
	err      error
	saClient string // client_id
	saToken  string
	signer   string // client_id
	key      *ecdsa.PrivateKey
	audience string
}

// secretlessClients registers, once, a ServiceAccount client and a
// private_key_jwt client next to the demo client (same server, same
// scope), waits until both are Ready, and asks the control plane for the
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
	if s.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return err
	}
	raw, err := s.key.PublicKey.Bytes()
	if err != nil {
		return err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	cc := []oauthv1.GrantType{oauthv1.GrantClientCredentials}
	scopes := []oauthv1.ScopeName{"orders:read"}
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: benchSAClient}},
		&oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: benchSAClient}, Spec: oauthv1.OAuthClientSpec{
			ServerRef: oauthv1.ServerReference{Name: devenv.Server}, GrantTypes: cc, Scopes: scopes,
			Authentication: &oauthv1.ClientAuthentication{ServiceAccount: &oauthv1.ServiceAccountAuthentication{Name: benchSAClient}}}},
		&oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: benchSignerClient}, Spec: oauthv1.OAuthClientSpec{
			ServerRef: oauthv1.ServerReference{Name: devenv.Server}, GrantTypes: cc, Scopes: scopes,
			Authentication: &oauthv1.ClientAuthentication{PrivateKeyJWT: &oauthv1.PrivateKeyJWTAuthentication{Keys: []oauthv1.JSONWebKey{{
				Kty: "EC", Crv: "P-256", Kid: "bench-1", X: b64(raw[1:33]), Y: b64(raw[33:])}}}}}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	for _, name := range []string{benchSAClient, benchSignerClient} {
		if err := waitClientReady(ctx, c, ns, name); err != nil {
			return err
		}
	}
	s.saClient, s.signer = ns+"."+benchSAClient, ns+"."+benchSignerClient
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
	progress("clients without a secret: %s (ServiceAccount %s) and %s (private_key_jwt, ES256)", s.saClient, benchSAClient, s.signer)
	return nil
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

// signerForm is a token request with a new private_key_jwt assertion.
func (e *env) signerForm() (url.Values, error) {
	s := &e.secretless
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": s.signer, "sub": s.signer, "aud": s.audience,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": hex.EncodeToString(jti)})
	tok.Header["kid"] = "bench-1"
	a, err := tok.SignedString(s.key)
	if err != nil {
		return nil, err
	}
	return url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}, "client_id": {s.signer},
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
