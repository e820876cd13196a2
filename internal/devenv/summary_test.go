package devenv

import (
	"strings"
	"testing"
	"time"
)

// The printed commands follow the issuer: with TLS they trust the local
// CA and include the kubectl login; without, they say why there is none.
func TestSummaryFollowsTLS(t *testing.T) {
	env := map[string]string{
		"GATEHOUSE_ISSUER": "https://127.0.0.1:5556", "GATEHOUSE_CA_FILE": "/state/tls/ca.crt", "KUBECONFIG": "/state/kubeconfig",
		"DEMO_CLIENT_ID": "gatehouse-dev.demo-app", "DEMO_CLIENT_SECRET": "s3cret", "DEMO_USERNAME": Username, "DEMO_PASSWORD": "pw",
		"DEMO_REDIRECT_URI": RedirectURI, "DEMO_KUBECONFIG": "/state/demo-user.kubeconfig",
	}
	var b strings.Builder
	Summary{Env: env, EnvFile: "/state/demo.env", Kubectl: "kubectl", Took: time.Second}.Print(&b)
	out := b.String()
	for _, want := range []string{
		"CA certificate  /state/tls/ca.crt",
		"curl -s --cacert '/state/tls/ca.crt' -u 'gatehouse-dev.demo-app:s3cret' -d grant_type=client_credentials",
		"kubectl --kubeconfig '/state/demo-user.kubeconfig' auth whoami",
		"group " + KubePrefix + Group,
		"https://127.0.0.1:5556/authorize?",
		"kubectl --kubeconfig '/state/kubeconfig' create token demo-workload -n gatehouse-dev --audience 'https://127.0.0.1:5556'",
		"-d client_id=gatehouse-dev.demo-workload -d client_assertion_type='urn:ietf:params:oauth:client-assertion-type:jwt-bearer' --data-urlencode client_assertion=\"$SA_TOKEN\" https://127.0.0.1:5556/token",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("with TLS, the summary lacks %q:\n%s", want, out)
		}
	}

	env["GATEHOUSE_ISSUER"], env["GATEHOUSE_CA_FILE"], env["DEMO_KUBECONFIG"] = "http://127.0.0.1:5556", "", ""
	b.Reset()
	Summary{Env: env, EnvFile: "/state/demo.env", Kubectl: "kubectl", Took: time.Second}.Print(&b)
	out = b.String()
	if strings.Contains(out, "--cacert") || strings.Contains(out, "CA certificate") || strings.Contains(out, "auth whoami") {
		t.Errorf("without TLS, the summary still names a CA or the kubectl login:\n%s", out)
	}
	if !strings.Contains(out, "needs an https issuer") {
		t.Errorf("without TLS, the summary does not say why there is no kubectl login:\n%s", out)
	}
}

// kube-apiserver's configuration names the issuer, the client as the
// audience, the CA, and the prefixed claims.
func TestAuthenticationConfig(t *testing.T) {
	b, err := AuthenticationConfig("https://127.0.0.1:5556", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "gatehouse-dev.kubectl")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"apiVersion: apiserver.config.k8s.io/v1", "kind: AuthenticationConfiguration", "url: https://127.0.0.1:5556",
		"- gatehouse-dev.kubectl", "certificateAuthority: |", "claim: preferred_username", "claim: groups", "prefix: 'gatehouse:'",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("AuthenticationConfiguration lacks %q:\n%s", want, b)
		}
	}
}
