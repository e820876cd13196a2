// Package release_test tests the release pipeline
// (.github/workflows/release.yaml) up to what only GitHub can do (pushing
// to ghcr.io, cosign keyless signing, provenance):
//
//   - the packaged chart points at the release image (TestReleaseChart,
//     in make test);
//   - the multi-platform image builds, is reproducible and pushes to a
//     registry with the digest it was built with (TestReleaseImage, built
//     only with -tags release, so make test neither builds nor skips it:
//     make test-release, which CI runs after make test, since its first
//     run compiles gatehouse for two more targets, -trimpath for amd64 and
//     for arm64);
//   - with a cluster (make test-cluster), the packaged chart installs and
//     runs the release image (TestReleaseChartInstalls).
package release_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// script runs a repository script with env added, returning its stdout.
func script(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), name), args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", name, err, stdout.String(), stderr.String())
	}
	t.Logf("%s (%s):\n%s", name, time.Since(began).Round(100*time.Millisecond), stderr.String())
	return strings.TrimSpace(stdout.String())
}
