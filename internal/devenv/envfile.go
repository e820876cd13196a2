package devenv

import (
	"fmt"
	"os"
	"strings"
)

// EnvOrder is what demo.env exports, in order. GATEHOUSE_CA_FILE and
// DEMO_KUBECONFIG (which logs in to the control plane as the demo user
// through `gatehouse login`) are empty without TLS: kube-apiserver trusts
// only https issuers.
var EnvOrder = []string{"GATEHOUSE_ISSUER", "GATEHOUSE_CA_FILE", "KUBECONFIG", "DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "DEMO_USERNAME", "DEMO_PASSWORD", "DEMO_REDIRECT_URI", "DEMO_KUBECONFIG"}

// WriteEnvFile writes KEY='value' lines a shell can source, atomically, so
// that a script waiting for the file never reads half of it.
func WriteEnvFile(path string, env map[string]string) error {
	var b strings.Builder
	b.WriteString("# Written by `gatehouse dev` while it runs: source it in a shell.\n")
	for _, k := range EnvOrder {
		fmt.Fprintf(&b, "export %s=%s\n", k, ShellQuote(env[k]))
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
