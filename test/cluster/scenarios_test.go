package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/resourceserver"
)

const (
	machineSecret   = "inventory-sync-oauth-client"
	machineScope    = "inventory.sync"
	machineAudience = "https://inventory.example.com"
	webSecret       = "storefront-oauth"
)

func TestTokenThroughService(t *testing.T) {
	s := get(t)
	id, secret := s.clientCreds(t, ns, machineSecret)
	tok, err := clientCredentials(t.Context(), s.issuer, id, secret)
	if err != nil {
		t.Fatalf("client_credentials through NodePort %d: %v", nodePort, err)
	}
	v, err := resourceserver.New(t.Context(), resourceserver.Config{Issuer: s.issuer, Audience: machineAudience})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Validate(t.Context(), tok)
	if err != nil {
		t.Fatalf("the token does not validate against the server's JWKS: %v", err)
	}
	if claims.ClientID != id || !slices.Contains(claims.Scopes, machineScope) {
		t.Fatalf("claims: client %q scopes %v, want %q with %s", claims.ClientID, claims.Scopes, id, machineScope)
	}
	t.Logf("token for %s from the pod behind %s/%s-nodeport, valid against its JWKS", id, ns, serverName)
}

func TestTokenServerPods(t *testing.T) {
	s := get(t)
	dep := s.deployment(t, serverName+"-server")
	pods := s.serverPods(t, ns)
	if len(pods) == 0 {
		t.Fatal("no token-server pods")
	}
	for _, p := range pods {
		if !podReady(&p) {
			t.Errorf("pod %s is not Ready: %+v", p.Name, p.Status.Conditions)
		}
		c := p.Spec.Containers[0]
		if c.Image != s.image {
			t.Errorf("pod %s runs %s, want the local image %s", p.Name, c.Image, s.image)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil {
			t.Errorf("pod %s: probes %+v %+v", p.Name, c.ReadinessProbe, c.LivenessProbe)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount != 0 {
				t.Errorf("pod %s: container %s restarted %d times (liveness probe or crash)", p.Name, cs.Name, cs.RestartCount)
			}
		}
		logs := s.kubectlT(t, "logs", "-n", ns, p.Name)
		if !strings.Contains(logs, "token server started") {
			t.Errorf("kubectl logs %s has no start line:\n%s", p.Name, tailLines(logs, 20))
		}
	}
	if dep.Status.AvailableReplicas < 1 {
		t.Errorf("Deployment %s: %d available", dep.Name, dep.Status.AvailableReplicas)
	}
	t.Logf("%d token-server pods Ready (probes passing), kubectl logs works", len(pods))
}

// ---------------------------------------------------------------- app

// buildImage builds a command of this module into an image and loads it
// into the cluster's containerd.
func (s *suite) buildImage(t *testing.T, tag, pkg string, extra ...string) {
	t.Helper()
	bin := filepath.Join(s.tmp, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, pkg)
	cmd.Dir, cmd.Env = s.root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	tar := bin + ".tar"
	args := append([]string{"-tag", tag, "-out", tar, "-file", bin + ":/" + filepath.Base(pkg) + ":0755",
		"-entrypoint", "/" + filepath.Base(pkg)}, extra...)
	if out, err := exec.Command(filepath.Join(s.root, "bin", "cluster", "gatehouse-image"), args...).CombinedOutput(); err != nil {
		t.Fatalf("gatehouse-image: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(s.root, "hack", "cluster", "cluster.sh"), "load", tar).CombinedOutput(); err != nil {
		t.Fatalf("loading %s: %v\n%s", tag, err, out)
	}
}

type appStats struct {
	Requests   int              `json:"requests"`
	OK         int              `json:"ok"`
	Failed     int              `json:"failed"`
	Errors     []string         `json:"errors"`
	Secret     string           `json:"secret"`
	OKBySecret map[string]int   `json:"okBySecret"`
	JWKSKids   []string         `json:"jwksKids"`
	FirstSeen  map[string]int64 `json:"firstSeen"`
	Pod        string           `json:"pod"`
}

func appStatsFrom(ctx context.Context, u string) (*appStats, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st appStats
	return &st, json.NewDecoder(resp.Body).Decode(&st)
}

func secretHash(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:6])
}

// TestAppDeploymentUsesClientSecret runs an app that mounts the machine
// client's Secret and the server's JWKS ConfigMap. It rotates the client
// secret and the signing keys: the app must pick up the new secret within
// the grace period with no failed request, and the new key must be in the
// app's mounted JWKS before any token is signed with it.
func TestAppDeploymentUsesClientSecret(t *testing.T) {
	s := get(t)
	const appPort = 30085
	s.buildImage(t, "localhost/gatehouse-testapp:1", "./test/cluster/cmd/testapp")
	s.applyT(t, ns, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: testapp}
spec:
  replicas: 1
  selector: {matchLabels: {app: testapp}}
  template:
    metadata: {labels: {app: testapp}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532}
      containers:
      - name: app
        image: localhost/gatehouse-testapp:1
        imagePullPolicy: Never
        # The Service's DNS name: CoreDNS and kube-proxy inside the cluster.
        args: [--token-url, http://%[1]s-server.%[2]s.svc.cluster.local/token, --scope, %[3]s]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 2}
        volumeMounts:
        - {name: oauth, mountPath: /etc/oauth-client, readOnly: true}
        - {name: jwks, mountPath: /etc/gatehouse/jwks, readOnly: true}
      volumes:
      - name: oauth
        secret: {secretName: %[4]s}
      - name: jwks
        configMap: {name: %[1]s-jwks}
---
apiVersion: v1
kind: Service
metadata: {name: testapp}
spec:
  type: NodePort
  selector: {app: testapp}
  ports: [{name: http, port: 80, targetPort: http, nodePort: %[5]d}]
`, serverName, ns, machineScope, machineSecret, appPort))
	s.kubectlT(t, "rollout", "status", "-n", ns, "deployment/testapp", "--timeout=3m")
	statsURL := fmt.Sprintf("http://127.0.0.1:%d/stats", appPort)

	var st *appStats
	testenv.Eventually(t, time.Minute, func() error {
		var err error
		if st, err = appStatsFrom(t.Context(), statsURL); err != nil {
			return err
		}
		if st.OK < 5 {
			return fmt.Errorf("the app has %d good token requests, %d failed: %v", st.OK, st.Failed, st.Errors)
		}
		return nil
	})
	if st.Failed > 0 {
		t.Fatalf("the app had %d failed token requests before any rotation: %v", st.Failed, st.Errors)
	}
	before := st.Requests
	oldHash := st.Secret
	t.Logf("the app gets tokens with the mounted secret (%d requests, secret %s)", st.OK, oldHash)

	// Rotate the client secret.
	var oc oauthv1.OAuthClient
	if err := s.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "inventory-sync"}, &oc); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(oc.DeepCopy())
	if oc.Annotations == nil {
		oc.Annotations = map[string]string{}
	}
	oc.Annotations[oauthv1.AnnotationRotateSecret] = time.Now().Format(time.RFC3339Nano)
	if err := s.c.Patch(t.Context(), &oc, patch); err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	var newHash string
	testenv.Eventually(t, time.Minute, func() error {
		if h := secretHash(s.secret(t, ns, machineSecret)["client_secret"]); h != oldHash {
			newHash = h
			return nil
		}
		return errors.New("the Secret still has the old client secret")
	})
	t.Logf("the operator wrote a new secret %s into %s after %s", newHash, machineSecret, time.Since(rotated).Round(time.Millisecond))
	testenv.Eventually(t, 3*time.Minute, func() error {
		var err error
		if st, err = appStatsFrom(t.Context(), statsURL); err != nil {
			return err
		}
		if st.OKBySecret[newHash] < 3 {
			return fmt.Errorf("the app has %d good requests with the new secret (mounted: %s)", st.OKBySecret[newHash], st.Secret)
		}
		return nil
	})
	pickedUp := time.Since(rotated)
	if st.Failed > 0 {
		t.Fatalf("%d of the app's %d token requests failed across the rotation: %v", st.Failed, st.Requests, st.Errors)
	}
	t.Logf("the app picked up the new secret from its mounted Secret within %s (grace period default 24h); %d requests since the rotation, 0 failed",
		pickedUp.Round(time.Second), st.Requests-before)

	// Rotate the signing keys: the new key reaches the app's mounted JWKS
	// before the first token signed with it (prepublishPeriod 1m).
	var srv oauthv1.AuthorizationServer
	if err := s.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: serverName}, &srv); err != nil {
		t.Fatal(err)
	}
	oldKid := srv.Status.ActiveKeyID
	patch = client.MergeFrom(srv.DeepCopy())
	if srv.Annotations == nil {
		srv.Annotations = map[string]string{}
	}
	srv.Annotations[oauthv1.AnnotationRotateKeys] = time.Now().Format(time.RFC3339Nano)
	if err := s.c.Patch(t.Context(), &srv, patch); err != nil {
		t.Fatal(err)
	}
	id, secret := s.clientCreds(t, ns, machineSecret)
	var newKid string
	var firstSigned time.Time
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		tok, err := clientCredentials(t.Context(), s.issuer, id, secret)
		if err != nil {
			t.Fatal(err)
		}
		if kid := kidOf(t, tok); kid != oldKid {
			newKid, firstSigned = kid, time.Now()
			break
		}
		time.Sleep(time.Second)
	}
	if newKid == "" {
		t.Fatalf("no token signed with a new key within 4 minutes of the rotate-keys annotation (active %s)", oldKid)
	}
	if st, err := appStatsFrom(t.Context(), statsURL); err != nil {
		t.Fatal(err)
	} else if seen, ok := st.FirstSeen[newKid]; !ok {
		t.Fatalf("key %s signs, but the app's mounted JWKS has only %v", newKid, st.JWKSKids)
	} else if lead := firstSigned.Sub(time.UnixMilli(seen)); lead <= 0 {
		t.Fatalf("key %s reached the app's mounted JWKS %s after it first signed", newKid, -lead)
	} else {
		t.Logf("new key %s was in the app's mounted JWKS %s before it first signed", newKid, lead.Round(time.Second))
	}
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// ---------------------------------------------------------------- operator

func TestOperatorPodKill(t *testing.T) {
	s := get(t)
	keysBefore := s.secret(t, ns, keyset.SecretName(serverName))
	clientSecretsBefore := map[string]string{}
	for _, name := range []string{machineSecret, webSecret} {
		clientSecretsBefore[name] = string(s.secret(t, ns, name)["client_secret"])
	}
	var lease *coordinationv1.Lease
	var leader string
	testenv.Eventually(t, time.Minute, func() error {
		var err error
		if lease, leader, err = s.lease(t.Context()); err == nil && leader == "" {
			err = errors.New("nobody holds the operator's lease")
		}
		return err
	})
	leaderPod, _, _ := strings.Cut(leader, "_")
	t.Logf("lease %s held by %s", lease.Name, leader)

	var pods corev1.PodList
	if err := s.c.List(t.Context(), &pods, client.InNamespace(releaseNS), client.MatchingLabels{"app.kubernetes.io/name": "gatehouse"}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) < 2 {
		t.Fatalf("want 2 operator pods (operator.replicas=2), have %d", len(pods.Items))
	}
	killed := time.Now()
	s.kubectlT(t, "delete", "pod", "-n", releaseNS, leaderPod, "--wait=false")
	var newLeader string
	testenv.Eventually(t, 2*time.Minute, func() error {
		_, h, err := s.lease(t.Context())
		if err != nil {
			return err
		}
		if h != "" && h != leader && !strings.HasPrefix(h, leaderPod+"_") {
			newLeader = h
			return nil
		}
		return fmt.Errorf("lease held by %q", h)
	})
	t.Logf("leader %s deleted; %s took the lease after %s", leaderPod, newLeader, time.Since(killed).Round(100*time.Millisecond))
	s.kubectlT(t, "rollout", "status", "-n", releaseNS, "deployment", "--timeout=3m")

	// Compare once the new leader has reconciled every client: a reconcile
	// that regenerated a secret would do it before it records the client's
	// new generation.
	s.kubectlT(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=2m", "authorizationserver/"+serverName)
	s.kubectlT(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=2m", "oauthclient", "--all")
	s.reconcileClients(t, ns)
	keysAfter := s.secret(t, ns, keyset.SecretName(serverName))
	if !mapsEqual(keysBefore, keysAfter) {
		t.Errorf("the signing-keys Secret changed after the operator pod was killed (keys regenerated)")
	}
	for name, before := range clientSecretsBefore {
		if after := string(s.secret(t, ns, name)["client_secret"]); after != before {
			t.Errorf("client secret in %s was regenerated after the operator pod was killed", name)
		}
	}
	id, secret := s.clientCreds(t, ns, machineSecret)
	if _, err := clientCredentials(t.Context(), s.issuer, id, secret); err != nil {
		t.Errorf("token after the operator change-over: %v", err)
	}
	t.Log("no signing key and no client secret was regenerated")
}

// reconcileClients bumps the generation of every OAuthClient in namespace
// (a new display name) and waits until the operator has recorded each one
// as Ready at that generation: proof that the leading operator has
// reconciled it since the call.
func (s *suite) reconcileClients(t *testing.T, namespace string) {
	t.Helper()
	var list oauthv1.OAuthClientList
	if err := s.c.List(t.Context(), &list, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	const mark = " (reconciled)"
	for i := range list.Items {
		oc := &list.Items[i]
		patch := client.MergeFrom(oc.DeepCopy())
		if name, again := strings.CutSuffix(oc.Spec.DisplayName, mark); again {
			oc.Spec.DisplayName = name
		} else {
			oc.Spec.DisplayName += mark
		}
		if err := s.c.Patch(t.Context(), oc, patch); err != nil {
			t.Fatal(err)
		}
	}
	began, looks := time.Now(), 0
	testenv.Eventually(t, 2*time.Minute, func() error {
		looks++
		for _, want := range list.Items {
			var oc oauthv1.OAuthClient
			if err := s.c.Get(t.Context(), client.ObjectKeyFromObject(&want), &oc); err != nil {
				return err
			}
			ready := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionTrue || ready.ObservedGeneration < want.Generation {
				return fmt.Errorf("OAuthClient %s at generation %d: Ready is %+v", oc.Name, want.Generation, ready)
			}
		}
		return nil
	})
	gens := make([]string, 0, len(list.Items))
	for _, oc := range list.Items {
		gens = append(gens, fmt.Sprintf("%s %d", oc.Name, oc.Generation))
	}
	t.Logf("the operator recorded every OAuthClient Ready at its new generation (%s) %s after the patches, at look %d",
		strings.Join(gens, ", "), time.Since(began).Round(time.Millisecond), looks)
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- traffic

// traffic runs workers that call do in a loop until stop is closed (at
// most limit calls in all), and counts the outcomes.
type traffic struct {
	sent, answered, failed, refused atomic.Int64
	mu                              sync.Mutex
	errs                            []string
	wg                              sync.WaitGroup
	stop                            chan struct{}
}

func startTraffic(workers int, limit int64, do func(worker int) error) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for w := range workers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				if tr.sent.Add(1) > limit {
					tr.sent.Add(-1)
					return
				}
				err := do(w)
				if err == nil {
					tr.answered.Add(1)
				} else {
					tr.failed.Add(1)
					if errors.Is(err, syscall.ECONNREFUSED) {
						tr.refused.Add(1)
					}
					tr.mu.Lock()
					if len(tr.errs) < 20 {
						tr.errs = append(tr.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
					}
					tr.mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return tr
}

func (tr *traffic) finish() { close(tr.stop); tr.wg.Wait() }

// warmUp waits until n requests have been answered: the traffic reaches
// the servers before the test disturbs them.
func (tr *traffic) warmUp(t *testing.T, n int64) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func() error {
		if got := tr.answered.Load(); got < n {
			return fmt.Errorf("%d of %d warm-up requests answered (sent %d, failed %d: %v)", got, n, tr.sent.Load(), tr.failed.Load(), tr.errs)
		}
		return nil
	})
}

// servedOnlyBy waits until the EndpointSlices of namespace's token-server
// NodePort Service list exactly pods, and then until kube-proxy has
// synced its rules once more: from then on no request can reach a pod
// that is gone.
func (s *suite) servedOnlyBy(t *testing.T, namespace string, pods []corev1.Pod) {
	t.Helper()
	want := make([]string, 0, len(pods))
	for _, p := range pods {
		want = append(want, p.Name)
	}
	slices.Sort(want)
	testenv.Eventually(t, 3*time.Minute, func() error {
		var list discoveryv1.EndpointSliceList
		if err := s.c.List(t.Context(), &list, client.InNamespace(namespace),
			client.MatchingLabels{discoveryv1.LabelServiceName: serverName + "-nodeport"}); err != nil {
			return err
		}
		var got []string
		for _, slice := range list.Items {
			for _, ep := range slice.Endpoints {
				if ep.TargetRef != nil {
					got = append(got, ep.TargetRef.Name)
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("the EndpointSlices of %s/%s-nodeport list pods %v, want %v", namespace, serverName, got, want)
		}
		return nil
	})
	sliced := time.Now()
	testenv.Eventually(t, time.Minute, func() error {
		synced, err := kubeProxySynced(t.Context())
		if err == nil && !synced.After(sliced) {
			err = fmt.Errorf("kube-proxy last synced its rules at %s, before the EndpointSlices changed at %s", synced.Format(time.StampMilli), sliced.Format(time.StampMilli))
		}
		return err
	})
}

// kubeProxySynced returns when kube-proxy last synced its rules, from its
// health endpoint (hack/cluster binds it to 127.0.0.1:10256).
func kubeProxySynced(ctx context.Context) (time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:10256/healthz", nil)
	if err != nil {
		return time.Time{}, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	var health struct {
		LastUpdated time.Time `json:"lastUpdated"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
		return time.Time{}, fmt.Errorf("kube-proxy's /healthz: %w", err)
	}
	return health.LastUpdated, nil
}

func TestRollingRestartUnderTraffic(t *testing.T) {
	s := get(t)
	id, secret := s.clientCreds(t, ns, machineSecret)
	tr := startTraffic(4, 100000, func(int) error {
		_, err := clientCredentials(context.Background(), s.issuer, id, secret)
		return err
	})
	tr.warmUp(t, 20)
	began := time.Now()
	s.kubectlT(t, "rollout", "restart", "-n", ns, "deployment/"+serverName+"-server")
	s.kubectlT(t, "rollout", "status", "-n", ns, "deployment/"+serverName+"-server", "--timeout=5m")
	// Traffic goes on until the old pods have left kube-proxy's rules.
	s.servedOnlyBy(t, ns, s.readyServerPods(t, ns, int(*s.deployment(t, serverName+"-server").Spec.Replicas)))
	tr.finish()
	t.Logf("rollout restart took %s; requests sent %d, failed %d (connection refused %d)",
		time.Since(began).Round(time.Second), tr.sent.Load(), tr.failed.Load(), tr.refused.Load())
	if tr.failed.Load() > 0 {
		t.Errorf("%d of %d token requests failed during the rolling restart: %v", tr.failed.Load(), tr.sent.Load(), tr.errs)
	}
}

// ---------------------------------------------------------------- PostgreSQL

const (
	haNS       = "shop-ha"
	haNodePort = 30090
)

// postgresServer makes sure namespace haNS runs the samples with two
// token-server replicas on PostgreSQL (a pod from an image built from
// Debian's postgresql files), and returns the server's issuer. Applying
// again changes nothing, so every test that needs it may call it.
func (s *suite) postgresServer(t *testing.T) string {
	t.Helper()
	pgBin, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(pgBin) != 1 {
		testenv.MissingDependency(t, errors.New("no PostgreSQL server files in /usr/lib/postgresql/*/bin (apt-get install postgresql)"))
	}
	pgDir := filepath.Dir(filepath.Dir(pgBin[0]))
	share := strings.Replace(pgDir, "/usr/lib/", "/usr/share/", 1)
	// initdb runs postgres through popen(3), so the image needs /bin/sh.
	args := []string{"-user", "65532:65532", "-exe", "/bin/sh:/bin/sh"}
	for _, exe := range []string{"postgres", "initdb"} {
		args = append(args, "-exe", filepath.Join(pgDir, "bin", exe)+":"+filepath.Join(pgDir, "bin", exe))
	}
	args = append(args, "-tree", filepath.Join(pgDir, "lib")+":"+filepath.Join(pgDir, "lib"), "-tree", share+":"+share)
	s.buildImage(t, "localhost/gatehouse-postgres:1", "./test/cluster/cmd/pgstart", args...)

	if err := s.ensureNamespace(haNS); err != nil {
		t.Fatal(err)
	}
	// A database from an earlier run keeps its password.
	var password string
	var existing corev1.Secret
	if err := s.c.Get(t.Context(), client.ObjectKey{Namespace: haNS, Name: "postgres"}, &existing); err == nil {
		password = string(existing.Data["password"])
	} else {
		pw := make([]byte, 16)
		_, _ = rand.Read(pw)
		password = hex.EncodeToString(pw)
	}
	s.applyT(t, haNS, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: postgres}
stringData:
  password: %[1]q
  url: "postgres://postgres:%[1]s@postgres.%[2]s.svc.cluster.local:5432/postgres?sslmode=disable"
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: postgres}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532}
      containers:
      - name: postgres
        image: localhost/gatehouse-postgres:1
        imagePullPolicy: Never
        env:
        - {name: POSTGRES_PASSWORD, valueFrom: {secretKeyRef: {name: postgres, key: password}}}
        - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
        ports: [{name: pg, containerPort: 5432}]
        readinessProbe: {tcpSocket: {port: pg}, periodSeconds: 2}
        volumeMounts:
        - {name: data, mountPath: /var/lib/postgresql/data}
        - {name: tmp, mountPath: /tmp}
      volumes:
      - {name: data, emptyDir: {}}
      - {name: tmp, emptyDir: {}}
---
apiVersion: v1
kind: Service
metadata: {name: postgres}
spec:
  selector: {app: postgres}
  ports: [{name: pg, port: 5432, targetPort: pg}]
`, password, haNS))
	s.kubectlT(t, "rollout", "status", "-n", haNS, "deployment/postgres", "--timeout=3m")
	t.Log("PostgreSQL runs in the cluster (image from Debian's postgresql files)")

	issuer := fmt.Sprintf("http://127.0.0.1:%d", haNodePort)
	if err := s.applySamples(haNS, issuer, haNodePort, `- target: {kind: AuthorizationServer, name: gatehouse}
  patch: |
    - {op: replace, path: /spec/storage, value: {type: Postgres, postgres: {urlSecretRef: {name: postgres, key: url}}}}
    - {op: add, path: /spec/replicas, value: 2}
`); err != nil {
		t.Fatal(err)
	}
	s.kubectlT(t, "wait", "-n", haNS, "--for=condition=Ready", "--timeout=5m", "authorizationserver/"+serverName)
	s.kubectlT(t, "wait", "-n", haNS, "--for=condition=Ready", "--timeout=2m", "oauthclient", "--all")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := waitHTTP(ctx, issuer+"/.well-known/oauth-authorization-server"); err != nil {
		t.Fatal(err)
	}
	s.readyServerPods(t, haNS, 2)
	return issuer
}

// readyServerPods waits until namespace has exactly n token-server pods,
// all Ready and none terminating, and returns them.
func (s *suite) readyServerPods(t *testing.T, namespace string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	testenv.Eventually(t, 3*time.Minute, func() error {
		pods = s.serverPods(t, namespace)
		ready := 0
		for i := range pods {
			if podReady(&pods[i]) && pods[i].DeletionTimestamp == nil {
				ready++
			}
		}
		if ready != n || len(pods) != n {
			return fmt.Errorf("%d token-server pods, %d of them Ready, want %d", len(pods), ready, n)
		}
		return nil
	})
	return pods
}

func TestReplicaKillWithPostgres(t *testing.T) {
	s := get(t)
	issuer := s.postgresServer(t)

	webID, webSecretValue := s.clientCreds(t, haNS, webSecret)
	machineID, machineSecretValue := s.clientCreds(t, haNS, machineSecret)
	// First a replica is deleted as Kubernetes does it (SIGTERM after the
	// preStop sleep): nothing may fail. Then one is killed outright
	// (--grace-period=0 --force, SIGKILL): requests in flight on it, and
	// new connections sent to its address before kube-proxy drops it, fail;
	// they are counted, and every refresh token not caught in one of them
	// must stay usable.
	for _, phase := range []struct {
		name   string
		args   []string
		strict bool
	}{
		{"deleted", nil, true},
		{"killed (SIGKILL)", []string{"--grace-period=0", "--force"}, false},
	} {
		s.replicaKillPhase(t, issuer, webID, webSecretValue, machineID, machineSecretValue, phase.name, phase.args, phase.strict)
	}
}

func (s *suite) replicaKillPhase(t *testing.T, issuer, webID, webSecret, machineID, machineSecret, name string, deleteArgs []string, strict bool) {
	// Refresh-token chains: one login each, then refreshed in a loop.
	const chains = 6
	current := make([]string, chains)
	for i := range current {
		rt, err := login(t.Context(), issuer, webID, webSecret, username, s.password, "orders:read")
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		current[i] = rt
	}
	var mu sync.Mutex
	issued := 0
	lostChains := map[int]bool{}
	tr := startTraffic(chains+3, 100000, func(w int) error {
		if w >= chains {
			_, err := clientCredentials(context.Background(), issuer, machineID, machineSecret)
			return err
		}
		mu.Lock()
		rt, lost := current[w], lostChains[w]
		mu.Unlock()
		if lost {
			time.Sleep(100 * time.Millisecond)
			return nil
		}
		next, err := refresh(context.Background(), issuer, webID, webSecret, rt)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			// A refresh that failed in flight may have rotated the token on
			// the server; then the token held here is spent. Stop this chain
			// and check it at the end.
			lostChains[w] = true
			return err
		}
		current[w] = next
		issued++
		return nil
	})
	tr.warmUp(t, 40)
	victim := s.serverPods(t, haNS)[0].Name
	killed := time.Now()
	s.kubectlT(t, append([]string{"delete", "pod", "-n", haNS, victim, "--wait=false"}, deleteArgs...)...)
	// The victim is terminating or gone before the rollout status and the
	// wait for two Ready pods below look, so neither passes on the pods as
	// they were before the deletion.
	testenv.Eventually(t, time.Minute, func() error {
		var pod corev1.Pod
		err := s.c.Get(t.Context(), client.ObjectKey{Namespace: haNS, Name: victim}, &pod)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case pod.DeletionTimestamp == nil:
			return fmt.Errorf("pod %s is not terminating yet", victim)
		}
		return nil
	})
	s.kubectlT(t, "rollout", "status", "-n", haNS, "deployment/"+serverName+"-server", "--timeout=5m")
	// Traffic goes on until the victim has left kube-proxy's rules.
	s.servedOnlyBy(t, haNS, s.readyServerPods(t, haNS, 2))
	tr.finish()
	t.Logf("replica %s %s; replacement Ready after %s", victim, name, time.Since(killed).Round(time.Second))
	t.Logf("%s: requests sent %d, failed %d (connection refused %d), refresh tokens issued %d; errors: %v",
		name, tr.sent.Load(), tr.failed.Load(), tr.refused.Load(), issued, tr.errs)

	// Every refresh token still held is usable.
	usable, survived := 0, 0
	for i, rt := range current {
		_, err := refresh(t.Context(), issuer, webID, webSecret, rt)
		switch {
		case lostChains[i] && err == nil:
			survived++ // the failed request never reached the server
		case lostChains[i]:
		case err != nil:
			t.Errorf("chain %d: the last refresh token issued is not usable: %v", i, err)
		default:
			usable++
		}
	}
	t.Logf("%s: refresh tokens checked afterwards: %d of %d chains usable, %d chains hit by a failed request (%d of them still usable)",
		name, usable+survived, chains, len(lostChains), survived)
	if strict && tr.failed.Load() > 0 {
		t.Errorf("%d requests failed while a replica was %s: %v", tr.failed.Load(), name, tr.errs)
	}
}

// ---------------------------------------------------------------- Helm

func TestHelmLifecycle(t *testing.T) {
	if os.Getenv(lifecycleEnv) != "1" {
		t.Skipf("%s is not 1: make test-cluster runs this last, since it uninstalls the chart", lifecycleEnv)
	}
	s := get(t)
	countUsers := func() int {
		var as oauthv1.AuthorizationServerList
		var oc oauthv1.OAuthClientList
		var sc oauthv1.ScopeList
		for _, l := range []client.ObjectList{&as, &oc, &sc} {
			if err := s.c.List(t.Context(), l); err != nil {
				t.Fatal(err)
			}
		}
		return len(as.Items) + len(oc.Items) + len(sc.Items)
	}
	objects := countUsers()
	repo, tag, _ := strings.Cut(s.image, ":")
	began := time.Now()
	out, err := s.helmRun("upgrade", release, filepath.Join(s.root, "charts", "gatehouse"), "-n", releaseNS, "--reuse-values",
		"--set", "image.repository="+repo, "--set", "image.tag="+tag,
		"--set", "operator.logLevel=debug", "--set", "operator.maxConcurrentReconciles=2", "--wait", "--timeout", "5m")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	dep := s.kubectlT(t, "get", "deployment", "-n", releaseNS, "-o", "jsonpath={.items[0].spec.template.spec.containers[0].args}")
	if !strings.Contains(dep, "--zap-log-level=debug") || !strings.Contains(dep, "--concurrency=2") {
		t.Fatalf("after helm upgrade the operator's args are %s", dep)
	}
	t.Logf("helm upgrade (logLevel=debug, maxConcurrentReconciles=2) rolled the operator in %s", time.Since(began).Round(time.Second))
	s.kubectlT(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=2m", "authorizationserver/"+serverName)

	if out, err := s.helmRun("uninstall", release, "-n", releaseNS, "--wait", "--timeout", "3m"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	crds := s.kubectlT(t, "get", "crd", "-o", "name")
	for _, crd := range []string{"authorizationservers", "oauthclients", "scopes"} {
		if !strings.Contains(crds, crd+".oauth.gatehouse.dev") {
			t.Errorf("CRD %s was removed by helm uninstall", crd)
		}
	}
	if n := countUsers(); n != objects {
		t.Errorf("helm uninstall changed the users' objects: %d before, %d after", objects, n)
	}
	// Pods carry the release's labels too; they go once they have stopped.
	testenv.Eventually(t, 2*time.Minute, func() error {
		left, err := s.run("get", "all,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,configmaps,secrets,leases",
			"-A", "-l", "app.kubernetes.io/managed-by=Helm", "-o", "name")
		if err != nil {
			return err
		}
		if strings.TrimSpace(left) != "" {
			return fmt.Errorf("helm uninstall left these behind:\n%s", left)
		}
		return nil
	})
	// The token servers keep running without the operator.
	id, secret := s.clientCreds(t, ns, machineSecret)
	if _, err := clientCredentials(t.Context(), s.issuer, id, secret); err != nil {
		t.Errorf("token after helm uninstall: %v", err)
	}
	t.Log("helm uninstall kept the CRDs and the users' objects, and left nothing of the release behind")
}
