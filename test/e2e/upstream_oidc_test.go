package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// fedServer is one of the two Gatehouses of the federation test, run as
// its own `gatehouse server` process.
type fedServer struct {
	ns, name, issuer string
}

// startFedServer waits for the AuthorizationServer's keys and starts its
// token server on port, answering as issuer.
func (s *suite) startFedServer(ctx context.Context, fs fedServer, port int) error {
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: fs.ns, Name: fs.name}}
	if err := waitCondition(ctx, s.c, srv, "KeysReady"); err != nil {
		return err
	}
	metrics, err := freePort()
	if err != nil {
		return err
	}
	if err := s.start("server-"+fs.ns, filepath.Join(s.logDir, "bin", "gatehouse"), "server", "--authorization-server", fs.ns+"/"+fs.name,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", metrics)); err != nil {
		return err
	}
	return waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", metrics))
}

// TestUpstreamOIDCFederation: Gatehouse A logs people in at Gatehouse B,
// a second Gatehouse in its own namespace and process, as an upstream
// OpenID Provider. Headless Chromium goes app → A's login page → the
// "Sign in with" button → B's login and consent → back to A's consent →
// app, and the groups B holds for alice are in A's ID token. A is on
// 127.0.0.1 and B on localhost: browsers keep cookies by host, not port.
func TestUpstreamOIDCFederation(t *testing.T) {
	s := get(t)
	if !s.local {
		t.Skip("local mode only: the test runs the second Gatehouse as a process on this machine")
	}
	browser := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	portA, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	portB, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	a := fedServer{ns: "fed-a", name: "gatehouse", issuer: fmt.Sprintf("http://127.0.0.1:%d", portA)}
	b := fedServer{ns: "fed-b", name: "upstream", issuer: fmt.Sprintf("http://localhost:%d", portB)}
	cb, err := newCallbackServer()
	if err != nil {
		t.Fatal(err)
	}
	defer cb.close()
	password := "alice-at-b-" + fmt.Sprint(time.Now().UnixNano())
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), 10)
	hashB, _ := bcrypt.GenerateFromPassword([]byte("bob-at-a-"+password), 10)

	// B: alice with groups, and A registered as its client.
	s.applyFile(t, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Secret
metadata: {name: users, namespace: %[1]s}
stringData:
  users.yaml: |
    users:
    - username: alice
      passwordHash: %[3]q
      email: alice@corp.example
      emailVerified: true
      groups: [platform, "team:orders"]
---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: AuthorizationServer
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  issuer: %[4]s
  users: {secretRef: {name: users}}
---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: gatehouse-a, namespace: %[1]s}
spec:
  serverRef: {name: %[2]s}
  displayName: Gatehouse A
  redirectURIs: [%[5]q]
  # offline_access: A asks for it, to re-check its people at refresh
  # (docs/tutorials/identity-providers.md).
  scopes: [openid, profile, email, groups, offline_access]
  secretName: gatehouse-a-credentials
`, b.ns, b.name, hash, b.issuer, a.issuer+"/login/callback"))
	if err := s.startFedServer(ctx, b, portB); err != nil {
		t.Fatal(err)
	}
	upstreamClient := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: "gatehouse-a"}}
	if err := waitCondition(ctx, s.c, upstreamClient, oauthv1.ConditionReady); err != nil {
		t.Fatal(err)
	}
	creds := s.secretIn(t, b.ns, "gatehouse-a-credentials")

	// A: its own users Secret (so the page has a form and a button), the
	// upstream, and an app.
	s.applyFile(t, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Secret
metadata: {name: users, namespace: %[1]s}
stringData:
  users.yaml: |
    users:
    - {username: bob, passwordHash: %[3]q}
---
apiVersion: v1
kind: Secret
metadata: {name: corp-sso, namespace: %[1]s}
stringData: {client-secret: %[6]q}
---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: AuthorizationServer
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  issuer: %[4]s
  users: {secretRef: {name: users}}
  identityProviders:
  - name: corp
    displayName: Corp SSO
    oidc:
      issuer: %[7]s
      clientID: %[5]s
      clientSecretRef: {name: corp-sso, key: client-secret}
      scopes: [openid, profile, email, groups]
---
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: app, namespace: %[1]s}
spec:
  serverRef: {name: %[2]s}
  redirectURIs: [%[8]q]
  scopes: [openid, profile, email, groups]
  secretName: app-credentials
`, a.ns, a.name, hashB, a.issuer, creds[oauthv1.SecretKeyClientID], creds[oauthv1.SecretKeyClientSecret], b.issuer, cb.url))
	if err := s.startFedServer(ctx, a, portA); err != nil {
		t.Fatal(err)
	}
	app := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "app"}}
	if err := waitCondition(ctx, s.c, app, oauthv1.ConditionReady); err != nil {
		t.Fatal(err)
	}
	// The operator's check of the provider: B answers discovery and takes
	// A's credentials (checked again once A's spec changes; poke it).
	srvA := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: a.name}}
	s.kubectlT(t, "annotate", "-n", a.ns, "authorizationserver", a.name, "--overwrite", "e2e.gatehouse.dev/poke="+fmt.Sprint(time.Now().UnixNano()))
	if err := waitCondition(ctx, s.c, srvA, "IdentityProvider-corp"); err != nil {
		t.Fatal(err)
	}

	appSec := s.secretIn(t, a.ns, "app-credentials")
	provider, err := oidc.NewProvider(ctx, a.issuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := oauth2.Config{ClientID: appSec[oauthv1.SecretKeyClientID], ClientSecret: appSec[oauthv1.SecretKeyClientSecret],
		Endpoint: provider.Endpoint(), RedirectURL: cb.url, Scopes: []string{"openid", "profile", "email", "groups"}}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("fed-state", oauth2.S256ChallengeOption(verifier), oidc.Nonce("fed-nonce"))

	bctx, done := fedChromium(t, ctx, browser)
	defer done()
	err = chromedp.Do(bctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(chromedp.CSS("#upstream-corp")),
		chromedp.WaitVisible(chromedp.CSS("#username")), // A's own form, beside the button
	)
	var buttonText, consentA string
	if err == nil {
		buttonText, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#upstream-corp")))
	}
	if err == nil {
		err = chromedp.Do(bctx,
			chromedp.Click(chromedp.CSS("#upstream-corp")),
			// B's login page.
			chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
			chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.Submit(chromedp.CSS("#password")),
			// B's consent for A.
			chromedp.WaitVisible(chromedp.CSS(`button[name=decision][value=approve]`)),
			chromedp.Click(chromedp.CSS(`button[name=decision][value=approve]`)),
		)
	}
	// Back at A: its consent page for the app (the same button as B's,
	// so wait for the address to change).
	for err == nil && !strings.HasPrefix(consentA, a.issuer+"/consent") && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		consentA, err = chromedp.Run(bctx, chromedp.Location())
	}
	if err == nil {
		err = chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`button[name=decision][value=approve]`)))
	}
	if err == nil {
		err = chromedp.Do(bctx,
			chromedp.Click(chromedp.CSS(`button[name=decision][value=approve]`)),
			chromedp.WaitVisible(chromedp.CSS("#done")))
	}
	if err != nil {
		html, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
		t.Fatalf("browser: %v\npage:\n%s", err, html)
	}
	if buttonText != "Sign in with Corp SSO" || !strings.HasPrefix(consentA, a.issuer+"/consent") {
		t.Fatalf("button %q, last consent page %s (want A's)", buttonText, consentA)
	}
	var q map[string][]string
	select {
	case q = <-cb.hits:
	case <-ctx.Done():
		t.Fatal("the app's callback was never called")
	}
	if got := first(q, "state"); got != "fed-state" {
		t.Fatalf("callback state %q", got)
	}
	tok, err := cfg.Exchange(ctx, first(q, "code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("A's ID token: %v", err)
	}
	var claims struct {
		Sub      string   `json:"sub"`
		Username string   `json:"preferred_username"`
		Email    string   `json:"email"`
		Groups   []string `json:"groups"`
		Nonce    string   `json:"nonce"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(claims.Sub, "idp:corp:") || claims.Username != "alice" || claims.Email != "alice@corp.example" ||
		!slices.Equal(claims.Groups, []string{"platform", "team:orders"}) || claims.Nonce != "fed-nonce" {
		t.Fatalf("A's ID token for B's alice: %+v", claims)
	}
	logA, _ := os.ReadFile(filepath.Join(s.logDir, "server-"+a.ns+".log"))
	for _, secret := range []string{creds[oauthv1.SecretKeyClientSecret], password, tok.AccessToken, first(q, "code")} {
		if strings.Contains(string(logA), secret) {
			t.Fatal("A's log carries the upstream client secret, a password, a code or a token")
		}
	}
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// applyFile applies a manifest whose objects name their namespaces.
func (s *suite) applyFile(t *testing.T, manifest string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	s.kubectlT(t, "apply", "-f", path)
}

// secretIn reads a Secret's data in another namespace than the suite's.
func (s *suite) secretIn(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	sec := &corev1.Secret{}
	if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, sec); err != nil {
		t.Fatalf("reading Secret %s/%s: %v", ns, name, err)
	}
	out := map[string]string{}
	for k, v := range sec.Data {
		out[k] = string(v)
	}
	return out
}

// fedChromium starts a headless Chromium of the test's own.
func fedChromium(t *testing.T, ctx context.Context, browser string) (context.Context, func()) {
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	return bctx, func() { cancelBrowser(); cancelAlloc() }
}
