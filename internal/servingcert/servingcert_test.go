package servingcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func issue(t *testing.T, ca *CA, dir string, hosts ...string) (string, string) {
	t.Helper()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := ca.Issue(certFile, keyFile, hosts, time.Hour); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// serve runs an HTTPS server with r's configuration and returns a function
// that connects to it as a client trusting only ca and returns the serial
// number of the certificate it was shown.
func serve(t *testing.T, r *Reloader, ca *CA) func() (string, error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: r.TLSConfig(), Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := l.Addr().String()
	return func() (string, error) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		if err != nil {
			return "", err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}
}

// TestWatchReloadsRenewedPair renews the certificate under a serving
// server, as cert-manager and the kubelet do, and checks that new
// handshakes see the new one without a restart, and that a broken
// renewal leaves the old one served.
func TestWatchReloadsRenewedPair(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := issue(t, ca, dir, "127.0.0.1", "localhost")
	r, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	first := r.Leaf().SerialNumber.String()
	handshake := serve(t, r, ca)
	if got, err := handshake(); err != nil || got != first {
		t.Fatalf("first handshake: serial %s, %v; want %s", got, err, first)
	}

	reports := make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Watch(ctx, 10*time.Millisecond, func(_ *x509.Certificate, err error) { reports <- err })

	issue(t, ca, dir, "127.0.0.1", "localhost")
	// The watcher may catch the new key before the new certificate (a
	// mismatch it refuses); a later poll sees both.
	deadline := time.After(5 * time.Second)
	for reloaded := false; !reloaded; {
		select {
		case err := <-reports:
			reloaded = err == nil
		case <-deadline:
			t.Fatal("the renewed pair was not reloaded within 5s")
		}
	}
	second, err := handshake()
	if err != nil || second == first {
		t.Fatalf("after renewal: serial %s (%v), want a new one (old %s)", second, err, first)
	}

	// A truncated certificate: reported, and the second pair stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-reports; err == nil || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("broken renewal reported as %v, want an error naming %s", err, certFile)
	}
	if got, err := handshake(); err != nil || got != second {
		t.Fatalf("after a broken renewal: serial %s (%v), want the last good one %s", got, err, second)
	}
}

func TestLoadRefusesBadPairs(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := issue(t, ca, dir, "127.0.0.1")
	otherCert, otherKey := filepath.Join(dir, "o.crt"), filepath.Join(dir, "o.key")
	if err := ca.Issue(otherCert, otherKey, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ cert, key, want string }{
		"missing certificate": {filepath.Join(dir, "nope.crt"), keyFile, "reading the TLS certificate"},
		"missing key":         {certFile, filepath.Join(dir, "nope.key"), "reading the TLS key"},
		"key of another pair": {certFile, otherKey, "private key does not match public key"},
		"key as certificate":  {keyFile, keyFile, "TLS key pair"},
	} {
		if _, err := Load(tc.cert, tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if err := ca.Issue(otherCert, otherKey, nil, time.Hour); err == nil {
		t.Error("Issue with no hosts succeeded")
	}
}

// The CA is kept across runs (whoever trusts it keeps trusting it) and
// replaced when its files are damaged.
func TestEnsureCAKeepsItsCA(t *testing.T) {
	dir := t.TempDir()
	a, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.CertPEM, b.CertPEM) {
		t.Error("a second EnsureCA made a new CA")
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.CertPEM, c.CertPEM) {
		t.Error("a damaged CA was kept")
	}
	certFile, keyFile := issue(t, c, t.TempDir(), "127.0.0.1")
	r, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Leaf().Verify(x509.VerifyOptions{Roots: c.Pool(), DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("the serving certificate does not verify against the new CA: %v", err)
	}
	if _, err := r.Leaf().Verify(x509.VerifyOptions{Roots: a.Pool(), DNSName: "127.0.0.1"}); err == nil {
		t.Error("the serving certificate verifies against the replaced CA")
	}
}
