package monitoring_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/servingcert"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

// The dashboard's variables and Grafana's built-in interval variables, as
// the test fills them in: every value a variable's query finds (Grafana's
// "All"), and windows that cover the load.
const (
	rateInterval = "1m"
	dashRange    = "5m"
)

// dashboard is the part of the dashboard JSON the test reads.
type dashboard struct {
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "charts", "gatehouse", "files", "dashboards", "gatehouse.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	return d
}

// TestDashboardQueriesReturnData runs a real Prometheus against a running
// operator and token server (TLS, PostgreSQL, a users Secret) during a
// short load with every kind of traffic the panels show, including a
// database outage, then evaluates every panel's query: each must return
// data, so no metric or label on the dashboard is misspelled or missing.
// It logs each query with the values it returned.
func TestDashboardQueriesReturnData(t *testing.T) {
	d := readDashboard(t)
	prometheus := tool(t, "PROMETHEUS", "prometheus-v*", "hack/prometheus.sh prometheus")
	e, promURL := startSystem(t, prometheus)

	began := time.Now()
	stats := e.load(t)
	loaded := time.Now()
	t.Logf("load: %s in %s", stats, loaded.Sub(began).Round(100*time.Millisecond))
	// Two more scrapes of each target after the load: its last one a
	// scrape interval (1 s) or more after the load ended.
	waitFor(t, 30*time.Second, "two scrapes after the load", func() error { return scrapedSince(promURL, loaded.Add(time.Second), 2) })

	vars := map[string]string{"$__rate_interval": rateInterval, "$__range": dashRange}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)["query"].(string)
		values := labelValues(t, promURL, substitute(q, vars))
		if len(values) == 0 {
			t.Errorf("variable $%s: %s finds no values", v.Name, q)
			continue
		}
		for i, s := range values {
			values[i] = regexp.QuoteMeta(s)
		}
		vars["$"+v.Name] = "(" + strings.Join(values, "|") + ")"
		t.Logf("variable $%s = %s", v.Name, vars["$"+v.Name])
	}

	queries := 0
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			queries++
			expr := substitute(target.Expr, vars)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q %s: unknown variable in %s", p.Title, target.RefID, expr)
				continue
			}
			res, err := instantQuery(promURL, expr)
			switch {
			case err != nil:
				t.Errorf("panel %q %s: %v", p.Title, target.RefID, err)
			case len(res) == 0:
				t.Errorf("panel %q %s returned no data: %s", p.Title, target.RefID, target.Expr)
			default:
				t.Logf("panel %q %s: %s\n    = %s", p.Title, target.RefID, target.Expr, res)
			}
		}
	}
	if queries < 20 {
		t.Errorf("the dashboard has %d queries; expected the full dashboard", queries)
	}
}

// TestDashboardConfigMap: the chart ships the dashboard file in a
// ConfigMap for Grafana's sidecar, opt-in.
func TestDashboardConfigMap(t *testing.T) {
	out := run(t, helm(t), "template", "gatehouse", "charts/gatehouse", "--set", "dashboards.enabled=true",
		"--show-only", "templates/dashboard.yaml")
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal([]byte(out), &cm); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(repoRoot(t), "charts", "gatehouse", "files", "dashboards", "gatehouse.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(cm.Data["gatehouse.json"]) != strings.TrimSpace(string(want)) {
		t.Error("the ConfigMap's gatehouse.json differs from files/dashboards/gatehouse.json")
	}
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v lack the Grafana sidecar's grafana_dashboard=1", cm.Labels)
	}
}

func substitute(expr string, vars map[string]string) string {
	// Longest names first: $job must not eat the start of $job_x.
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	for _, n := range names {
		expr = strings.ReplaceAll(expr, n, vars[n])
	}
	return expr
}

var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// labelValues answers a Grafana label_values(selector, label) query.
func labelValues(t *testing.T, promURL, q string) []string {
	t.Helper()
	m := labelValuesQuery.FindStringSubmatch(q)
	if m == nil {
		t.Fatalf("variable query %q is not label_values(selector, label)", q)
	}
	var out struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	if err := getJSON(promURL+"/api/v1/label/"+m[2]+"/values?"+url.Values{"match[]": {m[1]}}.Encode(), &out); err != nil {
		t.Fatal(err)
	}
	return out.Data
}

// instantQuery evaluates expr now and describes the result: each series'
// labels and value.
func instantQuery(promURL, expr string) ([]string, error) {
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(promURL+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &out); err != nil {
		return nil, err
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query failed: %s", out.Error)
	}
	var res []string
	for _, r := range out.Data.Result {
		labels := make([]string, 0, len(r.Metric))
		for k, v := range r.Metric {
			labels = append(labels, k+"="+v)
		}
		slices.Sort(labels)
		v := ""
		if len(r.Value) == 2 {
			v, _ = r.Value[1].(string)
		}
		res = append(res, fmt.Sprintf("{%s} %s", strings.Join(labels, ","), v))
	}
	slices.Sort(res)
	return res, nil
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %s: %w", u, resp.Status, err)
	}
	return nil
}

// system is the running operator and token server.
type system struct {
	cp      *testenv.ControlPlane
	db      string // the database's name
	pgAdmin string // a URL of the server's maintenance database
	dir     string
	issuer  string
	https   *http.Client

	operatorMetrics, serverMetrics string

	machine, web clientCreds
	password     string
}

type clientCreds struct{ id, secret string }

const (
	ns           = "auth"
	serverName   = "gatehouse"
	webRedirect  = "http://127.0.0.1:1/callback"
	testUsername = "alice"
)

// startSystem starts the control plane, PostgreSQL, the operator, then
// Prometheus (so that it sees the operator's counters grow as the objects
// are created), then the token server.
func startSystem(t *testing.T, prometheus string) (*system, string) {
	t.Helper()
	s := &system{dir: t.TempDir()}
	cp, err := testenv.Start()
	var missingAssets *testenv.MissingAssetsError
	if errors.As(err, &missingAssets) {
		testenv.MissingDependency(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	s.cp = cp
	pg, err := testpg.Start()
	var missingPG *testpg.MissingBinariesError
	if errors.As(err, &missingPG) {
		testenv.MissingDependency(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	dbURL := pg.NewDatabase(t)
	s.db = strings.TrimPrefix(mustParse(t, dbURL).Path, "/")
	s.pgAdmin = pg.URL("postgres")

	progress(t, "building gatehouse")
	gatehouse := filepath.Join(s.dir, "gatehouse")
	build := exec.Command("go", "build", "-o", gatehouse, "./cmd/gatehouse")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ports, err := devenv.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	s.issuer = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	s.operatorMetrics = fmt.Sprintf("127.0.0.1:%d", ports[1])
	s.serverMetrics = fmt.Sprintf("127.0.0.1:%d", ports[2])

	s.startProcess(t, "operator", gatehouse, "operator", "--kubeconfig", cp.Kubeconfig, "--server-image", "gatehouse:test",
		"--leader-elect=false", "--metrics-listen", s.operatorMetrics, "--health-listen", "0")
	promURL := s.startPrometheus(t, prometheus)
	waitFor(t, time.Minute, "the operator scraped", func() error { return targetsUp(promURL, 1) })
	s.applyObjects(t, dbURL)

	ca, err := servingcert.EnsureCA(filepath.Join(s.dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(s.dir, "tls.crt"), filepath.Join(s.dir, "tls.key")
	if err := ca.Issue(cert, key, []string{"127.0.0.1"}, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	s.https = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	progress(t, "starting gatehouse server on %s (TLS, PostgreSQL)", s.issuer)
	s.startProcess(t, "server", gatehouse, "server", "--authorization-server", ns+"/"+serverName,
		"--listen", strings.TrimPrefix(s.issuer, "https://"), "--metrics-listen", s.serverMetrics,
		"--tls-cert-file", cert, "--tls-key-file", key, "--postgres-url", dbURL)
	waitFor(t, time.Minute, "token server ready", func() error { return httpOK(http.DefaultClient, "http://"+s.serverMetrics+"/readyz") })
	waitFor(t, 30*time.Second, "both targets scraped", func() error { return targetsUp(promURL, 2) })
	return s, promURL
}

// targetsUp reports whether Prometheus scrapes n targets successfully.
func targetsUp(promURL string, n int) error {
	res, err := instantQuery(promURL, `up == 1`)
	if err == nil && len(res) < n {
		err = fmt.Errorf("targets up: %v", res)
	}
	return err
}

// scrapedSince says whether Prometheus has n targets up, each last
// scraped at or after since.
func scrapedSince(promURL string, since time.Time, n int) error {
	res, err := instantQuery(promURL, `timestamp(up == 1)`)
	if err != nil {
		return err
	}
	if len(res) < n {
		return fmt.Errorf("targets up: %v", res)
	}
	for _, r := range res {
		_, v, _ := strings.Cut(r, "} ")
		at, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("scrape time %q: %w", r, err)
		}
		if last := time.UnixMilli(int64(at * 1000)); last.Before(since) {
			return fmt.Errorf("%s last scraped at %s, before %s", r, last.Format("15:04:05.000"), since.Format("15:04:05.000"))
		}
	}
	return nil
}

func progress(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("%s "+format, append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func mustParse(t *testing.T, u string) *url.URL {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// applyObjects creates the AuthorizationServer (PostgreSQL storage, a
// users Secret), two Scopes and three OAuthClients: a machine client, a
// web app, and one asking for a scope nobody defines (never Ready: the
// readiness panels and the reconcile-problem panel show it).
func (s *system) applyObjects(t *testing.T, dbURL string) {
	t.Helper()
	ctx := t.Context()
	c := s.cp.Client
	pw := fmt.Sprintf("pw-%d", time.Now().UnixNano())
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost+6)
	if err != nil {
		t.Fatal(err)
	}
	s.password = pw
	server := serverName
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gatehouse-db"}, StringData: map[string]string{"url": dbURL}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gatehouse-users"},
			StringData: map[string]string{"users.yaml": "users:\n- username: " + testUsername + "\n  passwordHash: " + string(hash) + "\n"}},
		&oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: server}, Spec: oauthv1.AuthorizationServerSpec{
			Issuer: s.issuer,
			Storage: oauthv1.StorageSpec{Type: oauthv1.StoragePostgres,
				Postgres: &oauthv1.PostgresStorage{URLSecretRef: oauthv1.SecretKeyReference{Name: "gatehouse-db", Key: "url"}}},
			Users: &oauthv1.UsersSpec{SecretRef: oauthv1.LocalObjectReference{Name: "gatehouse-users"}},
		}},
		&oauthv1.Scope{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders-read"}, Spec: oauthv1.ScopeSpec{
			ServerRef: oauthv1.LocalObjectReference{Name: server}, Name: "orders:read", Description: "See your orders",
			Audience: "https://orders.example.com"}},
		&oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "inventory-sync"}, Spec: oauthv1.OAuthClientSpec{
			ServerRef: oauthv1.ServerReference{Name: server}, GrantTypes: []oauthv1.GrantType{oauthv1.GrantClientCredentials},
			Scopes: []oauthv1.ScopeName{"orders:read"}}},
		&oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "storefront"}, Spec: oauthv1.OAuthClientSpec{
			ServerRef:  oauthv1.ServerReference{Name: server},
			GrantTypes: []oauthv1.GrantType{oauthv1.GrantAuthorizationCode, oauthv1.GrantRefreshToken},
			Scopes:     []oauthv1.ScopeName{"orders:read"}, RedirectURIs: []oauthv1.RedirectURI{webRedirect}, SkipConsent: true}},
		&oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "misconfigured"}, Spec: oauthv1.OAuthClientSpec{
			ServerRef: oauthv1.ServerReference{Name: server}, GrantTypes: []oauthv1.GrantType{oauthv1.GrantClientCredentials},
			Scopes: []oauthv1.ScopeName{"no.such.scope"}}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	progress(t, "waiting for the signing keys and the clients' Secrets")
	waitFor(t, time.Minute, "KeysReady", func() error {
		as := &oauthv1.AuthorizationServer{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: server}, as); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(as.Status.Conditions, "KeysReady") {
			return fmt.Errorf("conditions %v", as.Status.Conditions)
		}
		return nil
	})
	s.machine = s.credentials(t, "inventory-sync")
	s.web = s.credentials(t, "storefront")
}

// credentials waits for a client to be Ready and reads its Secret.
func (s *system) credentials(t *testing.T, name string) clientCreds {
	t.Helper()
	ctx := t.Context()
	var creds clientCreds
	waitFor(t, time.Minute, name+" Ready", func() error {
		oc := &oauthv1.OAuthClient{}
		if err := s.cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, oc); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(oc.Status.Conditions, oauthv1.ConditionReady) || oc.Status.SecretName == "" {
			return fmt.Errorf("not Ready: %v", oc.Status.Conditions)
		}
		sec := &corev1.Secret{}
		if err := s.cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: oc.Status.SecretName}, sec); err != nil {
			return err
		}
		creds = clientCreds{id: string(sec.Data["client_id"]), secret: string(sec.Data["client_secret"])}
		return nil
	})
	return creds
}

// startPrometheus runs Prometheus scraping the operator and the token
// server every second, with the labels the chart's ServiceMonitors give
// (namespace, and the Service's name as the job).
func (s *system) startPrometheus(t *testing.T, prometheus string) string {
	t.Helper()
	ports, err := devenv.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
- job_name: %s-server
  static_configs:
  - targets: [%q]
    labels: {namespace: %s}
- job_name: gatehouse-operator-metrics
  static_configs:
  - targets: [%q]
    labels: {namespace: gatehouse-system}
`, serverName, s.serverMetrics, ns, s.operatorMetrics)
	file := filepath.Join(s.dir, "prometheus.yml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	progress(t, "starting Prometheus on %s", addr)
	s.startProcess(t, "prometheus", prometheus, "--config.file="+file, "--storage.tsdb.path="+filepath.Join(s.dir, "tsdb"),
		"--web.listen-address="+addr, "--log.level=warn")
	promURL := "http://" + addr
	waitFor(t, time.Minute, "Prometheus ready", func() error { return httpOK(http.DefaultClient, promURL+"/-/ready") })
	return promURL
}

// startProcess runs a child process that gets SIGKILL if the test binary
// dies, logging to the test's directory; its log is shown when the test
// fails.
func (s *system) startProcess(t *testing.T, name, path string, args ...string) {
	t.Helper()
	logPath := filepath.Join(s.dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.cp.Kubeconfig)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = log.Close() // the process wrote through its own descriptor
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log (last 3000 bytes):\n%s", name, tail(b, 3000))
			}
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func httpOK(c *http.Client, u string) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

func waitFor(t *testing.T, limit time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setConnections allows or refuses connections to the token server's
// database, ending the open ones when refusing: a database outage.
func (s *system) setConnections(ctx context.Context, allow bool) error {
	conn, err := pgx.Connect(ctx, s.pgAdmin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t", s.db, allow)); err != nil {
		return err
	}
	if !allow {
		_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", s.db)
	}
	return err
}
