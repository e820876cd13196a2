package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/servingcert"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/resourceserver"
)

const (
	tlsNS       = "gatehouse-tls"
	tlsNodePort = 30082
	tlsSecret   = "gatehouse-serving-cert"
)

// TestTokenServerTLSFromSecret runs an https issuer the way a user would:
// a kubernetes.io/tls Secret named in spec.tls, mounted by the operator
// into the token-server pods. Clients that trust the CA get tokens over
// https that validate against the JWKS fetched over https; a renewed
// certificate written into the Secret is served by the same pods, without
// a restart, once the kubelet has updated the volume.
func TestTokenServerTLSFromSecret(t *testing.T) {
	s := get(t)
	ca, err := servingcert.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	issuer := fmt.Sprintf("https://127.0.0.1:%d", tlsNodePort)
	t.Cleanup(func() {
		if out, err := s.run("delete", "namespace", tlsNS, "--wait", "--timeout=2m"); err != nil {
			t.Logf("deleting namespace %s: %v %s", tlsNS, err, out)
		}
	})
	if err := s.ensureNamespace(tlsNS); err != nil {
		t.Fatal(err)
	}
	firstSerial := s.applyServingCert(t, ca)
	tlsPatch := fmt.Sprintf(`- target: {kind: AuthorizationServer, name: %s}
  patch: |
    - {op: add, path: /spec/tls, value: {secretRef: {name: %s}}}
`, serverName, tlsSecret)
	if err := s.applySamples(tlsNS, issuer, tlsNodePort, tlsPatch); err != nil {
		t.Fatal(err)
	}
	s.kubectlT(t, "wait", "-n", tlsNS, "--for=condition=Ready", "--timeout=5m", "authorizationserver/"+serverName)
	s.kubectlT(t, "wait", "-n", tlsNS, "--for=condition=Ready", "--timeout=2m", "oauthclient", "--all")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	testenv.Eventually(t, 2*time.Minute, func() error {
		serial, err := servedSerial(ctx, ca)
		if err == nil && serial.Cmp(firstSerial) != 0 {
			err = fmt.Errorf("serving certificate %s, want the Secret's %s", serial, firstSerial)
		}
		return err
	})
	s.tokenOverTLS(t, client, issuer)
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", tlsNodePort, endpoints.JWKSPath)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the https port answered plain http with 200")
		}
	}
	podsBefore := s.serverPods(t, tlsNS)

	// Renewal: a new certificate in the same Secret, as cert-manager
	// writes it. The kubelet updates the volume (up to its sync period),
	// the server reloads the pair.
	renewedSerial := s.applyServingCert(t, ca)
	began := time.Now()
	testenv.Eventually(t, 3*time.Minute, func() error {
		serial, err := servedSerial(ctx, ca)
		if err == nil && serial.Cmp(renewedSerial) != 0 {
			err = fmt.Errorf("still serving %s, want the renewed %s", serial, renewedSerial)
		}
		return err
	})
	t.Logf("renewed certificate served %s after the Secret changed", time.Since(began).Round(time.Second))
	s.tokenOverTLS(t, client, issuer)
	podsAfter := s.serverPods(t, tlsNS)
	if before, after := podNames(podsBefore), podNames(podsAfter); !slices.Equal(before, after) {
		t.Errorf("token-server pods changed across the renewal: %v, then %v", before, after)
	}
	for _, p := range podsAfter {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount != 0 {
				t.Errorf("pod %s restarted %d times", p.Name, cs.RestartCount)
			}
		}
	}
}

// applyServingCert issues a certificate for 127.0.0.1 from ca and writes
// it into the spec.tls Secret, returning its serial number.
func (s *suite) applyServingCert(t *testing.T, ca *servingcert.CA) *big.Int {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := ca.Issue(certFile, keyFile, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.run("create", "secret", "tls", tlsSecret, "-n", tlsNS, "--cert", certFile, "--key", keyFile,
		"--dry-run=client", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.applyT(t, tlsNS, out)
	return pair.Leaf.SerialNumber
}

// servedSerial is the serial number of the certificate the NodePort
// serves, verified against ca.
func servedSerial(ctx context.Context, ca *servingcert.CA) (*big.Int, error) {
	d := tls.Dialer{Config: &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}}
	conn, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", tlsNodePort))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// tokenOverTLS gets a client_credentials token over https and validates it
// against the JWKS fetched over https.
func (s *suite) tokenOverTLS(t *testing.T, client *http.Client, issuer string) {
	t.Helper()
	id, secret := s.clientCreds(t, tlsNS, machineSecret)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {machineScope}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, issuer+endpoints.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("token over https: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("token over https: status %d, %v", resp.StatusCode, err)
	}
	v, err := resourceserver.New(t.Context(), resourceserver.Config{Issuer: issuer, Audience: machineAudience, HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(t.Context(), body.AccessToken); err != nil {
		t.Fatalf("the token does not validate against the JWKS fetched over https: %v", err)
	}
}

func podNames(pods []corev1.Pod) []string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}
