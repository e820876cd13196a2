package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/kubescheme"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Environment of make test-cluster (see the package doc).
const (
	kubeconfigEnv = "GATEHOUSE_CLUSTER_KUBECONFIG"
	imageEnv      = "GATEHOUSE_CLUSTER_IMAGE"
	lifecycleEnv  = "GATEHOUSE_CLUSTER_LIFECYCLE"
)

// What the tests install.
const (
	release     = "gatehouse"
	releaseNS   = "gatehouse-system"
	ns          = "shop" // config/samples, Memory storage
	nodePort    = 30080  // the token server of ns, on 127.0.0.1
	serverName  = "gatehouse"
	usersSecret = "cluster-users"
	username    = "alice"
	callbackURL = "http://127.0.0.1:5555/callback"
	// E2ENodePort is where the e2e suite's token server (namespace
	// gatehouse-e2e) is reached; make test-cluster passes
	// http://127.0.0.1:30081 as GATEHOUSE_E2E_ISSUER.
	e2eNS       = "gatehouse-e2e"
	e2eNodePort = 30081
)

type suite struct {
	root       string
	kubeconfig string
	kubectl    string
	helm       string
	image      string
	imageID    string
	c          client.Client
	password   string
	issuer     string
	tmp        string
}

var (
	shared   *suite
	setupErr error
	missing  bool
)

func TestMain(m *testing.M) {
	if os.Getenv(kubeconfigEnv) == "" {
		// Not asked for: go test ./... runs no cluster test.
		os.Exit(m.Run())
	}
	began := time.Now()
	shared, setupErr = setup()
	var md missingDependency
	missing = errors.As(setupErr, &md)
	if setupErr != nil {
		progress("setup failed: %v", setupErr)
	} else {
		progress("Gatehouse installed and the samples Ready in %s", time.Since(began).Round(100*time.Millisecond))
	}
	code := m.Run()
	if shared != nil {
		if code != 0 {
			shared.dump()
		}
		_ = os.RemoveAll(shared.tmp)
	}
	os.Exit(code)
}

func get(t *testing.T) *suite {
	t.Helper()
	switch {
	case os.Getenv(kubeconfigEnv) == "":
		t.Skipf("no cluster: %s is unset (make cluster, then make test-cluster)", kubeconfigEnv)
	case shared != nil:
		return shared
	case missing:
		testenv.MissingDependency(t, setupErr)
	default:
		t.Fatalf("cluster setup failed: %v", setupErr)
	}
	return nil
}

type missingDependency struct{ error }

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cluster %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func setup() (*suite, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	s := &suite{root: root, kubeconfig: os.Getenv(kubeconfigEnv), image: os.Getenv(imageEnv)}
	if s.image == "" {
		s.image = "localhost/gatehouse:dev"
	}
	if _, err := os.Stat(s.kubeconfig); err != nil {
		return nil, missingDependency{fmt.Errorf("no cluster: %v (run make cluster)", err)}
	}
	if s.kubectl, err = findTool("kubectl", filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")); err != nil {
		return nil, missingDependency{err}
	}
	if s.helm, err = findTool("helm", os.Getenv("HELM")); err != nil {
		return nil, missingDependency{err}
	}
	if s.tmp, err = os.MkdirTemp("", "gatehouse-cluster-test-"); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		return nil, err
	}
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}
	if s.c, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	if out, err := s.run("get", "nodes", "--no-headers"); err != nil || !strings.Contains(out, " Ready ") {
		return nil, missingDependency{fmt.Errorf("the cluster is not running or its node is not Ready (make cluster): %v %s", err, out)}
	}
	// The image's digest, as a pod annotation: a rebuilt image under the
	// same tag rolls the operator.
	if b, err := os.ReadFile(filepath.Join(root, "bin", "cluster", "images", "gatehouse.digest")); err == nil {
		s.imageID = strings.TrimSpace(string(b))
	}

	repo, tag, _ := strings.Cut(s.image, ":")
	progress("helm upgrade --install %s charts/gatehouse -n %s (image %s)", release, releaseNS, s.image)
	began := time.Now()
	args := []string{"upgrade", "--install", release, filepath.Join(root, "charts", "gatehouse"),
		"-n", releaseNS, "--create-namespace", "--wait", "--timeout", "5m",
		"--set", "image.repository=" + repo, "--set", "image.tag=" + tag, "--set", "image.pullPolicy=IfNotPresent",
		// Two operators: the leader and a standby that takes over.
		"--set", "operator.replicas=2"}
	if s.imageID != "" {
		args = append(args, "--set-string", `operator.podAnnotations.gatehouse\.dev/image-digest=`+s.imageID)
	}
	if out, err := s.helmRun(args...); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	progress("helm install done in %s", time.Since(began).Round(100*time.Millisecond))

	s.issuer = fmt.Sprintf("http://127.0.0.1:%d", nodePort)
	if err := s.applySamples(ns, s.issuer, nodePort); err != nil {
		return nil, err
	}
	// The e2e suite's namespace gets its NodePort now; the suite applies
	// the samples there itself.
	if err := s.ensureNamespace(e2eNS); err != nil {
		return nil, err
	}
	if err := s.apply(e2eNS, nodePortService(serverName, e2eNodePort)); err != nil {
		return nil, err
	}
	progress("kubectl wait --for=condition=Ready -n %s authorizationserver/%s oauthclient --all", ns, serverName)
	began = time.Now()
	if out, err := s.run("wait", "-n", ns, "--for=condition=Ready", "--timeout=5m", "authorizationserver/"+serverName); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	if out, err := s.run("wait", "-n", ns, "--for=condition=Ready", "--timeout=2m", "oauthclient", "--all"); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	progress("samples Ready in %s", time.Since(began).Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := waitHTTP(ctx, s.issuer+"/.well-known/oauth-authorization-server"); err != nil {
		return nil, fmt.Errorf("the token server through NodePort %d: %w", nodePort, err)
	}
	return s, nil
}

func findTool(name, preferred string) (string, error) {
	if preferred != "" {
		if fi, err := os.Stat(preferred); err == nil && !fi.IsDir() {
			return preferred, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no %s (make test-cluster builds it into bin/)", name)
}

// applySamples applies config/samples into namespace, through an overlay:
// an http issuer on a 127.0.0.1 NodePort, a users Secret, the web app's
// redirect URI on loopback, and a NodePort Service for the token server.
func (s *suite) applySamples(namespace, issuer string, port int, extraPatches ...string) error {
	dir, err := os.MkdirTemp(s.tmp, "overlay-")
	if err != nil {
		return err
	}
	if err := os.CopyFS(filepath.Join(dir, "samples"), os.DirFS(filepath.Join(s.root, "config", "samples"))); err != nil {
		return err
	}
	if s.password == "" {
		pw := make([]byte, 12)
		_, _ = rand.Read(pw)
		s.password = fmt.Sprintf("pw-%x", pw)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(s.password), 10)
	if err != nil {
		return err
	}
	files := map[string]string{
		"users.yaml": fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %s
stringData:
  users.yaml: |
    users:
    - username: %s
      passwordHash: %q
`, usersSecret, username, hash),
		"nodeport.yaml": nodePortService(serverName, port),
		"kustomization.yaml": fmt.Sprintf(`resources:
- samples
- users.yaml
- nodeport.yaml
patches:
- target: {kind: AuthorizationServer, name: %[1]s}
  patch: |
    - {op: replace, path: /spec/issuer, value: %[2]q}
    - {op: replace, path: /spec/signing/prepublishPeriod, value: 1m}
    - {op: add, path: /spec/users, value: {secretRef: {name: %[3]s}}}
- target: {kind: OAuthClient, name: storefront}
  patch: |
    - {op: replace, path: /spec/redirectURIs, value: [%[4]q]}
    - {op: replace, path: /spec/secretRotation/gracePeriod, value: 10m}
%[5]s`, serverName, issuer, usersSecret, callbackURL, strings.Join(extraPatches, "")),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	if err := s.ensureNamespace(namespace); err != nil {
		return err
	}
	progress("kubectl apply -n %s -k config/samples (overlay: issuer %s)", namespace, issuer)
	out, err := s.run("apply", "-n", namespace, "-k", dir)
	if err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}

// nodePortService selects the pods of the operator's <server>-server
// Deployment, as its own Service does, on a fixed NodePort.
func nodePortService(server string, port int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %[1]s-nodeport
spec:
  type: NodePort
  selector:
    app.kubernetes.io/name: gatehouse-server
    app.kubernetes.io/instance: %[1]s
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: %[2]d}
`, server, port)
}

func (s *suite) ensureNamespace(name string) error {
	if _, err := s.run("create", "namespace", name); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		return err
	}
	return nil
}

func (s *suite) apply(namespace, manifest string) error {
	cmd := exec.Command(s.kubectl, "--kubeconfig", s.kubeconfig, "apply", "-n", namespace, "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %v\n%s", err, out)
	}
	return nil
}

func (s *suite) applyT(t *testing.T, namespace, manifest string) {
	t.Helper()
	if err := s.apply(namespace, manifest); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) run(args ...string) (string, error) {
	return testenv.Kubectl(s.kubectl, s.kubeconfig, args...)
}

func (s *suite) kubectlT(t *testing.T, args ...string) string {
	t.Helper()
	return testenv.KubectlT(t, s.kubectl, s.kubeconfig, args...)
}

func (s *suite) helmRun(args ...string) (string, error) {
	cmd := exec.Command(s.helm, append([]string{"--kubeconfig", s.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %v", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// dump prints what helps to understand a failure: pods, events, and the
// logs of the operator and the token servers.
func (s *suite) dump() {
	for _, args := range [][]string{
		{"get", "pods", "-A", "-o", "wide"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
		{"logs", "-n", releaseNS, "-l", "app.kubernetes.io/name=gatehouse", "--tail=60", "--prefix"},
		{"logs", "-n", ns, "-l", "app.kubernetes.io/name=gatehouse-server", "--tail=40", "--prefix"},
	} {
		out, err := s.run(args...)
		fmt.Fprintf(os.Stderr, "--- kubectl %s\n%s%v\n", strings.Join(args, " "), tailLines(out, 80), errOrEmpty(err))
	}
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error() + "\n"
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func waitHTTP(ctx context.Context, u string) error {
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %v", u, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ---------------------------------------------------------------- objects

func (s *suite) secret(t *testing.T, namespace, name string) map[string][]byte {
	t.Helper()
	var sec corev1.Secret
	if err := s.c.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, &sec); err != nil {
		t.Fatal(err)
	}
	return sec.Data
}

func (s *suite) clientCreds(t *testing.T, namespace, secretName string) (id, secret string) {
	d := s.secret(t, namespace, secretName)
	return string(d["client_id"]), string(d["client_secret"])
}

// serverPods lists the token server pods of the AuthorizationServer named
// serverName in namespace.
func (s *suite) serverPods(t *testing.T, namespace string) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := s.c.List(t.Context(), &pods, client.InNamespace(namespace), client.MatchingLabels{
		"app.kubernetes.io/name": "gatehouse-server", "app.kubernetes.io/instance": serverName,
	}); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// deployment is the Deployment name in the test namespace.
func (s *suite) deployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	if err := s.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// lease returns the operator's leader-election Lease and its holder ("" while
// nobody holds it).
func (s *suite) lease(ctx context.Context) (*coordinationv1.Lease, string, error) {
	var leases coordinationv1.LeaseList
	if err := s.c.List(ctx, &leases, client.InNamespace(releaseNS)); err != nil {
		return nil, "", err
	}
	for i := range leases.Items {
		if l := &leases.Items[i]; strings.Contains(l.Name, "gatehouse") {
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			return l, holder, nil
		}
	}
	return nil, "", fmt.Errorf("no leader-election Lease in %s (%d leases)", releaseNS, len(leases.Items))
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ---------------------------------------------------------------- OAuth

var httpClient = &http.Client{Timeout: 10 * time.Second}

// postToken posts a form to the token endpoint with HTTP Basic client
// authentication and returns the status and the decoded JSON.
func postToken(ctx context.Context, issuer, id, secret string, form url.Values) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+endpoints.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("status %d, body: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body, nil
}

// clientCredentials gets a token for machineScope, the scope the machine
// clients of every scenario ask for.
func clientCredentials(ctx context.Context, issuer, id, secret string) (string, error) {
	status, body, err := postToken(ctx, issuer, id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {machineScope}})
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("token endpoint: %d %v", status, body)
	}
	tok, _ := body["access_token"].(string)
	if tok == "" {
		return "", fmt.Errorf("no access_token in %v", body)
	}
	return tok, nil
}

// refresh redeems a refresh token and returns the rotated one.
func refresh(ctx context.Context, issuer, id, secret, rt string) (string, error) {
	status, body, err := postToken(ctx, issuer, id, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("refresh: %d %v", status, body)
	}
	next, _ := body["refresh_token"].(string)
	if next == "" {
		return "", fmt.Errorf("no refresh_token in %v", body)
	}
	return next, nil
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// login runs the authorization code flow as a browser would, with plain
// HTTP: /authorize, the login form, the consent form, then the code
// exchange with PKCE. It returns the refresh token.
func login(ctx context.Context, issuer, id, secret, user, password, scope string) (string, error) {
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	verifier := oauth2.GenerateVerifier()
	cfg := oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: callbackURL, Scopes: []string{scope},
		Endpoint: oauth2.Endpoint{AuthURL: issuer + endpoints.AuthorizePath, TokenURL: issuer + endpoints.TokenPath, AuthStyle: oauth2.AuthStyleInHeader}}
	next := cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))
	var form url.Values
	for range 6 {
		var resp *http.Response
		var err error
		if form == nil {
			resp, err = b.Get(next)
		} else {
			resp, err = b.PostForm(next, form)
		}
		if err != nil {
			return "", err
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(loc.String(), callbackURL) {
				code := loc.Query().Get("code")
				if code == "" {
					return "", fmt.Errorf("callback without code: %s", loc)
				}
				tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
				if err != nil {
					return "", err
				}
				if tok.RefreshToken == "" {
					return "", errors.New("no refresh token")
				}
				return tok.RefreshToken, nil
			}
			next, form = loc.String(), nil
		case resp.StatusCode == http.StatusOK:
			f := url.Values{}
			for _, m := range hiddenRE.FindAllStringSubmatch(string(page), -1) {
				f.Set(m[1], m[2])
			}
			switch resp.Request.URL.Path {
			case endpoints.LoginPath:
				f.Set("username", user)
				f.Set("password", password)
			case endpoints.ConsentPath:
				f.Set("decision", "approve")
			default:
				return "", fmt.Errorf("unexpected page %s", resp.Request.URL)
			}
			next, form = issuer+resp.Request.URL.Path, f
		default:
			return "", fmt.Errorf("%s: status %d: %.300s", resp.Request.URL, resp.StatusCode, page)
		}
	}
	return "", errors.New("too many steps in the login flow")
}
