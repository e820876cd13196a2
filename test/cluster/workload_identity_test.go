package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// The workload of docs/tutorials/workload-identity.md: its manifests and
// programs, applied and built exactly as the tutorial does.
const (
	workloadClient   = "orders-worker"
	workloadClientID = ns + "." + workloadClient
	workloadDir      = "examples/workload/k8s"
)

// TestWorkloadIdentity (issue 20): a pod with a projected token whose
// audience is the issuer gets access tokens and calls an API that
// validates them, and no Secret for that client exists at any point.
// Tokens of another ServiceAccount, of another audience, too long-lived,
// of a deleted and re-created ServiceAccount, or expired are refused;
// deleting the OAuthClient refuses its next request within a second.
func TestWorkloadIdentity(t *testing.T) {
	s := get(t)
	ctx := t.Context()
	cs := s.clientset(t)
	t.Cleanup(func() {
		for _, f := range []string{"workload.yaml", "orders-api.yaml", "client.yaml"} {
			_, _ = s.run("delete", "-n", ns, "--ignore-not-found", "--wait=false", "-f", filepath.Join(s.root, workloadDir, f))
		}
		_, _ = s.run("delete", "-n", ns, "--ignore-not-found", "serviceaccount/intruder")
	})
	s.kubectlT(t, "apply", "-n", ns, "-f", filepath.Join(s.root, workloadDir, "client.yaml"))
	s.noSecretFor(t)
	s.kubectlT(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=1m", "oauthclient/"+workloadClient)
	// The least lifetime the TokenRequest API issues: expired by the end.
	expiring, expiresAt := saToken(t, cs, workloadClient, s.issuer, 600)

	// make example-images, as the tutorial has it.
	if out, err := exec.Command(filepath.Join(s.root, "hack", "cluster", "example-images.sh")).CombinedOutput(); err != nil {
		t.Fatalf("hack/cluster/example-images.sh: %v\n%s", err, out)
	}
	s.kubectlT(t, "apply", "-n", ns, "-f", filepath.Join(s.root, workloadDir, "orders-api.yaml"), "-f", filepath.Join(s.root, workloadDir, "workload.yaml"))
	s.kubectlT(t, "rollout", "status", "-n", ns, "deployment/orders-api", "--timeout=3m")
	s.kubectlT(t, "rollout", "status", "-n", ns, "deployment/"+workloadClient, "--timeout=3m")
	var st workloadStats
	testenv.Eventually(t, 2*time.Minute, func() error {
		var err error
		if st, err = s.workloadStats(t); err != nil {
			return err
		}
		if st.APIOK < 3 {
			return fmt.Errorf("the workload called the API %d times, %d of them OK; token errors %d: %v", st.APICalls, st.APIOK, st.TokenErrors, st.RecentErrors)
		}
		return nil
	})
	if st.TokenErrors > 0 || st.APIOK != st.APICalls {
		t.Fatalf("the workload had %d failed token requests and %d failed API calls: %v", st.TokenErrors, st.APICalls-st.APIOK, st.RecentErrors)
	}
	t.Logf("the workload got %d access tokens with its projected token and called orders-api %d times (last answer %.80s)", st.Tokens, st.APIOK, st.LastAPIBody)
	s.noSecretFor(t)

	good := func() string { tok, _ := saToken(t, cs, workloadClient, s.issuer, 600); return tok }
	s.assertionAccepted(t, s.issuer, workloadClientID, good())
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	intruder, _ := saToken(t, cs, "intruder", s.issuer, 600)
	otherAudience, _ := saToken(t, cs, workloadClient, "https://kubernetes.default.svc", 600)
	longLived, _ := saToken(t, cs, workloadClient, s.issuer, 7200)
	for name, tok := range map[string]string{
		"another ServiceAccount's token": intruder, "a token for another audience": otherAudience,
		"a two-hour token (over maxTokenLifetime 1h)": longLived,
	} {
		s.assertionRefused(t, s.issuer, workloadClientID, tok, name)
	}

	// Deleted and re-created under the same name: the old tokens are
	// refused (another UID), the new ones accepted.
	before := good()
	s.kubectlT(t, "delete", "-n", ns, "serviceaccount/"+workloadClient)
	testenv.Eventually(t, time.Minute, func() error {
		oc := &oauthv1.OAuthClient{}
		if err := s.c.Get(ctx, ctrlclient.ObjectKey{Namespace: ns, Name: workloadClient}, oc); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady); c == nil || c.Reason != oauthv1.ReasonServiceAccountNotFound {
			return fmt.Errorf("Ready is %+v, want reason ServiceAccountNotFound", c)
		}
		return nil
	})
	s.kubectlT(t, "create", "serviceaccount", "-n", ns, workloadClient)
	s.kubectlT(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=1m", "oauthclient/"+workloadClient)
	s.assertionRefused(t, s.issuer, workloadClientID, before, "the token of the deleted ServiceAccount")
	after := good()
	s.assertionAccepted(t, s.issuer, workloadClientID, after)

	// Deleting the OAuthClient: its next request is refused within 1 s.
	took := s.refusedWithinAfterDelete(t, after)
	t.Logf("deleting the OAuthClient refused its next request %s after the delete was sent", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("the deleted client was refused only after %s, want within 1s", took)
	}
	s.noSecretFor(t)

	// The token of the first minutes, now expired.
	s.kubectlT(t, "apply", "-n", ns, "-f", filepath.Join(s.root, workloadDir, "client.yaml"))
	s.kubectlT(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=1m", "oauthclient/"+workloadClient)
	if wait := time.Until(expiresAt.Add(40 * time.Second)); wait > 0 {
		t.Logf("waiting %s for the first token to expire", wait.Round(time.Second))
		time.Sleep(wait)
	}
	s.assertionRefused(t, s.issuer, workloadClientID, expiring, "an expired token")
}

// TestPrivateKeyJWTReplayAcrossReplicas: with two token-server replicas on
// PostgreSQL, a private_key_jwt assertion (made by zitadel/oidc, an
// independent client library) accepted by one replica is refused when it
// is replayed at the other, and counted there as client_assertion_replay.
func TestPrivateKeyJWTReplayAcrossReplicas(t *testing.T) {
	s := get(t)
	issuer := s.postgresServer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := key.PublicKey.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	s.applyT(t, haNS, fmt.Sprintf(`apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata: {name: signer}
spec:
  serverRef: {name: %s}
  grantTypes: [client_credentials]
  scopes: [%s]
  authentication:
    privateKeyJWT:
      keys:
      - {kty: EC, crv: P-256, kid: signer-1, x: %s, "y": %s}
`, serverName, machineScope, b64(raw[1:33]), b64(raw[33:])))
	s.kubectlT(t, "wait", "-n", haNS, "--for=condition=Ready", "--timeout=1m", "oauthclient/signer")
	pods := s.readyServerPods(t, haNS, 2)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	signer, err := client.NewSignerFromPrivateKeyByte(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "signer-1")
	if err != nil {
		t.Fatal(err)
	}
	clientID := haNS + ".signer"
	assertion, err := client.SignedJWTProfileAssertion(clientID, []string{issuer}, time.Minute, signer)
	if err != nil {
		t.Fatal(err)
	}
	podURL := func(p corev1.Pod, port int) string { return fmt.Sprintf("http://%s:%d", p.Status.PodIP, port) }
	// The client is served once each replica's informer has it.
	for _, p := range pods {
		testenv.Eventually(t, 30*time.Second, func() error {
			probe, err := client.SignedJWTProfileAssertion(clientID, []string{issuer}, time.Minute, signer)
			if err != nil {
				return err
			}
			if status, body := postAssertion(t, podURL(p, 8080), clientID, probe); status != http.StatusOK {
				return fmt.Errorf("pod %s: %d %v", p.Name, status, body)
			}
			return nil
		})
	}
	if status, body := postAssertion(t, podURL(pods[0], 8080), clientID, assertion); status != http.StatusOK {
		t.Fatalf("pod %s refused a fresh assertion: %d %v", pods[0].Name, status, body)
	}
	replays0 := replayCount(t, podURL(pods[1], 9090))
	status, body := postAssertion(t, podURL(pods[1], 8080), clientID, assertion)
	if status != http.StatusBadRequest || body["error"] != "invalid_client" {
		t.Fatalf("the assertion replayed at pod %s: %d %v, want 400 invalid_client", pods[1].Name, status, body)
	}
	if got := replayCount(t, podURL(pods[1], 9090)); got != replays0+1 {
		t.Errorf("pod %s counted %v client_assertion_replay events, want %v", pods[1].Name, got, replays0+1)
	}
	t.Logf("an assertion accepted by %s was refused by %s (shared PostgreSQL) and counted as a replay", pods[0].Name, pods[1].Name)
}

func (s *suite) clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// saToken asks the TokenRequest API for a ServiceAccount's token, as the
// kubelet does for a projected volume (and kubectl create token).
func saToken(t *testing.T, cs kubernetes.Interface, sa, audience string, seconds int64) (string, time.Time) {
	t.Helper()
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of ServiceAccount %s: %v", sa, err)
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time
}

// noSecretFor fails if any Secret of ns belongs to the workload's client:
// by label, by the default name, or by holding its client_id.
func (s *suite) noSecretFor(t *testing.T) {
	t.Helper()
	var list corev1.SecretList
	if err := s.c.List(t.Context(), &list, ctrlclient.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, sec := range list.Items {
		if sec.Labels[oauthv1.LabelClient] == workloadClient || sec.Name == workloadClient+"-oauth-client" || string(sec.Data["client_id"]) == workloadClientID {
			t.Fatalf("Secret %s exists for the client without a secret", sec.Name)
		}
	}
}

type workloadStats struct {
	Tokens       int      `json:"tokens"`
	TokenErrors  int      `json:"tokenErrors"`
	APICalls     int      `json:"apiCalls"`
	APIOK        int      `json:"apiOK"`
	LastAPIBody  string   `json:"lastAPIBody"`
	RecentErrors []string `json:"recentErrors"`
}

// workloadStats reads the workload pod's /stats, on its pod address.
func (s *suite) workloadStats(t *testing.T) (workloadStats, error) {
	var pods corev1.PodList
	var st workloadStats
	if err := s.c.List(t.Context(), &pods, ctrlclient.InNamespace(ns), ctrlclient.MatchingLabels{"app": workloadClient}); err != nil {
		return st, err
	}
	for _, p := range pods.Items {
		if !podReady(&p) || p.DeletionTimestamp != nil {
			continue
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fmt.Sprintf("http://%s:8080/stats", p.Status.PodIP), nil)
		resp, err := httpClient.Do(req)
		if err != nil {
			return st, err
		}
		defer resp.Body.Close()
		return st, json.NewDecoder(resp.Body).Decode(&st)
	}
	return st, fmt.Errorf("no Ready pod of %s", workloadClient)
}

// postAssertion asks for a client_credentials token with a client
// assertion.
func postAssertion(t *testing.T, base, clientID, assertion string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_assertion_type": {oauthv1.ClientAssertionTypeJWTBearer}, "client_assertion": {assertion}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (s *suite) assertionAccepted(t *testing.T, issuer, clientID, assertion string) {
	t.Helper()
	if status, body := postAssertion(t, issuer, clientID, assertion); status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("a good service-account token was refused: %d %v", status, body)
	}
}

func (s *suite) assertionRefused(t *testing.T, issuer, clientID, assertion, what string) {
	t.Helper()
	if status, body := postAssertion(t, issuer, clientID, assertion); status != http.StatusBadRequest || body["error"] != "invalid_client" {
		t.Errorf("%s: %d %v, want 400 invalid_client", what, status, body)
	} else {
		t.Logf("refused, as it must be: %s", what)
	}
}

// refusedWithinAfterDelete asks for tokens with a good assertion in a
// loop, deletes the OAuthClient, and returns how long after the delete
// request was sent the first refusal came.
func (s *suite) refusedWithinAfterDelete(t *testing.T, assertion string) time.Duration {
	t.Helper()
	s.assertionAccepted(t, s.issuer, workloadClientID, assertion)
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: workloadClient}}
	sent := time.Now()
	if err := s.c.Delete(t.Context(), oc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if status, _ := postAssertion(t, s.issuer, workloadClientID, assertion); status != http.StatusOK {
			return time.Since(sent)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the deleted client still got tokens after 30s")
	return 0
}

// replayCount reads a token-server pod's count of replayed assertions.
func replayCount(t *testing.T, metricsBase string) float64 {
	t.Helper()
	resp, err := httpClient.Get(metricsBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, `gatehouse_server_security_events_total{event="client_assertion_replay"} `); ok {
			var f float64
			_, _ = fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("%s/metrics has no client_assertion_replay series", metricsBase)
	return 0
}
