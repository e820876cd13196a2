package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testlogin"
)

// withBrowser makes canOpenBrowser answer reachable for the test, as on a
// desktop, or not, as on a headless host.
func withBrowser(t *testing.T, reachable bool) {
	t.Helper()
	old := canOpenBrowser
	canOpenBrowser = func() (bool, string) {
		if reachable {
			return true, ""
		}
		return false, "the test's headless host"
	}
	t.Cleanup(func() { canOpenBrowser = old })
}

func TestBrowserReachable(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/x", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	for _, tc := range []struct {
		name string
		env  map[string]string
		look func(string) (string, error)
		goos string
		want bool
	}{
		{"X11 desktop", map[string]string{"DISPLAY": ":0"}, found, "linux", true},
		{"Wayland desktop", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, found, "linux", true},
		{"SSH with X forwarding", map[string]string{"DISPLAY": "localhost:10.0", "SSH_CONNECTION": "x"}, found, "linux", true},
		{"SSH session", map[string]string{"SSH_CONNECTION": "10.0.0.1 22 10.0.0.2 5555"}, found, "linux", false},
		{"container", nil, found, "linux", false},
		{"display without xdg-open", map[string]string{"DISPLAY": ":0"}, missing, "linux", false},
		{"Mac desktop", nil, found, "darwin", true},
		{"SSH into a Mac", map[string]string{"SSH_TTY": "/dev/ttys001"}, found, "darwin", false},
		{"Windows", nil, missing, "windows", false},
	} {
		got, why := browserReachable(func(k string) string { return tc.env[k] }, tc.look, tc.goos)
		if got != tc.want || (!got && why == "") {
			t.Errorf("%s: %v %q, want %v (and a reason when not)", tc.name, got, why, tc.want)
		}
	}
}

// deviceRun is `gatehouse login` running in the background, its stderr
// read line by line.
type deviceRun struct {
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr strings.Builder
	// complete receives verification_uri_complete once printed.
	complete chan string
	code     chan int
	read     chan struct{} // closed once every stderr line is in stderr
}

func startLogin(f *loginFixture, cacheDir string, extra ...string) *deviceRun {
	d := &deviceRun{complete: make(chan string, 1), code: make(chan int, 1), read: make(chan struct{})}
	pr, pw := io.Pipe()
	go func() {
		defer close(d.read)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.stderr.WriteString(line + "\n")
			d.mu.Unlock()
			if l := strings.TrimSpace(line); strings.HasPrefix(l, f.issuer+"/device?user_code=") {
				d.complete <- l
			}
		}
	}()
	args := append([]string{"login", "--issuer", f.issuer, "--client-id", f.clientID, "--ca-file", f.caFile, "--cache-dir", cacheDir, "--timeout", "60s"}, extra...)
	go func() {
		code := run(context.Background(), args, &d.stdout, pw)
		_ = pw.Close()
		d.code <- code
	}()
	return d
}

func (d *deviceRun) wait(t *testing.T) (int, string) {
	t.Helper()
	select {
	case code := <-d.code:
		<-d.read // the last stderr lines: run closed the pipe when it returned
		d.mu.Lock()
		defer d.mu.Unlock()
		return code, d.stderr.String()
	case <-time.After(90 * time.Second):
		t.Fatal("gatehouse login did not end within 90 s")
		return 0, ""
	}
}

func (d *deviceRun) verificationURI(t *testing.T) string {
	t.Helper()
	select {
	case u := <-d.complete:
		return u
	case code := <-d.code:
		t.Fatalf("gatehouse login ended (exit %d) before printing the device flow's link:\n%s", code, d.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("gatehouse login printed no device flow link in 30 s:\n%s", d.stderr.String())
	}
	return ""
}

// chromiumApprove plays the person in headless Chromium: the link's page
// shows the code, they confirm it, log in and allow; it returns the
// consent page's text.
func chromiumApprove(t *testing.T, link, wantCode, username, password string) string {
	t.Helper()
	path := os.Getenv("GATEHOUSE_E2E_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		testenv.MissingDependency(t, errors.New("no Chromium at "+path+": install the Debian package chromium, or set GATEHOUSE_E2E_CHROMIUM"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true),
		// The issuer's certificate is from the test's own CA, which this
		// fresh profile does not know.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	type css = chromedp.CSS
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
			chromedp.SendKeys(css("#password"), password),
			chromedp.Submit(css("#password")),
			chromedp.WaitVisible(css(`button[name=decision][value=approve]`)),
		)
	}
	if err == nil {
		consent, err = chromedp.Run(bctx, chromedp.Text(css("body")))
	}
	if err == nil {
		err = chromedp.Do(bctx, chromedp.Click(css(`button[name=decision][value=approve]`)), chromedp.WaitVisible(css("#device-result")))
	}
	if err != nil {
		html, _ := chromedp.Run(bctx, chromedp.OuterHTML(css("html")))
		t.Fatalf("Chromium: %v\npage:\n%s", err, html)
	}
	if shown != wantCode {
		t.Errorf("the link's page shows the code %q, the command printed %q", shown, wantCode)
	}
	return consent
}

// TestLoginDevice is `gatehouse login --device` on a headless host,
// against a real token server: it prints where to go and the code, the
// person approves in Chromium elsewhere, and it prints the ExecCredential;
// the next run answers from the cache and the one after renews with the
// refresh token, as the browser flow's do.
func TestLoginDevice(t *testing.T) {
	f := newLoginFixture(t)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	defer func(o func(string) error) { openBrowser = o }(openBrowser)
	openBrowser = func(string) error { t.Error("the device flow opened a browser"); return nil }

	d := startLogin(f, cacheDir, "--device")
	link := d.verificationURI(t)
	d.mu.Lock()
	printed := d.stderr.String()
	d.mu.Unlock()
	code := link[strings.LastIndex(link, "=")+1:]
	for _, want := range []string{f.issuer + "/device\n", "enter the code\n\n  " + code + "\n"} {
		if !strings.Contains(printed, want) {
			t.Errorf("stderr does not show %q:\n%s", want, printed)
		}
	}
	consent := chromiumApprove(t, link, code, "alice", f.password)
	if !strings.Contains(consent, "A device, not this browser, will get access") {
		t.Errorf("the consent page does not warn about the device:\n%s", consent)
	}
	exit, stderr := d.wait(t)
	if exit != 0 {
		t.Fatalf("gatehouse login --device: exit %d\n%s", exit, stderr)
	}
	var cred struct {
		Kind   string
		Status struct{ Token string }
	}
	if err := json.Unmarshal(d.stdout.Bytes(), &cred); err != nil || cred.Kind != "ExecCredential" {
		t.Fatalf("stdout is not an ExecCredential: %v: %s", err, d.stdout.String())
	}
	// No sid: the device is not in the approving browser's session
	// (server/grant_device_code.go).
	claims := jwtClaims(t, cred.Status.Token)
	if claims["preferred_username"] != "alice" || claims["nonce"] != nil || claims["sid"] != nil {
		t.Errorf("ID token claims %v", claims)
	}

	if again, _ := f.login(t, cacheDir); again != cred.Status.Token {
		t.Error("the second run did not answer from the cache")
	}
	caches, _ := filepath.Glob(filepath.Join(cacheDir, "*.json"))
	if len(caches) != 1 {
		t.Fatalf("cache files %v", caches)
	}
	b, _ := os.ReadFile(caches[0])
	var c loginCache
	_ = json.Unmarshal(b, &c)
	if c.RefreshToken == "" {
		t.Fatal("no refresh token cached by the device flow")
	}
	c.IDToken = ""
	b, _ = json.Marshal(c)
	if err := os.WriteFile(caches[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	renewed, stderr := f.login(t, cacheDir)
	if renewed == "" || renewed == cred.Status.Token || strings.Contains(stderr, "/device") {
		t.Errorf("the refresh did not renew the ID token without a new device login:\n%s", stderr)
	}
}

// Without a browser here, `gatehouse login` picks the device flow by
// itself and says why; --device=false keeps the browser flow; a denial
// ends it with an error and caches nothing.
func TestLoginDeviceFallback(t *testing.T) {
	f := newLoginFixture(t)
	withBrowser(t, false)
	opened := 0
	defer func(o func(string) error) { openBrowser = o }(openBrowser)
	openBrowser = func(authURL string) error {
		opened++
		go func() {
			b, _ := testlogin.New(f.issuer, f.transport)
			if back, err := b.SignIn(context.Background(), authURL, "alice", f.password); err == nil {
				if resp, err := http.Get(back.String()); err == nil {
					resp.Body.Close()
				}
			}
		}()
		return nil
	}
	approve := func(d *deviceRun, decision string) {
		b, err := testlogin.New(f.issuer, f.transport)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.ApproveDevice(context.Background(), d.verificationURI(t), "alice", f.password, decision); err != nil {
			t.Fatalf("approving: %v", err)
		}
	}

	deniedCache := filepath.Join(t.TempDir(), "denied")
	d := startLogin(f, deniedCache)
	approve(d, "deny")
	if exit, stderr := d.wait(t); exit != 1 || !strings.Contains(stderr, "the login was denied in the browser") {
		t.Errorf("denied: exit %d\n%s", exit, stderr)
	}
	if _, err := os.Stat(deniedCache); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a denied login left a cache: %v", err)
	}

	d = startLogin(f, filepath.Join(t.TempDir(), "auto"))
	approve(d, "approve")
	exit, stderr := d.wait(t)
	if exit != 0 || !strings.Contains(stderr, "no browser can open here (the test's headless host)") || opened != 0 {
		t.Fatalf("headless: exit %d, browser opened %d times\n%s", exit, opened, stderr)
	}

	d = startLogin(f, filepath.Join(t.TempDir(), "forced"), "--device=false")
	exit, stderr = d.wait(t)
	if exit != 0 || opened != 1 || strings.Contains(stderr, "/device") {
		t.Errorf("--device=false: exit %d, browser opened %d times\n%s", exit, opened, stderr)
	}
}
