package servercontract

import (
	"reflect"
	"strings"
	"testing"
)

// The command line keeps one order, whatever is set, and leaves out what
// is not: an operator upgrade must not change a server's pod template.
func TestCommandLine(t *testing.T) {
	got := Args{
		TLSKeyFile: TLSDir + "/tls.key", TLSCertFile: TLSDir + "/tls.crt",
		ForwardedHeader: "Forwarded", TrustedProxies: "10.0.0.0/8",
		MetricsListen: ListenAddress(MetricsPort), Listen: ListenAddress(HTTPPort), AuthorizationServer: "ns/auth",
	}.CommandLine()
	want := []string{"server", "--authorization-server", "ns/auth", "--listen", ":8080", "--metrics-listen", ":9090",
		"--trusted-proxies", "10.0.0.0/8", "--forwarded-header", "Forwarded",
		"--tls-cert-file", "/etc/gatehouse/tls/tls.crt", "--tls-key-file", "/etc/gatehouse/tls/tls.key"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("command line\n%q\nwant\n%q", got, want)
	}
	if got := (Args{AuthorizationServer: "ns/auth", ForwardedHeader: "Forwarded"}).CommandLine(); !reflect.DeepEqual(got, []string{"server", "--authorization-server", "ns/auth"}) {
		t.Errorf("without trusted proxies the header is left off too: %q", got)
	}
}

func TestStringHidesThePostgresURL(t *testing.T) {
	s := Args{AuthorizationServer: "ns/auth", PostgresURL: "postgres://u:hunter2@db/x"}.String()
	if strings.Contains(s, "hunter2") || !strings.Contains(s, "--postgres-url <redacted>") {
		t.Errorf("String() = %q", s)
	}
}
