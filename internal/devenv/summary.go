package devenv

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
)

// Summary is what `gatehouse dev` prints once everything is up.
type Summary struct {
	// Env is what demo.env holds (EnvOrder).
	Env     map[string]string
	EnvFile string
	// Kubectl is the kubectl to show in commands.
	Kubectl string
	Took    time.Duration
}

// Print writes the summary: where things are, and commands that work.
func (s Summary) Print(w io.Writer) {
	env := s.Env
	issuer := env["GATEHOUSE_ISSUER"]
	ep := endpoints.For(issuer)
	curl := "curl -s"
	if ca := env["GATEHOUSE_CA_FILE"]; ca != "" {
		curl += " --cacert " + ShellQuote(ca)
	}
	fmt.Fprintf(w, `
Gatehouse is running (ready in %s). Ctrl-C stops everything.

  Issuer          %s
  Metadata        %s
`, s.Took.Round(100*time.Millisecond), issuer, ep.Metadata)
	if ca := env["GATEHOUSE_CA_FILE"]; ca != "" {
		fmt.Fprintf(w, "  CA certificate  %s\n                  (a local CA: trust it in a browser, or pass it to curl as --cacert)\n", ca)
	}
	fmt.Fprintf(w, `  Kubeconfig      %s
                  %s --kubeconfig %s get gatehouse -A
  Demo user       %s / %s
  Demo client     client_id     %s
                  client_secret %s
                  redirect URI  %s
  For scripts     source %s
`, env["KUBECONFIG"], s.Kubectl, ShellQuote(env["KUBECONFIG"]), env["DEMO_USERNAME"], env["DEMO_PASSWORD"],
		env["DEMO_CLIENT_ID"], env["DEMO_CLIENT_SECRET"], env["DEMO_REDIRECT_URI"], ShellQuote(s.EnvFile))
	s.printCodeFlow(w, curl, ep)
	s.printWorkload(w, curl, ep)
	s.printKubectlLogin(w)
}

// printWorkload shows a client with no secret getting a token with its
// ServiceAccount's token, which the dev control plane issues.
func (s Summary) printWorkload(w io.Writer, curl string, ep endpoints.Endpoints) {
	env := s.Env
	fmt.Fprintf(w, `A token for a workload with no secret at all: the client %s.%s authenticates with
the tokens of its ServiceAccount (docs/tutorials/workload-identity.md):

  SA_TOKEN=$(%s --kubeconfig %s create token %s -n %s --audience %s)
  %s -d grant_type=client_credentials -d scope=%s -d client_id=%s.%s -d client_assertion_type=%s --data-urlencode client_assertion="$SA_TOKEN" %s

`, Namespace, WorkloadClient, s.Kubectl, ShellQuote(env["KUBECONFIG"]), WorkloadClient, Namespace, ShellQuote(env["GATEHOUSE_ISSUER"]),
		curl, ScopeRead, Namespace, WorkloadClient, ShellQuote("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), ep.Token)
}

func (s Summary) printCodeFlow(w io.Writer, curl string, ep endpoints.Endpoints) {
	env := s.Env
	verifier, challenge, state := PKCE()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {env["DEMO_CLIENT_ID"]},
		"redirect_uri":          {env["DEMO_REDIRECT_URI"]},
		"scope":                 {string(ScopeRead) + " " + string(ScopeWrite)},
		"state":                 {state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	basic := ShellQuote(env["DEMO_CLIENT_ID"] + ":" + env["DEMO_CLIENT_SECRET"])
	fmt.Fprintf(w, `
Log in as the demo user: open this URL, then copy the code from the address
bar of the page it redirects to (nothing listens on %s):

  %s

  code_verifier   %s

Exchange the code for tokens:

  %s -u %s -d grant_type=authorization_code -d code=CODE -d code_verifier=%s --data-urlencode redirect_uri=%s %s

A token for the client itself (client_credentials):

  %s -u %s -d grant_type=client_credentials -d scope=%s %s

`, env["DEMO_REDIRECT_URI"], ep.Authorization+"?"+q.Encode(), verifier,
		curl, basic, verifier, ShellQuote(env["DEMO_REDIRECT_URI"]), ep.Token,
		curl, basic, ScopeRead, ep.Token)
}

// printKubectlLogin shows kubectl logging in as the demo user: the
// control plane trusts the issuer's ID tokens (AuthenticationConfig).
func (s Summary) printKubectlLogin(w io.Writer) {
	kc := s.Env["DEMO_KUBECONFIG"]
	if kc == "" {
		fmt.Fprintf(w, "Logging in to the control plane with Gatehouse needs an https issuer: run without --tls=false.\n\n")
		return
	}
	fmt.Fprintf(w, `Log in to the control plane as the demo user (kubectl runs gatehouse login, which
opens the login page and caches the ID token; group %s%s may read namespaces,
pods and the Gatehouse objects):

  %s --kubeconfig %s auth whoami
  %s --kubeconfig %s get namespaces

`, KubePrefix, Group, s.Kubectl, ShellQuote(kc), s.Kubectl, ShellQuote(kc))
}

// PKCE returns a code verifier, its S256 challenge (RFC 7636 §4.1-4.2) and
// a state value.
func PKCE() (verifier, challenge, state string) {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b[:32])
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:]), base64.RawURLEncoding.EncodeToString(b[32:])
}

// KubectlPath is the kubectl built with the control plane (same version),
// relative to the working directory when it is below it, or else plain
// kubectl from PATH.
func KubectlPath(assets string) string {
	path := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(path); err != nil {
		return "kubectl"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return path
}
