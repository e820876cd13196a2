package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/servingcert"
	"github.com/gatehouse-dev/gatehouse/internal/testlogin"
)

// The relying-party tests' Gatehouse: a second AuthorizationServer with an
// https issuer (kube-apiserver accepts no other), served by `gatehouse
// server` with a certificate from a local CA, and people in groups.
const (
	rpServer       = "gatehouse-tls"
	rpUsersSecret  = "rp-users"
	rpClusterLogin = "cluster-login" // public client, as kubectl's login plugin
	// rpOtherAudience is another public client: its ID tokens are for it,
	// not for a cluster.
	rpOtherAudience = "other-app"
	rpGroupOps      = "ops"
	rpUserOps       = "alice" // in group ops
	rpUserSales     = "bob"   // in group sales only
	// rpUserGuest is in no team: the cluster's login rule refuses her.
	rpUserGuest = "carol"
)

// rpEnv is the running https Gatehouse of the relying-party tests.
type rpEnv struct {
	issuer    string
	ca        *servingcert.CA
	transport http.RoundTripper // trusts ca
	password  string            // every rp user's
	// spki is the base64 SHA-256 of the serving certificate's public key,
	// for Chromium's --ignore-certificate-errors-spki-list: it trusts that
	// key and nothing else.
	spki    string
	metrics string // the server's /metrics
}

var (
	rpOnce   sync.Once
	rpShared *rpEnv
	rpErr    error
)

// rp starts the relying parties' Gatehouse once for all tests that need
// it, or ends the test. Local mode only: in real-cluster mode the token
// server is the deployed one.
func (s *suite) rp(t *testing.T) *rpEnv {
	t.Helper()
	if !s.local {
		t.Skip("the relying-party tests start their own https token server: local mode only")
	}
	rpOnce.Do(func() {
		began := time.Now()
		rpShared, rpErr = s.startRP()
		progress("relying parties' https Gatehouse up in %s (%v)", time.Since(began).Round(100*time.Millisecond), rpErr)
	})
	if rpErr != nil {
		t.Fatalf("the https Gatehouse: %v", rpErr)
	}
	return rpShared
}

func (s *suite) startRP() (*rpEnv, error) {
	dir := filepath.Join(s.logDir, "rp-tls")
	ca, err := servingcert.EnsureCA(dir)
	if err != nil {
		return nil, err
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := ca.Issue(certFile, keyFile, []string{"127.0.0.1"}, time.Hour); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	rp := &rpEnv{issuer: fmt.Sprintf("https://127.0.0.1:%d", port), ca: ca, password: s.password,
		transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	hash, err := bcrypt.GenerateFromPassword([]byte(rp.password), 10)
	if err != nil {
		return nil, err
	}
	if err := s.applyRPObjects(rp.issuer, string(hash)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: rpServer}}
	if err := waitCondition(ctx, s.c, srv, "KeysReady"); err != nil {
		return nil, err
	}
	metrics, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := s.start("server-tls", filepath.Join(s.logDir, "bin", "gatehouse"), "server", "--authorization-server", s.ns+"/"+rpServer,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", metrics),
		"--tls-cert-file", certFile, "--tls-key-file", keyFile); err != nil {
		return nil, err
	}
	rp.metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)
	if rp.spki, err = spkiHash(certFile); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", metrics)); err != nil {
		return nil, fmt.Errorf("gatehouse server over TLS: %w", err)
	}
	for _, name := range []string{rpClusterLogin, rpOtherAudience} {
		oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name}}
		if err := waitCondition(ctx, s.c, oc, oauthv1.ConditionReady); err != nil {
			return nil, err
		}
	}
	return rp, nil
}

// applyRPObjects applies the server, its people and the cluster-login
// client with kubectl, as a platform team would.
func (s *suite) applyRPObjects(issuer, hash string) error {
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: %[1]s}
stringData:
  users.yaml: |
    users:
    - {username: %[2]s, passwordHash: %[4]q, email: %[2]s@example.com, emailVerified: true, name: Alice Example, groups: [%[5]s, everyone]}
    - {username: %[3]s, passwordHash: %[4]q, email: %[3]s@example.com, emailVerified: true, name: Bob Example, groups: [sales, everyone]}
    - {username: %[8]s, passwordHash: %[4]q, email: %[8]s@example.com, emailVerified: true, name: Carol Example, groups: [contractors, everyone]}
---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: AuthorizationServer
metadata: {name: %[6]s}
spec:
  issuer: %[7]s
  users: {secretRef: {name: %[1]s}}
  tls: {secretRef: {name: %[6]s-cert}}
  # The cluster sees the teams only, as team-<group> (kube-apiserver adds
  # its gatehouse: prefix); every other client sees the groups as they are.
  claimMapping:
    groups: 'client.id.endsWith(".%[9]s") ? user.groups.filter(g, g in ["%[5]s", "sales"]).map(g, "team-" + g) : user.groups'
`, rpUsersSecret, rpUserOps, rpUserSales, hash, rpGroupOps, rpServer, issuer, rpUserGuest, rpClusterLogin)
	for _, name := range []string{rpClusterLogin, rpOtherAudience} {
		rules := ""
		if name == rpClusterLogin {
			// The client's rule reads the server's mapped groups.
			rules = `
  claimMapping:
    loginRules:
    - {expression: 'user.groups.exists(g, g.startsWith("team-"))', message: Only team members may use the cluster.}`
		}
		manifest += fmt.Sprintf(`---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: %s}
spec:
  serverRef: {name: %s}
  clientType: public
  tokenEndpointAuthMethod: none
  grantTypes: [authorization_code, refresh_token]
  redirectURIs: ["http://127.0.0.1/callback"]
  scopes: [openid, profile, email, groups, offline_access]%s
`, name, rpServer, rules)
	}
	return s.applyManifest(manifest)
}

// clientID is an OAuthClient's client_id in the suite's namespace.
func (s *suite) clientID(name string) string { return s.ns + "." + name }

// idToken signs user in through the login and consent pages (testlogin,
// the HTTP client playing the browser) as the public client, and returns
// the ID token of the code exchange.
func (rp *rpEnv) idToken(ctx context.Context, clientID, user string) (string, error) {
	cfg := oauth2.Config{ClientID: clientID, RedirectURL: "http://127.0.0.1:1/callback",
		Endpoint: oauth2.Endpoint{AuthURL: rp.issuer + "/authorize", TokenURL: rp.issuer + "/token", AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"openid", "profile", "email", "groups"}}
	verifier, state := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", oauth2.GenerateVerifier()))
	b, err := testlogin.New(rp.issuer, rp.transport)
	if err != nil {
		return "", err
	}
	back, err := b.SignIn(ctx, authURL, user, rp.password)
	if err != nil {
		return "", err
	}
	q := back.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		return "", fmt.Errorf("redirect back %s", redactCode(back))
	}
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: rp.transport}), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return "", err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("no id_token in the token response")
	}
	return raw, nil
}

func redactCode(u *url.URL) string {
	c := *u
	q := c.Query()
	if q.Has("code") {
		q.Set("code", "REDACTED")
	}
	c.RawQuery = q.Encode()
	return c.String()
}

func spkiHash(certFile string) (string, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", errors.New(certFile + ": not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}
