package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testlogin"
)

func TestDevFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dev", "--port", "0"}, "--port must be between 1 and 65535"},
		{[]string{"dev", "--port", "70000"}, "--port must be between 1 and 65535"},
		{[]string{"dev", "--state-dir", " "}, "--state-dir must not be empty"},
		{[]string{"dev", "now"}, `unexpected argument "now"`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestDevCommand runs `gatehouse dev` as a user would: a real process with
// its own state directory. It waits for demo.env, gets a token with the
// credentials it names, stops dev with SIGINT (Ctrl-C) and checks that
// nothing is left running; then it starts dev again on the same state and
// checks that the state was reused: same client, same secret, same
// password.
func TestDevCommand(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	if _, err := devenv.AssetsDir(); err != nil {
		testenv.MissingDependency(t, err)
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(t.TempDir(), "state")
	port := devFreePort(t)

	first := startDev(t, bin, state, port)
	env1 := first.waitEnv(t)
	if env1["GATEHOUSE_ISSUER"] != "https://127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("GATEHOUSE_ISSUER = %q", env1["GATEHOUSE_ISSUER"])
	}
	for _, k := range devenv.EnvOrder {
		if env1[k] == "" {
			t.Errorf("demo.env has no %s", k)
		}
	}
	for _, want := range []string{"starting etcd", "kube-apiserver ready in", "/authorize?", "code_challenge_method=S256", "code_verifier", "grant_type=client_credentials",
		env1["DEMO_PASSWORD"], env1["DEMO_CLIENT_SECRET"], "--cacert " + devenv.ShellQuote(env1["GATEHOUSE_CA_FILE"]), "auth whoami"} {
		if !strings.Contains(first.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, first.out.String())
		}
	}
	devToken(t, env1)
	devWorkloadToken(t, env1)
	devKubectlLogin(t, env1)
	// A client still watching must not hold up the stop or make it
	// report an error (kube-apiserver waited a minute for it).
	watch := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), "--kubeconfig", env1["KUBECONFIG"], "get", "namespaces", "--watch")
	listed := make(chan struct{})
	watch.Stdout = &firstWrite{ch: listed}
	if err := watch.Start(); err == nil {
		defer func() { _ = watch.Process.Kill(); _ = watch.Wait() }()
		// Its first lines are the list; then it is watching.
		select {
		case <-listed:
		case <-time.After(30 * time.Second):
			t.Log("kubectl get --watch listed nothing within 30s")
		}
	} else {
		t.Logf("no kubectl watch during the stop: %v", err)
	}
	first.interrupt(t, state, port)

	second := startDev(t, bin, state, port)
	env2 := second.waitEnv(t)
	if !strings.Contains(second.out.String(), "reusing the state in "+state) || !strings.Contains(second.out.String(), "reusing its data") {
		t.Errorf("second run does not say it reuses the state:\n%s", second.out.String())
	}
	for _, k := range []string{"DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "DEMO_PASSWORD"} {
		if env1[k] != env2[k] {
			t.Errorf("%s changed between runs on the same state", k)
		}
	}
	devToken(t, env2)

	// Killed outright, dev cannot stop etcd and kube-apiserver; the next
	// run on the state stops them and carries on.
	if err := second.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-second.done; err == nil {
		t.Fatal("gatehouse dev exited with status 0 after SIGKILL")
	}
	if left := processesMentioning(state); len(left) == 0 {
		t.Log("no leftovers after SIGKILL (unexpected, but nothing to clean up)")
	}
	third := startDev(t, bin, state, port)
	env3 := third.waitEnv(t)
	if !strings.Contains(third.out.String(), "left running by an earlier gatehouse dev") {
		t.Errorf("third run does not report stopping the killed run's processes:\n%s", third.out.String())
	}
	if env3["DEMO_CLIENT_SECRET"] != env1["DEMO_CLIENT_SECRET"] {
		t.Error("the demo client's secret changed after a killed run")
	}
	devToken(t, env3)
	third.interrupt(t, state, port)

	// --reset starts afresh: a new password and client secret.
	fourth := startDev(t, bin, state, port, "--reset")
	env4 := fourth.waitEnv(t)
	if env4["DEMO_PASSWORD"] == env1["DEMO_PASSWORD"] || env4["DEMO_CLIENT_SECRET"] == env1["DEMO_CLIENT_SECRET"] {
		t.Error("--reset kept the password or the client secret of the earlier runs")
	}
	devToken(t, env4)
	fourth.interrupt(t, state, port)
}

type devProcess struct {
	began time.Time
	cmd   *exec.Cmd
	out   *testenv.LogBuffer
	state string
	done  chan error
}

func startDev(t *testing.T, bin, state string, port int, extra ...string) *devProcess {
	t.Helper()
	p := &devProcess{out: &testenv.LogBuffer{}, state: state, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"dev", "--state-dir", state, "--port", strconv.Itoa(port)}, extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	began := time.Now()
	p.began = began
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGINT)
			select {
			case err := <-p.done:
				if err != nil {
					t.Logf("gatehouse dev stopped on SIGINT: %v", err)
				}
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
	})
	t.Logf("started gatehouse dev (pid %d) at %s", p.cmd.Process.Pid, began.Format(time.TimeOnly))
	return p
}

// waitEnv waits for demo.env and reads it through a shell, as a script
// would.
func (p *devProcess) waitEnv(t *testing.T) map[string]string {
	t.Helper()
	path := filepath.Join(p.state, "demo.env")
	began := time.Now()
	for {
		// A run killed with SIGKILL leaves its demo.env: wait for ours.
		if info, err := os.Stat(path); err == nil && info.ModTime().After(p.began) {
			break
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("gatehouse dev exited (%v) before writing demo.env:\n%s", err, p.out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(began) > 3*time.Minute {
			t.Fatalf("no demo.env after 3 minutes:\n%s", p.out.String())
		}
	}
	t.Logf("demo.env written after %s", time.Since(began).Round(100*time.Millisecond))
	script := ". " + devenv.ShellQuote(path)
	for _, k := range devenv.EnvOrder {
		script += fmt.Sprintf(` && printf '%%s\0' "$%s"`, k)
	}
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("sourcing demo.env: %v", err)
	}
	values := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(values) != len(devenv.EnvOrder) {
		t.Fatalf("demo.env gave %d values, want %d", len(values), len(devenv.EnvOrder))
	}
	env := map[string]string{}
	for i, k := range devenv.EnvOrder {
		env[k] = values[i]
	}
	return env
}

// interrupt sends SIGINT and checks for a clean exit with nothing left
// behind: no etcd or kube-apiserver with the state directory, no token
// server on the port, no demo.env.
func (p *devProcess) interrupt(t *testing.T, state string, port int) {
	t.Helper()
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("gatehouse dev exited with %v after SIGINT:\n%s", err, p.out.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("gatehouse dev still running 45s after SIGINT:\n%s", p.out.String())
	}
	t.Logf("stopped %s after SIGINT", time.Since(began).Round(100*time.Millisecond))
	// Stopped in order, each part reported, no error for a clean stop.
	out := p.out.String()
	last := -1
	for _, part := range []string{"shutting down", "stopped the token server in", "stopped the operator in", "stopped kube-apiserver and etcd in"} {
		i := strings.LastIndex(out, part)
		if i <= last {
			t.Errorf("shutdown report lacks %q or has it out of order:\n%s", part, out)
		}
		last = i
	}
	if tail := out[strings.LastIndex(out, "shutting down"):]; strings.Contains(tail, "timeout") || strings.Contains(tail, "stopping") {
		t.Errorf("a clean stop reported an error:\n%s", tail)
	}
	if left := processesMentioning(state, "127.0.0.1:"+strconv.Itoa(port)); len(left) > 0 {
		t.Errorf("processes left behind after SIGINT:\n%s", strings.Join(left, "\n"))
	}
	if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err != nil {
		t.Errorf("port %d still in use after SIGINT: %v", port, err)
	} else {
		l.Close()
	}
	if _, err := os.Stat(filepath.Join(state, "demo.env")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("demo.env still exists after SIGINT (err=%v)", err)
	}
}

// processesMentioning lists running processes whose command line contains
// any of the strings.
func processesMentioning(strs ...string) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		line := strings.ReplaceAll(string(b), "\x00", " ")
		for _, s := range strs {
			if strings.Contains(line, s) {
				found = append(found, filepath.Base(filepath.Dir(f))+": "+line)
				break
			}
		}
	}
	return found
}

// devToken gets a client_credentials token with the credentials of
// demo.env, using golang.org/x/oauth2 as an app would.
func devToken(t *testing.T, env map[string]string) {
	t.Helper()
	cfg := clientcredentials.Config{
		ClientID:     env["DEMO_CLIENT_ID"],
		ClientSecret: env["DEMO_CLIENT_SECRET"],
		TokenURL:     env["GATEHOUSE_ISSUER"] + "/token",
		Scopes:       []string{"orders:read"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, devHTTPClient(t, env))
	tok, err := cfg.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials with the demo client: %v", err)
	}
	if tok.AccessToken == "" || tok.Expiry.Before(time.Now()) {
		t.Errorf("bad token: %+v", tok)
	}
}

// devWorkloadToken does what the summary shows: a token for the demo
// workload, which has no secret, with its ServiceAccount's token from the
// dev control plane (kubectl create token) as the client assertion, sent
// by golang.org/x/oauth2.
func devWorkloadToken(t *testing.T, env map[string]string) {
	t.Helper()
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	out, err := exec.Command(kubectl, "--kubeconfig", env["KUBECONFIG"], "create", "token", devenv.WorkloadClient,
		"-n", devenv.Namespace, "--audience", env["GATEHOUSE_ISSUER"]).Output()
	if err != nil {
		t.Fatalf("kubectl create token: %v", err)
	}
	cfg := clientcredentials.Config{
		ClientID: devenv.Namespace + "." + devenv.WorkloadClient,
		TokenURL: env["GATEHOUSE_ISSUER"] + "/token",
		Scopes:   []string{"orders:read"},
		EndpointParams: url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {strings.TrimSpace(string(out))}},
		AuthStyle: oauth2.AuthStyleInParams,
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, devHTTPClient(t, env))
	// The operator binds the client to its ServiceAccount's UID a moment
	// after the demo data are applied.
	testenv.Eventually(t, 20*time.Second, func() error {
		tok, err := cfg.Token(ctx)
		if err == nil && tok.AccessToken == "" {
			err = errors.New("no access token")
		}
		return err
	})
}

func devFreePort(t *testing.T) int {
	t.Helper()
	port, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// devHTTPClient trusts the local CA of demo.env, as curl --cacert does.
func devHTTPClient(t *testing.T, env map[string]string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(env["GATEHOUSE_CA_FILE"])
	if err != nil {
		t.Fatalf("the CA file of demo.env: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", env["GATEHOUSE_CA_FILE"])
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// devKubectlLogin uses the demo user's kubeconfig as its summary says:
// kubectl runs `gatehouse login` on a host with no display, as on an SSH
// session, so the plugin picks the device flow by itself and prints the
// device page's link (docs/tutorials/device-login.md); testlogin plays the
// person in a browser elsewhere. The control plane then knows the demo
// user and group from the ID token, lets the group view, and refuses
// anything more.
func devKubectlLogin(t *testing.T, env map[string]string) {
	t.Helper()
	assets, err := devenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(assets, "kubectl"), append([]string{"--kubeconfig", env["DEMO_KUBECONFIG"]}, args...)...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "DISPLAY=") && !strings.HasPrefix(kv, "WAYLAND_DISPLAY=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "XDG_CACHE_HOME="+filepath.Join(filepath.Dir(env["KUBECONFIG"]), "test-cache"))
		return cmd
	}
	whoami := kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}")
	stderr, err := whoami.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	whoami.Stdout = &stdout
	if err := whoami.Start(); err != nil {
		t.Fatal(err)
	}
	// The plugin says why it uses the device flow and prints the link
	// that carries the code; approve it as the demo user.
	sc := bufio.NewScanner(stderr)
	headless := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		headless = headless || strings.Contains(line, "no browser can open here")
		if !strings.HasPrefix(line, env["GATEHOUSE_ISSUER"]+"/device?user_code=") {
			continue
		}
		b, err := testlogin.New(env["GATEHOUSE_ISSUER"], devHTTPClient(t, env).Transport)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.ApproveDevice(context.Background(), line, env["DEMO_USERNAME"], env["DEMO_PASSWORD"], "approve"); err != nil {
			t.Fatalf("approving the device login as the demo user: %v", err)
		}
		break
	}
	if !headless {
		t.Error("gatehouse login did not say it chose the device flow for want of a browser")
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	if err := whoami.Wait(); err != nil {
		t.Fatalf("kubectl auth whoami as the demo user: %v", err)
	}
	if got := stdout.String(); !strings.HasPrefix(got, devenv.KubePrefix+devenv.Username+" ") || !strings.Contains(got, devenv.KubePrefix+devenv.Group) {
		t.Errorf("kubectl auth whoami: %q, want user %s%s in group %s%s", got, devenv.KubePrefix, devenv.Username, devenv.KubePrefix, devenv.Group)
	}
	// From the cached ID token now: no login.
	if out, err := kubectl("get", "namespaces", devenv.Namespace, "-o", "name").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "namespace/"+devenv.Namespace {
		t.Errorf("kubectl get namespaces as the demo user: %v: %s", err, out)
	}
	if out, _ := kubectl("auth", "can-i", "create", "pods").Output(); strings.TrimSpace(string(out)) != "no" {
		t.Errorf("the demo user may create pods (%q): it should only view", out)
	}
}

// firstWrite closes ch when something is first written to it.
type firstWrite struct {
	ch   chan struct{}
	once sync.Once
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.ch) })
	return len(p), nil
}
