package e2e

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const proxiedApp = "proxied-app"

// TestOAuth2ProxyInFrontOfAnApp puts oauth2-proxy (v7.15.6, built from its
// Go module by hack/oauth2-proxy.sh) with --provider=oidc in front of a
// small app, configured only from Gatehouse's discovery document and the
// OAuthClient's generated Secret. Headless Chromium opens the app, is sent
// to Gatehouse, logs in as alice and consents, and lands on the app,
// which sees her email and groups in the headers oauth2-proxy sets.
// Signing out through oauth2-proxy calls Gatehouse's end_session_endpoint
// from the back end (--backend-logout-url with {id_token}) and sends the
// browser there (RP-Initiated Logout 1.0): after it, opening the app asks
// for a login again.
func TestOAuth2ProxyInFrontOfAnApp(t *testing.T) {
	t.Parallel()
	s := get(t)
	browser := chromium(t)
	rp := s.rp(t)
	proxyBin := buildOAuth2Proxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	app := startHeaderEcho(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	proxy := fmt.Sprintf("http://127.0.0.1:%d", port)
	s.applyYAML(t, fmt.Sprintf(`apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: %s}
spec:
  serverRef: {name: %s}
  displayName: Proxied app
  grantTypes: [authorization_code, refresh_token]
  redirectURIs: [%q]
  postLogoutRedirectURIs: [%q]
  scopes: [openid, profile, email, groups]
  secretName: %s-oauth
`, proxiedApp, rpServer, proxy+"/oauth2/callback", proxy+"/signed-out", proxiedApp))
	if err := waitCondition(ctx, s.c, &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: proxiedApp}}, oauthv1.ConditionReady); err != nil {
		t.Fatal(err)
	}
	sec := s.appSecret(t, proxiedApp+"-oauth")
	if sec["oidc_discovery_url"] != rp.issuer+"/.well-known/openid-configuration" {
		t.Errorf("the Secret's oidc_discovery_url is %q", sec["oidc_discovery_url"])
	}
	cookieSecret := make([]byte, 16)
	_, _ = randRead(cookieSecret)
	if err := s.start("oauth2-proxy", proxyBin, "--provider=oidc", "--oidc-issuer-url="+sec[oauthv1.SecretKeyIssuer],
		"--provider-ca-file="+rp.ca.CertFile, "--client-id="+sec[oauthv1.SecretKeyClientID], "--client-secret="+sec[oauthv1.SecretKeyClientSecret],
		"--redirect-url="+proxy+"/oauth2/callback", "--http-address="+strings.TrimPrefix(proxy, "http://"), "--upstream="+app+"/",
		"--email-domain=*", fmt.Sprintf("--cookie-secret=%x", cookieSecret), "--cookie-secure=false",
		"--scope=openid email profile groups", "--code-challenge-method=S256", "--skip-provider-button=true",
		"--backend-logout-url="+rp.issuer+"/logout?id_token_hint={id_token}",
		"--whitelist-domain="+strings.TrimPrefix(rp.issuer, "https://"), "--skip-auth-route=^/signed-out$"); err != nil {
		t.Fatal(err)
	}
	if err := waitHTTP(ctx, proxy+"/ping"); err != nil {
		t.Fatalf("oauth2-proxy: %v\n%s", err, tail(filepath.Join(s.logDir, "oauth2-proxy.log"), 20))
	}

	bctx := newChromium(t, ctx, browser, chromedp.Flag("ignore-certificate-errors-spki-list", rp.spki))
	began := time.Now()
	fail := func(err error) {
		t.Helper()
		if err != nil {
			html, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
			t.Fatalf("browser: %v\npage:\n%s\noauth2-proxy log:\n%s", err, html, tail(filepath.Join(s.logDir, "oauth2-proxy.log"), 20))
		}
	}
	page := func(actions ...chromedp.Action[chromedp.Void]) { t.Helper(); fail(chromedp.Do(bctx, actions...)) }
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		fail(err)
		return v
	}
	page(chromedp.Navigate(proxy+"/"), chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), rpUserOps), chromedp.SendKeys(chromedp.CSS("#password"), rp.password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS(`button[name=decision][value=approve]`)),
		chromedp.Click(chromedp.CSS(`button[name=decision][value=approve]`)),
		chromedp.WaitVisible(chromedp.CSS("#email")))
	email, groups, user := text("#email"), text("#groups"), text("#user")
	t.Logf("app → Gatehouse login → consent → app: %s in Chromium", time.Since(began).Round(time.Millisecond))
	if email != rpUserOps+"@example.com" || groups != rpGroupOps+",everyone" || user != rpUserOps {
		t.Errorf("the app saw X-Forwarded-Email %q, X-Forwarded-Groups %q, X-Forwarded-Preferred-Username %q", email, groups, user)
	}

	// Sign out: oauth2-proxy drops its cookie and calls the end-session
	// endpoint from its back end with the ID token (id_token_hint, no
	// browser cookie), which ends alice's Gatehouse session by its sid;
	// then it sends the browser there, where nothing is left to confirm,
	// so Gatehouse returns her straight to the app's registered
	// post-logout page.
	endSession := rp.issuer + "/logout?" + url.Values{"client_id": {sec[oauthv1.SecretKeyClientID]}, "post_logout_redirect_uri": {proxy + "/signed-out"}}.Encode()
	before := endSessionCount(t, rp)
	page(chromedp.Navigate(proxy+"/oauth2/sign_out?rd="+url.QueryEscape(endSession)),
		chromedp.WaitVisible(chromedp.CSS("#signedout")))
	if after := endSessionCount(t, rp); after-before != 2 {
		t.Errorf("end_session successes went from %d to %d: want one from oauth2-proxy's back end and one for the browser", before, after)
	}
	// Gatehouse's session is gone: the app needs a login again.
	page(chromedp.Navigate(proxy+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
}

// buildOAuth2Proxy builds oauth2-proxy into ./bin once (hack/oauth2-proxy.sh),
// or ends the test as a missing dependency when it cannot be built.
func buildOAuth2Proxy(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, "hack", "oauth2-proxy.sh")).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		testenv.MissingDependency(t, fmt.Errorf("building oauth2-proxy with hack/oauth2-proxy.sh (needs the Go module proxy once): %w", err))
	}
	return strings.TrimSpace(string(out))
}

// startHeaderEcho is the app behind oauth2-proxy: it shows the identity
// headers it receives, and a page for after sign-out.
func startHeaderEcho(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<!doctype html><title>app</title><p id=email>%s</p><p id=groups>%s</p><p id=user>%s</p>",
			html.EscapeString(r.Header.Get("X-Forwarded-Email")), html.EscapeString(r.Header.Get("X-Forwarded-Groups")),
			html.EscapeString(r.Header.Get("X-Forwarded-Preferred-Username")))
	})
	mux.HandleFunc("GET /signed-out", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "<!doctype html><title>signed out</title><p id=signedout>You are signed out.</p>")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

var endSessionSuccess = regexp.MustCompile(`gatehouse_server_requests_total\{endpoint="end_session",grant="",outcome="success"\} (\d+)`)

// endSessionCount reads how many end-session requests the https Gatehouse
// has served successfully.
func endSessionCount(t *testing.T, rp *rpEnv) int {
	t.Helper()
	resp, err := http.Get(rp.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := endSessionSuccess.FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// newChromium starts headless Chromium for one test.
func newChromium(t *testing.T, ctx context.Context, path string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	}, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	return bctx
}
