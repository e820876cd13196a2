package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/servercontract"
	"github.com/gatehouse-dev/gatehouse/internal/servingcert"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"log/slog"
)

func TestServerFlags(t *testing.T) {
	t.Setenv(servercontract.EnvPostgresURL, "postgres://u:pw@127.0.0.1/db")
	f, err := parseServerFlags([]string{"--authorization-server", "auth-system/main"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.namespace != "auth-system" || f.name != "main" || f.listen != ":8080" || f.metricsListen != ":9090" || f.postgresURL != "postgres://u:pw@127.0.0.1/db" {
		t.Fatalf("flags = %+v", f)
	}
	if len(f.proxies.Prefixes) != 0 || f.proxies.Header != "X-Forwarded-For" {
		t.Errorf("by default no proxy is trusted: %+v", f.proxies)
	}
	f, err = parseServerFlags([]string{"--authorization-server", "a/b", "--trusted-proxies", "10.0.0.0/8, fd00::/8,192.0.2.7", "--forwarded-header", "Forwarded"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(f.proxies.Prefixes); got != "[10.0.0.0/8 fd00::/8 192.0.2.7/32]" || f.proxies.Header != "Forwarded" {
		t.Errorf("--trusted-proxies parsed to %s, header %s", got, f.proxies.Header)
	}
	for _, args := range [][]string{
		{},
		{"--authorization-server", "main"},
		{"--authorization-server", "Bad_NS/main"},
		{"--authorization-server", "a/b", "--listen", ":9090"},
		{"--authorization-server", "a/b", "--listen", "8080"},
		{"--authorization-server", "a/b", "--log-level", "loud"},
		{"--authorization-server", "a/b", "extra"},
		{"--authorization-server", "a/b", "--trusted-proxies", "10.0.0.0/8,proxy.example"},
		{"--authorization-server", "a/b", "--trusted-proxies", "10.0.0.1/8"},
		{"--authorization-server", "a/b", "--forwarded-header", "X-Real-IP"},
		{"--authorization-server", "a/b", "--tls-cert-file", "tls.crt"},
		{"--authorization-server", "a/b", "--tls-key-file", "tls.key"},
	} {
		if _, err := parseServerFlags(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
}

// The help text must not print the database password from the environment.
func TestServerHelpHidesPostgresURL(t *testing.T) {
	t.Setenv(servercontract.EnvPostgresURL, "postgres://u:hunter2@127.0.0.1/db")
	var out strings.Builder
	_, _ = parseServerFlags([]string{"-h"}, &out)
	if strings.Contains(out.String(), "hunter2") {
		t.Fatal("help output carries the database password")
	}
}

// TestServerCommand runs `gatehouse server` against a test API server: it
// finds the cluster through KUBECONFIG, waits for its AuthorizationServer,
// becomes ready, and issues a token that x/oauth2 obtains.
func TestServerCommand(t *testing.T) {
	cp := testenv.Get(t)
	t.Setenv("KUBECONFIG", cp.Kubeconfig)
	ctx := context.Background()
	c := cp.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "srv-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	listen, ops := freeAddr(t), freeAddr(t)
	issuer := "http://" + listen

	logs := &testenv.LogBuffer{}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"server", "--authorization-server", ns.Name + "/auth", "--listen", listen, "--metrics-listen", ops}, io.Discard, logs)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("server exited %d; logs:\n%s", code, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	}()
	// Alive before its AuthorizationServer exists, but not ready.
	testenv.Eventually(t, 30*time.Second, func() error { _, err := httpGet("http://" + ops + "/healthz"); return err })
	if _, err := httpGet("http://" + ops + "/readyz"); err == nil {
		t.Fatal("ready without an AuthorizationServer")
	}

	createServerObjects(t, c, ns.Name, issuer)
	secret := "s3cr3t-" + strings.Repeat("x", 40)
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "worker"},
		Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "auth"},
			GrantTypes: []oauthv1.GrantType{oauthv1.GrantClientCredentials}, Scopes: []oauthv1.ScopeName{"jobs:run"}}}
	for _, o := range []client.Object{
		&oauthv1.Scope{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "jobs-run"},
			Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "auth"}, Name: "jobs:run", Description: "Run jobs"}},
		oc,
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// What the operator would write into the client's status.
	oc.Status.ClientID = ns.Name + ".worker"
	oc.Status.SecretHashes = []oauthv1.SecretHash{{Hash: clientsecret.Hash(secret)}}
	meta.SetStatusCondition(&oc.Status.Conditions, metav1.Condition{Type: oauthv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "ready"})
	if err := c.Status().Update(ctx, oc); err != nil {
		t.Fatal(err)
	}

	testenv.Eventually(t, 30*time.Second, func() error {
		_, err := httpGet("http://" + ops + "/readyz")
		if err != nil {
			return fmt.Errorf("%w; logs:\n%s", err, logs.String())
		}
		return nil
	})
	cc := &clientcredentials.Config{ClientID: oc.Status.ClientID, ClientSecret: secret, TokenURL: issuer + "/token"}
	var tok *oauth2.Token
	var err error
	testenv.Eventually(t, 10*time.Second, func() error { tok, err = cc.Token(ctx); return err })
	if tok.AccessToken == "" || tok.Extra("scope") != "jobs:run" {
		t.Fatalf("token = %+v", tok)
	}
	md, err := httpGet(issuer + "/.well-known/oauth-authorization-server")
	if err != nil || !strings.Contains(md, `"issuer": "`+issuer+`"`) {
		t.Fatalf("metadata: %v %s", err, md)
	}
	body, err := httpGet("http://" + ops + "/metrics")
	if err != nil || !strings.Contains(body, `gatehouse_server_requests_total{endpoint="token",grant="client_credentials",outcome="success"}`) {
		t.Fatalf("metrics: %v", err)
	}
	if _, err := httpGet(issuer + "/metrics"); err == nil {
		t.Error("metrics are served on the public port")
	}
}

// The command reads every flag of the contract the operator writes: a
// command line built from servercontract.Args parses back to the same
// settings.
func TestServerParsesTheContractsCommandLine(t *testing.T) {
	args := servercontract.Args{
		AuthorizationServer: "team/auth", Listen: ":8443", MetricsListen: ":9443", PostgresURL: "postgres://u@127.0.0.1/db",
		TrustedProxies: "10.0.0.0/8", ForwardedHeader: "Forwarded", TLSCertFile: "/c.pem", TLSKeyFile: "/k.pem",
		LogLevel: "debug", GCInterval: "2m", AuditLog: "/var/log/audit.log",
	}
	line := args.CommandLine()
	if line[0] != servercontract.Command {
		t.Fatalf("command line %q", line)
	}
	f, err := parseServerFlags(line[1:], io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.namespace != "team" || f.name != "auth" || f.listen != args.Listen || f.metricsListen != args.MetricsListen ||
		f.postgresURL != args.PostgresURL || f.tlsCert != args.TLSCertFile || f.tlsKey != args.TLSKeyFile ||
		f.logLevel != slog.LevelDebug || f.gcInterval != 2*time.Minute || f.auditLog != args.AuditLog ||
		f.proxies.Header != "Forwarded" || len(f.proxies.Prefixes) != 1 {
		t.Errorf("parsed %+v from %q", f, line)
	}
}

// gatehouse dev passes the proxy settings on to its token server, checked
// before anything starts.
func TestDevFlagsTrustedProxies(t *testing.T) {
	f, err := parseDevFlags([]string{"--trusted-proxies", "127.0.0.1/32"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.proxyArgs.CommandLine(), " "); got != "server --trusted-proxies 127.0.0.1/32 --forwarded-header X-Forwarded-For" {
		t.Errorf("server arguments %q", got)
	}
	if _, err := parseDevFlags([]string{"--trusted-proxies", "localhost"}, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("a bad --trusted-proxies: %v, want a usage error", err)
	}
}

// createServerObjects creates AuthorizationServer "auth" with active
// signing keys, as the operator would have made them, and whatever else
// is given.
func createServerObjects(t *testing.T, c client.Client, ns, issuer string, more ...client.Object) {
	t.Helper()
	set := &keyset.Set{}
	// ES256 signs access tokens; RS256 ID tokens (OpenID Connect's default).
	for _, alg := range []string{keyset.ES256, keyset.RS256} {
		key, err := keyset.Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		key.State, key.Created, key.ActivatesAt = keyset.StateActive, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)
		set.Keys = append(set.Keys, key)
	}
	keys, _ := set.Marshal()
	for _, o := range append([]client.Object{
		&oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"}, Spec: oauthv1.AuthorizationServerSpec{Issuer: issuer}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: keyset.SecretName("auth")}, Data: map[string][]byte{keyset.SecretDataKey: keys}},
	}, more...) {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

// startServer runs `gatehouse server` for ns/auth in this process and
// returns its logs and a function that stops it and returns its exit code.
func startServer(t *testing.T, ns string, args ...string) (*testenv.LogBuffer, func() int) {
	t.Helper()
	logs := &testenv.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"server", "--authorization-server", ns + "/auth"}, args...), io.Discard, logs)
	}()
	var code *int
	stop := func() int {
		if code == nil {
			cancel()
			select {
			case c := <-done:
				code = &c
			case <-time.After(30 * time.Second):
				t.Fatal("server did not stop")
			}
		}
		return *code
	}
	t.Cleanup(func() { stop() })
	return logs, stop
}

// TestServerTLS serves the public port over HTTPS from certificate files
// and renews the certificate under it: new connections get the new one,
// with no restart.
func TestServerTLS(t *testing.T) {
	cp := testenv.Get(t)
	t.Setenv("KUBECONFIG", cp.Kubeconfig)
	defer func(d time.Duration) { tlsReloadInterval = d }(tlsReloadInterval)
	tlsReloadInterval = 50 * time.Millisecond
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tls-"}}
	if err := cp.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	ca, certFile, keyFile := testServingCert(t)
	listen, ops := freeAddr(t), freeAddr(t)
	issuer := "https://" + listen
	createServerObjects(t, cp.Client, ns.Name, issuer)
	logs, stop := startServer(t, ns.Name, "--listen", listen, "--metrics-listen", ops, "--tls-cert-file", certFile, "--tls-key-file", keyFile)

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	serial := func() (string, error) {
		hc.CloseIdleConnections() // a new handshake each time
		resp, err := hc.Get(issuer + "/.well-known/openid-configuration")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"issuer": "`+issuer+`"`) {
			return "", fmt.Errorf("%s: %s", resp.Status, body)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
	}
	var first string
	testenv.Eventually(t, 30*time.Second, func() (err error) { first, err = serial(); return err })
	if resp, err := http.Get("http://" + listen + "/.well-known/openid-configuration"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain http to the TLS port: %s, want 400", resp.Status)
		}
	}

	if err := ca.Issue(certFile, keyFile, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		got, err := serial()
		if err == nil && got == first {
			err = errors.New("still the first certificate")
		}
		return err
	})
	if code := stop(); code != 0 || !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Errorf("exit %d; logs:\n%s", code, logs.String())
	}
}

// TLS with an http issuer would send clients to a port that does not
// speak http: refused at start with the reason.
func TestServerTLSNeedsHTTPSIssuer(t *testing.T) {
	cp := testenv.Get(t)
	t.Setenv("KUBECONFIG", cp.Kubeconfig)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tls-"}}
	if err := cp.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	_, certFile, keyFile := testServingCert(t)
	listen := freeAddr(t)
	createServerObjects(t, cp.Client, ns.Name, "http://"+listen)
	logs, stop := startServer(t, ns.Name, "--listen", listen, "--metrics-listen", freeAddr(t), "--tls-cert-file", certFile, "--tls-key-file", keyFile)
	testenv.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(logs.String(), "is not https") {
			return errors.New("no refusal yet")
		}
		return nil
	})
	if code := stop(); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
}

// testServingCert is a local CA and a certificate from it for 127.0.0.1.
func testServingCert(t *testing.T) (*servingcert.CA, string, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := servingcert.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := ca.Issue(certFile, keyFile, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	return ca, certFile, keyFile
}

// TestServerWaitsForTheAPIServer starts `gatehouse server` while its API
// server cannot be reached: it stays alive and unready, saying why, rather
// than exit into CrashLoopBackOff, and becomes ready once the API server
// answers (here: a TCP forwarder to the test API server opens on the
// address its kubeconfig names).
func TestServerWaitsForTheAPIServer(t *testing.T) {
	cp := testenv.Get(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "wait-"}}
	if err := cp.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	listen, ops, away := freeAddr(t), freeAddr(t), freeAddr(t)
	createServerObjects(t, cp.Client, ns.Name, "http://"+listen)
	kubeconfig, err := os.ReadFile(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	real := u.Host
	if !strings.Contains(string(kubeconfig), real) {
		t.Fatalf("the kubeconfig does not name %s:\n%s", real, kubeconfig)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(kubeconfig), real, away)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", path)
	logs, stop := startServer(t, ns.Name, "--listen", listen, "--metrics-listen", ops)

	testenv.Eventually(t, 30*time.Second, func() error { _, err := httpGet("http://" + ops + "/healthz"); return err })
	time.Sleep(3 * time.Second) // a few attempts
	if _, err := httpGet("http://" + ops + "/readyz"); err == nil || !strings.Contains(err.Error(), "waiting for the API server") {
		t.Fatalf("/readyz with no API server: %v, want 503 waiting for the API server", err)
	}
	if !strings.Contains(logs.String(), `"msg":"waiting for the API server"`) {
		t.Errorf("no log line says what the server waits for:\n%s", logs.String())
	}

	forward(t, away, real)
	testenv.Eventually(t, 30*time.Second, func() error { _, err := httpGet("http://" + ops + "/readyz"); return err })
	if code := stop(); code != 0 {
		t.Errorf("server exited %d; logs:\n%s", code, logs.String())
	}
}

// forward accepts connections on from and copies them to and from to,
// until the test ends.
func forward(t *testing.T, from, to string) {
	t.Helper()
	l, err := net.Listen("tcp", from)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", to)
			if err != nil {
				_ = in.Close()
				continue
			}
			t.Cleanup(func() { _ = in.Close(); _ = out.Close() })
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
}
