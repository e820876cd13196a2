package e2e

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testnode"
)

// cliClient is the samples' public command-line client, which may use the
// device grant (config/samples/oauth_v1alpha1_oauthclient_cli.yaml).
const cliClient = "orders-cli"

// nodeEnv names the Node.js binary the openid-client harness runs with;
// "node" on PATH by default.
const nodeEnv = "GATEHOUSE_E2E_NODE"

// approveDevice plays the person in headless Chromium: the link of
// verification_uri_complete shows the code, they confirm it, log in, and
// press decision ("approve" or "deny") on the consent page. It returns
// the code the page showed.
func (s *suite) approveDevice(t *testing.T, link, decision string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium(t)), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	type css = chromedp.CSS
	button := css(`button[name=decision][value=` + decision + `]`)
	err := chromedp.Do(bctx, chromedp.Navigate(link), chromedp.WaitVisible(css("#user_code")))
	var shown, consent string
	if err == nil {
		shown, err = chromedp.Run(bctx, chromedp.Value(css("#user_code")))
	}
	if err == nil {
		err = chromedp.Do(bctx,
			chromedp.Submit(css("#user_code")),
			chromedp.WaitVisible(css("#username")),
			chromedp.SendKeys(css("#username"), username),
			chromedp.SendKeys(css("#password"), s.password),
			chromedp.Submit(css("#password")),
			chromedp.WaitVisible(button),
		)
	}
	if err == nil {
		consent, err = chromedp.Run(bctx, chromedp.Text(css("body")))
	}
	if err == nil {
		err = chromedp.Do(bctx, chromedp.Click(button), chromedp.WaitVisible(css("#device-result")))
	}
	if err != nil {
		html, _ := chromedp.Run(bctx, chromedp.OuterHTML(css("html")))
		t.Fatalf("Chromium: %v\npage:\n%s", err, html)
	}
	if !strings.Contains(consent, "A device, not this browser, will get access") || !strings.Contains(consent, "Orders CLI") {
		t.Errorf("the consent page does not name the client and warn about the device:\n%s", consent)
	}
	return shown
}

// TestDeviceFlowGoOAuth2 is the device authorization grant (RFC 8628)
// through the whole system with golang.org/x/oauth2 as the device: the
// samples' public CLI client gets a code, the person approves in Chromium
// while it polls, and its access token works at the orders API.
func TestDeviceFlowGoOAuth2(t *testing.T) {
	t.Parallel()
	s := get(t)
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := oauth2.Config{ClientID: s.clientID(cliClient), Scopes: []string{"orders:read"}, Endpoint: oauth2.Endpoint{
		DeviceAuthURL: s.issuer + endpoints.DeviceAuthorizationPath, TokenURL: s.issuer + endpoints.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	type polled struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan polled, 1)
	go func() {
		tok, err := cfg.DeviceAccessToken(ctx, da)
		done <- polled{tok, err}
	}()
	if shown := s.approveDevice(t, da.VerificationURIComplete, "approve"); shown != da.UserCode {
		t.Errorf("the page shows the code %q, the device got %q", shown, da.UserCode)
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("DeviceAccessToken: %v", res.err)
	}
	if code, body, err := callAPI(ctx, http.MethodGet, s.orders+"/orders", res.tok.AccessToken, ""); err != nil || code != http.StatusOK {
		t.Fatalf("the orders API with the device's token: %d %s %v", code, body, err)
	}
	if res.tok.RefreshToken == "" {
		t.Error("no refresh token, although the client may refresh")
	}
}

// nodeHarness finds Node.js and the openid-client harness that make test
// installs (npm ci in test/e2e/openid-client), or ends the test as a
// missing dependency.
func nodeHarness(t *testing.T) (node, dir string) {
	t.Helper()
	node = os.Getenv(nodeEnv)
	if node == "" {
		var err error
		if node, err = exec.LookPath("node"); err != nil {
			testenv.MissingDependency(t, errors.New("no node on PATH: install the Debian packages nodejs and npm, or set "+nodeEnv))
		}
	}
	dir, err := filepath.Abs("openid-client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openid-client", "package.json")); err != nil {
		testenv.MissingDependency(t, errors.New("openid-client is not installed in test/e2e/openid-client: run make test, or npm ci --prefix test/e2e/openid-client"))
	}
	return node, dir
}

// openIDClientRun is test/e2e/openid-client/device.mjs running: its first
// line is the device authorization response, its second the outcome.
type openIDClientRun struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
}

func (s *suite) startOpenIDClient(t *testing.T, node, dir, scope string) (*openIDClientRun, map[string]any) {
	t.Helper()
	cmd := exec.Command(node, "device.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ISSUER="+s.issuer, "CLIENT_ID="+s.clientID(cliClient), "SCOPE="+scope)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := &openIDClientRun{cmd: cmd, lines: bufio.NewScanner(out)}
	da := r.next(t)
	if da["error"] != nil || da["verification_uri_complete"] == nil {
		t.Fatalf("openid-client's device authorization: %v\nstderr: %s", da, stderr.String())
	}
	return r, da
}

func (r *openIDClientRun) next(t *testing.T) map[string]any {
	t.Helper()
	return testnode.Next(t, r.lines, 90*time.Second)
}

// TestDeviceFlowOpenIDClient drives the device flow with openid-client
// (Node.js), an OAuth library written apart from Gatehouse: approved in
// Chromium it gets tokens the orders API accepts; denied, it ends with
// access_denied.
func TestDeviceFlowOpenIDClient(t *testing.T) {
	t.Parallel()
	s := get(t)
	chromium(t)
	node, dir := nodeHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	run, da := s.startOpenIDClient(t, node, dir, "orders:read")
	if da["verification_uri"] != s.issuer+endpoints.DevicePath || da["interval"] != float64(5) {
		t.Errorf("device authorization response as openid-client read it: %v", da)
	}
	if shown := s.approveDevice(t, da["verification_uri_complete"].(string), "approve"); shown != da["user_code"] {
		t.Errorf("the page shows the code %q, openid-client got %v", shown, da["user_code"])
	}
	tok := run.next(t)
	at, _ := tok["access_token"].(string)
	if at == "" || tok["refresh_token"] == nil || tok["scope"] != "orders:read" {
		t.Fatalf("openid-client's tokens: %v", tok)
	}
	if code, body, err := callAPI(ctx, http.MethodGet, s.orders+"/orders", at, ""); err != nil || code != http.StatusOK {
		t.Fatalf("the orders API with openid-client's token: %d %s %v", code, body, err)
	}

	run, da = s.startOpenIDClient(t, node, dir, "orders:read")
	s.approveDevice(t, da["verification_uri_complete"].(string), "deny")
	if res := run.next(t); res["error"] != "access_denied" {
		t.Errorf("openid-client after the denial: %v, want access_denied", res)
	}
}
