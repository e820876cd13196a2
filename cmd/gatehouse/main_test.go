package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

// The operator and server command tests share one test control plane.
// Run as a child of a test with $GATEHOUSE_TEST_MAIN_ARGS set (a JSON
// list of arguments), the test binary is `gatehouse` itself, in a process
// of its own: for what a process holds once (tracing's global provider,
// controller names), stopped by SIGTERM like the real one.
func TestMain(m *testing.M) {
	if args := os.Getenv(mainArgsEnv); args != "" {
		os.Exit(runAsMain(args))
	}
	os.Exit(testenv.Run(m))
}

const mainArgsEnv = "GATEHOUSE_TEST_MAIN_ARGS"

func runAsMain(argsJSON string) int {
	var args []string
	if err := json.Unmarshal([]byte(argsJSON), &args); err != nil {
		fmt.Fprintln(os.Stderr, mainArgsEnv+":", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr)
}

func TestVersionPrintsVersionAndCommit(t *testing.T) {
	defer func(v, c string) { version.Version, version.Commit = v, c }(version.Version, version.Commit)
	version.Version, version.Commit = "v1.2.3", "0123abcd"

	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, stderr.String())
	}
	if got := stdout.String(); !strings.HasPrefix(got, "gatehouse v1.2.3 (commit 0123abcd, go") {
		t.Errorf("version output = %q", got)
	}

	stdout.Reset()
	if code := run(context.Background(), []string{"version", "--output=json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("json: exit code %d, stderr %q", code, stderr.String())
	}
	var info version.Info
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		t.Fatalf("json output %q: %v", stdout.String(), err)
	}
	if info.Version != "v1.2.3" || info.Commit != "0123abcd" {
		t.Errorf("json = %+v", info)
	}
}

func TestBadInvocationsExitWithUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"version", "--output=yaml"}, "--output must be text or json"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"version", "--nope"}, "flag provided but not defined: -nope"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: wrote to stdout on error: %q", tc.args, stdout.String())
		}
	}
}
