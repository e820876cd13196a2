package server

import (
	"bufio"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testnode"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// nodeEnv names the Node.js binary; "node" on PATH by default (as in
// test/e2e).
const nodeEnv = "GATEHOUSE_E2E_NODE"

// openIDClient is test/e2e/openid-client/authorize.mjs running: openid-client
// (npm, installed by make test with npm ci from its lock file) as a relying
// party written apart from Gatehouse.
type openIDClient struct {
	lines *bufio.Scanner
	stdin io.WriteCloser
	// AuthorizationURL is where it sends the browser.
	AuthorizationURL string
}

// startOpenIDClient runs the harness with env (ISSUER is the test
// server's) until it prints the authorization URL, or ends the test as a
// missing dependency when Node.js or openid-client is not installed.
func startOpenIDClient(t *testing.T, ts *testServer, env ...string) *openIDClient {
	t.Helper()
	node := os.Getenv(nodeEnv)
	if node == "" {
		var err error
		if node, err = exec.LookPath("node"); err != nil {
			testenv.MissingDependency(t, errors.New("no node on PATH: install the Debian packages nodejs and npm, or set "+nodeEnv))
		}
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "e2e", "openid-client")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openid-client", "package.json")); err != nil {
		testenv.MissingDependency(t, errors.New("openid-client is not installed in test/e2e/openid-client: run make test, or npm ci --prefix test/e2e/openid-client"))
	}
	cmd := exec.Command(node, "authorize.mjs")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "ISSUER="+ts.URL), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("openid-client's stderr:\n%s", stderr.String())
		}
	})
	c := &openIDClient{lines: bufio.NewScanner(out), stdin: in}
	first := c.next(t)
	c.AuthorizationURL, _ = first["authorization_url"].(string)
	if c.AuthorizationURL == "" {
		t.Fatalf("openid-client did not build an authorization URL: %v", first)
	}
	return c
}

func (c *openIDClient) next(t *testing.T) map[string]any {
	t.Helper()
	return testnode.Next(t, c.lines, 60*time.Second)
}

// finish hands openid-client what came back to the redirect URI and
// returns what it made of it: tokens, the ID token's claims, userinfo.
func (c *openIDClient) finish(t *testing.T, back map[string]string) map[string]any {
	t.Helper()
	b, _ := json.Marshal(back)
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
	res := c.next(t)
	if res["error"] != nil {
		t.Fatalf("openid-client: %v: %v", res["error"], res["error_description"])
	}
	return res
}

// privateJWK is an ES256 key as the JWK openid-client imports.
func privateJWK(t *testing.T, k *jwtKey) string {
	t.Helper()
	priv := k.priv.(*ecdsa.PrivateKey)
	d, err := priv.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	b, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "kid": k.kid, "x": b64(pub[1:33]), "y": b64(pub[33:]), "d": b64(d)})
	return string(b)
}

// RFC 9126 with openid-client's buildAuthorizationUrlWithPAR: the client
// (which pinned no authentication method, so openid-client's default
// client_secret_post works, as would Basic) must push; the browser sees
// client_id and request_uri alone; openid-client redeems the code, checks
// the ID token (iss, aud, nonce) and the response's iss, and reads
// userinfo.
func TestOpenIDClientPushedAuthorizationRequest(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(oidcClientID)
		c.AuthMethods = (&oauthv1.OAuthClient{}).AuthMethods()
		c.RequirePAR = true
		s.Clients = s.Clients.With(&c)
	})
	for _, auth := range []string{"post", "basic"} {
		t.Run(auth, func(t *testing.T) {
			rp := startOpenIDClient(t, ts, "CLIENT_ID="+oidcClientID, "CLIENT_SECRET="+oidcSecret, "AUTH="+auth,
				"REDIRECT_URI="+oidcRedirect, "SCOPE=openid profile email", "PAR=1")
			u, err := url.Parse(rp.AuthorizationURL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if len(q) != 2 || q.Get("client_id") != oidcClientID || !strings.HasPrefix(q.Get("request_uri"), requestURIPrefix) {
				t.Fatalf("openid-client's authorization URL %s: want client_id and a pushed request_uri alone", u)
			}
			back := newBrowser(t, ts).authorize(rp.AuthorizationURL, "approve", false)
			res := rp.finish(t, map[string]string{"url": back.String()})
			claims, _ := res["claims"].(map[string]any)
			userinfo, _ := res["userinfo"].(map[string]any)
			if claims["sub"] != testSubject || fmt.Sprint(claims["aud"]) != "["+oidcClientID+"]" || userinfo["email"] != "alice@example.com" || res["scope"] != "openid profile email" {
				t.Errorf("openid-client got claims %v, userinfo %v, scope %v", claims, userinfo, res["scope"])
			}
		})
	}
}

// A request object signed by openid-client (buildAuthorizationUrlWithJAR)
// with the client's registered key, pushed (PAR) with a private_key_jwt
// assertion, answered in form_post mode: openid-client reads the POSTed
// response and redeems the code.
func TestOpenIDClientRequestObjectAndFormPost(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	key := newJWTKey(t, "ES256", "rp-key-1")
	const id = "apps.signed-grafana"
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(oidcClientID)
		c.ID, c.AuthMethod, c.SecretHashes = id, oauthv1.AuthPrivateKeyJWT, nil
		c.Assertion = &config.ClientAssertion{Keys: key.static(t)}
		s.Clients = s.Clients.With(&c)
	})
	rp := startOpenIDClient(t, ts, "CLIENT_ID="+id, "PRIVATE_JWK="+privateJWK(t, key), "REDIRECT_URI="+oidcRedirect,
		"SCOPE=openid profile", "JAR=1", "PAR=1", "RESPONSE_MODE=form_post")
	resp, page := newBrowser(t, ts).signInAndDecide(rp.AuthorizationURL, "approve", false)
	action, fields := formPostFields(t, resp, page)
	if action != oidcRedirect || fields.Get("code") == "" {
		t.Fatalf("form_post to %s with %v", action, fields)
	}
	res := rp.finish(t, map[string]string{"body": fields.Encode()})
	if claims, _ := res["claims"].(map[string]any); claims["sub"] != testSubject || claims["azp"] != id {
		t.Errorf("openid-client got claims %v", res["claims"])
	}
}

// The claims parameter as openid-client sends it: an essential email in
// the ID token and a name at userinfo, for a request of scope openid
// alone.
func TestOpenIDClientClaimsParameter(t *testing.T) {
	ts := newTestServer(t)
	withOIDC(t, ts)
	// This client pinned client_secret_basic.
	rp := startOpenIDClient(t, ts, "CLIENT_ID="+oidcClientID, "CLIENT_SECRET="+oidcSecret, "AUTH=basic", "REDIRECT_URI="+oidcRedirect,
		"SCOPE=openid", `CLAIMS={"id_token":{"email":{"essential":true}},"userinfo":{"name":{"essential":true}}}`)
	back := newBrowser(t, ts).authorize(rp.AuthorizationURL, "approve", false)
	res := rp.finish(t, map[string]string{"url": back.String()})
	claims, _ := res["claims"].(map[string]any)
	userinfo, _ := res["userinfo"].(map[string]any)
	if claims["email"] != "alice@example.com" || claims["name"] != nil || userinfo["name"] != "Alice Example" || userinfo["email"] != nil || res["scope"] != "openid" {
		t.Errorf("openid-client got ID token claims %v, userinfo %v, scope %v", claims, userinfo, res["scope"])
	}
}
