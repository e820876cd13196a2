package testenv

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// Kubectl runs the kubectl at path against kubeconfig and returns its
// output; the error carries the command and what kubectl said on stderr.
func Kubectl(path, kubeconfig string, args ...string) (string, error) {
	cmd := exec.Command(path, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// KubectlT is Kubectl that fails the test on an error.
func KubectlT(t testing.TB, path, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := Kubectl(path, kubeconfig, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
