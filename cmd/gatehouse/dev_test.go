package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
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
	if env1["GATEHOUSE_ISSUER"] != "http://127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("GATEHOUSE_ISSUER = %q", env1["GATEHOUSE_ISSUER"])
	}
	for _, k := range devEnvOrder {
		if env1[k] == "" {
			t.Errorf("demo.env has no %s", k)
		}
	}
	for _, want := range []string{"starting etcd", "kube-apiserver ready in", "/authorize?", "code_challenge_method=S256", "code_verifier", "grant_type=client_credentials", env1["DEMO_PASSWORD"], env1["DEMO_CLIENT_SECRET"]} {
		if !strings.Contains(first.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, first.out.String())
		}
	}
	devToken(t, env1)
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
	<-second.done
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

// demo.env must survive any value through a shell's source.
func TestDemoEnvQuoting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.env")
	env := map[string]string{}
	for i, k := range devEnvOrder {
		env[k] = fmt.Sprintf("v%d it's $HOME `date` \\ \"q\" ;|&", i)
	}
	if err := writeEnvFile(path, env); err != nil {
		t.Fatal(err)
	}
	for _, k := range devEnvOrder {
		out, err := exec.Command("sh", "-c", ". "+shellQuote(path)+` && printf '%s' "$`+k+`"`).Output()
		if err != nil || string(out) != env[k] {
			t.Errorf("%s: sourced %q (%v), want %q", k, out, err, env[k])
		}
	}
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
			case <-p.done:
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
	script := ". " + shellQuote(path)
	for _, k := range devEnvOrder {
		script += fmt.Sprintf(` && printf '%%s\0' "$%s"`, k)
	}
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("sourcing demo.env: %v", err)
	}
	values := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(values) != len(devEnvOrder) {
		t.Fatalf("demo.env gave %d values, want %d", len(values), len(devEnvOrder))
	}
	env := map[string]string{}
	for i, k := range devEnvOrder {
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
	if !strings.Contains(p.out.String(), "stopped in") {
		t.Errorf("no shutdown report in the output:\n%s", p.out.String())
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
	tok, err := cfg.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials with the demo client: %v", err)
	}
	if tok.AccessToken == "" || tok.Expiry.Before(time.Now()) {
		t.Errorf("bad token: %+v", tok)
	}
}

func devFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
