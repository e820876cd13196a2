package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testlogin"
	"github.com/gatehouse-dev/gatehouse/internal/users"
)

func TestLoginFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"login"}, "--issuer and --client-id are required"},
		{[]string{"login", "--issuer", "https://a.example"}, "--issuer and --client-id are required"},
		{[]string{"login", "--issuer", "a.example", "--client-id", "x"}, "must be an http(s) URL"},
		{[]string{"login", "--issuer", "https://a.example", "--client-id", "x", "--scopes", "profile"}, "must include openid"},
		{[]string{"login", "--issuer", "https://a.example", "--client-id", "x", "now"}, `unexpected argument "now"`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// loginFixture is a token server over TLS with a user and the public
// kubectl client, as `gatehouse dev` has them.
type loginFixture struct {
	issuer, caFile, clientID, password string
	transport                          http.RoundTripper
}

func newLoginFixture(t *testing.T) *loginFixture {
	t.Helper()
	cp := testenv.Get(t)
	t.Setenv("KUBECONFIG", cp.Kubeconfig)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "login-"}}
	if err := cp.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	ca, certFile, keyFile := testServingCert(t)
	f := &loginFixture{caFile: ca.CertFile, password: "correct horse battery", clientID: ns.Name + ".kubectl",
		transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	hash, _ := bcrypt.GenerateFromPassword([]byte(f.password), users.MinBcryptCost)
	listen := freeAddr(t)
	f.issuer = "https://" + listen
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "kubectl"}, Spec: oauthv1.OAuthClientSpec{
		ServerRef: oauthv1.ServerReference{Name: "auth"}, ClientType: oauthv1.ClientPublic, TokenEndpointAuthMethod: oauthv1.AuthNone,
		GrantTypes:   []oauthv1.GrantType{oauthv1.GrantAuthorizationCode, oauthv1.GrantRefreshToken, oauthv1.GrantDeviceCode},
		RedirectURIs: []oauthv1.RedirectURI{"http://127.0.0.1/callback"},
		Scopes:       []oauthv1.ScopeName{"openid", "profile", "email", "groups", "offline_access"},
	}}
	createServerObjects(t, cp.Client, ns.Name, f.issuer, oc, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "people"},
		StringData: map[string]string{users.SecretDataKey: fmt.Sprintf("users:\n- username: alice\n  passwordHash: %q\n  email: alice@example.com\n  groups: [ops]\n", hash)}})
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "auth"}}
	if err := cp.Client.Patch(ctx, srv, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"users":{"secretRef":{"name":"people"}}}}`))); err != nil {
		t.Fatal(err)
	}
	// What the operator would write into the client's status.
	oc.Status.ClientID = f.clientID
	meta.SetStatusCondition(&oc.Status.Conditions, metav1.Condition{Type: oauthv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "ready"})
	if err := cp.Client.Status().Update(ctx, oc); err != nil {
		t.Fatal(err)
	}
	ops := freeAddr(t)
	logs, _ := startServer(t, ns.Name, "--listen", listen, "--metrics-listen", ops, "--tls-cert-file", certFile, "--tls-key-file", keyFile)
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, err := httpGet("http://" + ops + "/readyz"); err != nil {
			return fmt.Errorf("%w; logs:\n%s", err, logs.String())
		}
		return nil
	})
	return f
}

// execCredential runs `gatehouse login` and returns the token of the
// ExecCredential it prints.
func (f *loginFixture) login(t *testing.T, cacheDir string) (string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := []string{"login", "--issuer", f.issuer, "--client-id", f.clientID, "--ca-file", f.caFile, "--cache-dir", cacheDir, "--timeout", "30s"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("gatehouse login: exit %d: %s", code, stderr.String())
	}
	var cred struct {
		APIVersion, Kind string
		Status           struct {
			Token               string
			ExpirationTimestamp time.Time
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &cred); err != nil {
		t.Fatalf("not an ExecCredential: %v: %s", err, stdout.String())
	}
	if cred.APIVersion != execCredentialAPIVersion || cred.Kind != "ExecCredential" || cred.Status.Token == "" || time.Until(cred.Status.ExpirationTimestamp) < time.Minute {
		t.Fatalf("ExecCredential = %s", stdout.String())
	}
	return cred.Status.Token, stderr.String()
}

// TestLogin is `gatehouse login` as kubectl runs it: the first run logs in
// through the browser (played by testlogin), the second answers from the
// cache without one, and a third, with the ID token gone, renews it with
// the refresh token.
func TestLogin(t *testing.T) {
	f := newLoginFixture(t)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	browserRuns := 0
	withBrowser(t, true)
	defer func(o func(string) error) { openBrowser = o }(openBrowser)
	openBrowser = func(authURL string) error {
		browserRuns++
		go func() {
			b, err := testlogin.New(f.issuer, f.transport)
			if err != nil {
				t.Error(err)
				return
			}
			back, err := b.SignIn(context.Background(), authURL, "alice", f.password)
			if err != nil {
				t.Errorf("signing in: %v", err)
				return
			}
			if resp, err := http.Get(back.String()); err == nil { // the redirect to gatehouse login's listener
				resp.Body.Close()
			}
		}()
		return nil
	}

	first, stderr := f.login(t, cacheDir)
	if browserRuns != 1 || !strings.Contains(stderr, f.issuer+"/authorize?") {
		t.Fatalf("the first login did not go through the browser (%d runs); stderr:\n%s", browserRuns, stderr)
	}
	claims := jwtClaims(t, first)
	if claims["preferred_username"] != "alice" || fmt.Sprint(claims["groups"]) != "[ops]" || fmt.Sprint(claims["aud"]) != "["+f.clientID+"]" || claims["nonce"] == nil {
		t.Errorf("ID token claims %v", claims)
	}
	if info, err := os.Stat(cacheDir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("cache directory: %v %v", info, err)
	}

	if again, _ := f.login(t, cacheDir); again != first || browserRuns != 1 {
		t.Errorf("the second run did not answer from the cache (browser runs %d)", browserRuns)
	}

	caches, _ := filepath.Glob(filepath.Join(cacheDir, "*.json"))
	if len(caches) != 1 {
		t.Fatalf("cache files %v", caches)
	}
	b, _ := os.ReadFile(caches[0])
	var c loginCache
	_ = json.Unmarshal(b, &c)
	if c.RefreshToken == "" {
		t.Fatal("no refresh token cached")
	}
	c.IDToken = ""
	b, _ = json.Marshal(c)
	if err := os.WriteFile(caches[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	renewed, _ := f.login(t, cacheDir)
	if renewed == "" || renewed == first || browserRuns != 1 || jwtClaims(t, renewed)["preferred_username"] != "alice" {
		t.Errorf("the refresh did not renew the ID token without the browser (browser runs %d)", browserRuns)
	}
}

// A denied consent ends the login with the server's error, and nothing is
// cached.
func TestLoginDenied(t *testing.T) {
	f := newLoginFixture(t)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	withBrowser(t, true)
	defer func(o func(string) error) { openBrowser = o }(openBrowser)
	openBrowser = func(authURL string) error {
		u, _ := url.Parse(authURL)
		q := u.Query()
		go func() {
			// What the server sends back when the person presses Deny
			// (RFC 6749 §4.1.2.1).
			back := q.Get("redirect_uri") + "?error=access_denied&state=" + url.QueryEscape(q.Get("state"))
			if resp, err := http.Get(back); err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"login", "--issuer", f.issuer, "--client-id", f.clientID, "--ca-file", f.caFile, "--cache-dir", cacheDir}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "access_denied") || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 naming access_denied", code, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(cacheDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed login left a cache: %v", err)
	}
}

func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The loopback listener takes only the redirect back carrying this
// login's state; anything else gets a 400 and changes nothing.
func TestLoginCallback(t *testing.T) {
	results := make(chan callbackResult, 1)
	h := callbackHandler("the-state", results)
	for _, target := range []string{"/callback?code=c&state=other", "/callback?code=c", "/favicon.ico?state=the-state&code=c", "/callback?state=the-state"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if target != "/callback?state=the-state" && rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", target, rec.Code)
		}
		if target == "/callback?state=the-state" {
			if res := <-results; res.err == nil || !strings.Contains(res.err.Error(), "no code") {
				t.Errorf("%s: %+v, want an error saying there is no code", target, res)
			}
			continue
		}
		select {
		case res := <-results:
			t.Errorf("%s was taken as the redirect back: %+v", target, res)
		default:
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/callback?code=the-code&state=the-state", nil))
	if res := <-results; res.err != nil || res.code != "the-code" || rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "logged in") {
		t.Errorf("the right redirect back: %+v, %d %s", res, rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/callback?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=the-state", nil))
	if res := <-results; res.err == nil || !strings.Contains(res.err.Error(), "access_denied: <b>no</b>") || strings.Contains(rec.Body.String(), "<b>") {
		t.Errorf("an error redirect: %+v; page %s (must be escaped)", res, rec.Body.String())
	}
}
