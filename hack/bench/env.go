package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/kubescheme"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/internal/users"
)

// env is what runs: gatehouse dev (control plane, operator, demo data) and
// the token server under test.
type env struct {
	o      *options
	dir    string
	demo   map[string]string // demo.env
	issuer string            // the server under test's base URL
	addr   string            // its host:port
	// metricsURL is its /metrics.
	metricsURL string
	dev        *exec.Cmd
	// devExited is closed once gatehouse dev has exited (and been waited
	// for).
	devExited chan struct{}
	server    *exec.Cmd
	pg        *testpg.Server
	// postgresURL is the storage the token servers share, "" for memory.
	postgresURL string
	// product names what is measured in the report: gatehouse, or a peer
	// and its configuration.
	product string
	// A peer's endpoints, its introspection listener (host:port) and the
	// client registered there; empty for Gatehouse.
	eps                    *endpoints.Endpoints
	introspectAddr         string
	clientID, clientSecret string
	// secretless are the clients without a secret (secretless.go).
	secretless secretless
}

func startEnv(ctx context.Context, o *options) (_ *env, err error) {
	e := &env{o: o, dir: o.stateDir, product: "gatehouse"}
	if e.dir == "" {
		if e.dir, err = os.MkdirTemp("", "bench-http-"); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	if err := e.startDev(ctx); err != nil {
		return nil, err
	}
	c, err := e.kubeClient()
	if err != nil {
		return nil, err
	}
	if o.bcryptCost != 0 {
		if err := e.rehashPassword(ctx, c); err != nil {
			return nil, err
		}
	}
	if o.clients > 0 {
		if err := e.addClients(ctx, c, o.clients); err != nil {
			return nil, err
		}
	}
	if o.storage == "postgres" {
		if e.postgresURL, err = e.startPostgres(ctx, c); err != nil {
			return nil, err
		}
	}
	var first variant
	if len(o.variants) > 0 {
		first = o.variants[0]
		e.product = "gatehouse (" + first.name + ")"
	}
	if err := e.startServer(ctx, e.postgresURL, first); err != nil {
		return nil, err
	}
	return e, nil
}

// startDev runs `gatehouse dev` in plain HTTP and waits for its demo.env.
func (e *env) startDev(ctx context.Context) error {
	port, err := devenv.FreePort()
	if err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(e.dir, "dev.log"))
	if err != nil {
		return err
	}
	state := filepath.Join(e.dir, "dev")
	args := []string{"dev", "--state-dir", state, "--port", strconv.Itoa(port), "--reset"}
	// Plain HTTP, as the figures in BENCHMARKS.md; older builds had no TLS.
	if help, _ := exec.Command(e.o.gatehouse, "dev", "-h").CombinedOutput(); strings.Contains(string(help), "-tls") {
		args = append(args, "--tls=false")
	}
	e.dev = exec.Command(e.o.gatehouse, args...)
	e.dev.Stdout, e.dev.Stderr = log, log
	e.dev.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := e.dev.Start(); err != nil {
		return fmt.Errorf("starting gatehouse dev: %w", err)
	}
	progress("started gatehouse dev (log %s)", log.Name())
	e.devExited = make(chan struct{})
	go func() { _ = e.dev.Wait(); close(e.devExited) }()
	envFile := filepath.Join(state, "demo.env")
	for began := time.Now(); ; time.Sleep(500 * time.Millisecond) {
		select {
		case <-e.devExited:
			return fmt.Errorf("gatehouse dev exited (see %s)", log.Name())
		default:
		}
		if b, err := os.ReadFile(envFile); err == nil {
			e.demo = parseEnvFile(string(b))
			demoClientID, demoClientSecret = e.demo["DEMO_CLIENT_ID"], e.demo["DEMO_CLIENT_SECRET"]
			demoUsername, demoPassword, demoRedirectURI = e.demo["DEMO_USERNAME"], e.demo["DEMO_PASSWORD"], e.demo["DEMO_REDIRECT_URI"]
			progress("gatehouse dev ready in %s", time.Since(began).Round(time.Second))
			return nil
		}
		if time.Since(began) > 4*time.Minute || ctx.Err() != nil {
			return fmt.Errorf("gatehouse dev did not write %s (see %s)", envFile, log.Name())
		}
	}
}

// The demo client and user, from demo.env.
var demoClientID, demoClientSecret, demoUsername, demoPassword, demoRedirectURI string

func parseEnvFile(s string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok && !strings.HasPrefix(k, "#") {
			out[k] = strings.ReplaceAll(strings.Trim(v, "'"), `'\''`, "'")
		}
	}
	return out
}

func (e *env) kubeClient() (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", e.demo["KUBECONFIG"])
	if err != nil {
		return nil, err
	}
	// -clients applies thousands of objects: client-go's default 5/s
	// would take half an hour for 10,000.
	cfg.QPS, cfg.Burst = 500, 1000
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// rehashPassword stores the demo user's password hashed at -bcrypt-cost.
func (e *env) rehashPassword(ctx context.Context, c client.Client) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(e.demo["DEMO_PASSWORD"]), e.o.bcryptCost)
	if err != nil {
		return err
	}
	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: devenv.Namespace, Name: devenv.UsersSecret}, sec); err != nil {
		return err
	}
	var doc struct {
		Users []map[string]any `json:"users"`
	}
	if err := yaml.Unmarshal(sec.Data[users.SecretDataKey], &doc); err != nil {
		return err
	}
	for _, u := range doc.Users {
		u["passwordHash"] = string(hash)
	}
	if sec.Data[users.SecretDataKey], err = yaml.Marshal(doc); err != nil {
		return err
	}
	progress("demo user's password re-hashed at bcrypt cost %d", e.o.bcryptCost)
	return c.Update(ctx, sec)
}

// startPostgres starts a throwaway PostgreSQL and points the demo
// AuthorizationServer at it (the server under test reads the storage type
// from there; gatehouse dev's own server keeps its memory store).
func (e *env) startPostgres(ctx context.Context, c client.Client) (string, error) {
	pg, err := testpg.Start()
	if err != nil {
		return "", err
	}
	e.pg = pg
	url := pg.URL("postgres")
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: devenv.Namespace, Name: "bench-postgres"}, StringData: map[string]string{"url": url}}
	if err := c.Create(ctx, sec); err != nil {
		return "", err
	}
	as := &oauthv1.AuthorizationServer{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: devenv.Namespace, Name: devenv.Server}, as); err != nil {
		return "", err
	}
	as.Spec.Storage = oauthv1.StorageSpec{Type: oauthv1.StoragePostgres,
		Postgres: &oauthv1.PostgresStorage{URLSecretRef: oauthv1.SecretKeyReference{Name: "bench-postgres", Key: "url"}}}
	if err := c.Update(ctx, as); err != nil {
		return "", err
	}
	progress("PostgreSQL on port %d", pg.Port)
	return url, nil
}

// startServer runs the token server under test with the variant's
// arguments and environment, pinned with taskset when asked, and waits
// until it answers.
func (e *env) startServer(ctx context.Context, postgresURL string, v variant) error {
	ports, err := devenv.FreePorts(2)
	if err != nil {
		return err
	}
	port, mport := ports[0], ports[1]
	bin := e.o.gatehouse
	if v.binary != "" {
		bin = v.binary
	}
	args := []string{bin, "server", "--authorization-server", devenv.Namespace + "/" + devenv.Server,
		"--listen", "127.0.0.1:" + strconv.Itoa(port), "--metrics-listen", "127.0.0.1:" + strconv.Itoa(mport), "--log-level", "warn"}
	if postgresURL != "" {
		args = append(args, "--postgres-url", postgresURL)
	}
	for _, a := range v.args {
		args = append(args, strings.ReplaceAll(a, "{dir}", e.dir))
	}
	if e.o.serverCPUs != "" {
		args = append([]string{"taskset", "-c", e.o.serverCPUs}, args...)
	}
	logName := "server.log"
	if v.name != "" {
		logName = "server-" + v.name + ".log"
	}
	log, err := os.Create(filepath.Join(e.dir, logName))
	if err != nil {
		return err
	}
	e.server = exec.Command(args[0], args[1:]...)
	e.server.Env = append(append(os.Environ(), "KUBECONFIG="+e.demo["KUBECONFIG"]), v.env...)
	for i, kv := range e.server.Env {
		e.server.Env[i] = strings.ReplaceAll(kv, "{dir}", e.dir)
	}
	e.server.Stdout, e.server.Stderr = log, log
	e.server.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := e.server.Start(); err != nil {
		return err
	}
	// The issuer's paths, on this server's port: routing is by path only.
	issuerURL := strings.TrimRight(e.demo["GATEHOUSE_ISSUER"], "/")
	host := issuerURL[strings.Index(issuerURL, "//")+2:]
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	e.addr = "127.0.0.1:" + strconv.Itoa(port)
	e.issuer = strings.Replace(issuerURL, host, e.addr, 1)
	e.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", mport)
	for began := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(readyz); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				progress("token server (pid %d) ready at %s", e.server.Process.Pid, e.issuer)
				return nil
			}
		}
		if time.Since(began) > 2*time.Minute || ctx.Err() != nil {
			return fmt.Errorf("the token server is not ready (see %s)", log.Name())
		}
	}
}

func (e *env) stop() {
	for _, c := range []*exec.Cmd{e.server, e.dev} {
		if c == nil || c.Process == nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		done := e.devExited
		if c != e.dev || done == nil {
			done = make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = c.Process.Kill()
		}
	}
	if e.pg != nil {
		_ = e.pg.Stop()
	}
}

// serverPID is the token server's process: this one when the server runs
// in it (the tests).
func (e *env) serverPID() int {
	if e.server == nil {
		return os.Getpid()
	}
	return e.server.Process.Pid
}

// procStats are a process's CPU seconds (user+system) and RSS bytes.
func procStats(pid int) (cpu float64, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 22 {
		return 0, 0, errors.New("short /proc stat")
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return (utime + stime) / ticks, pages * int64(os.Getpagesize()), nil
}
