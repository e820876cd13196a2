package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/acked"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testlogin"
)

// apiDownEnv sets how long TestAPIServerDownUnderLoad keeps
// kube-apiserver stopped (a Go duration); make test-faults sets 2m.
const apiDownEnv = "GATEHOUSE_FAULT_APISERVER_DOWN"

// apiDownWindow is $GATEHOUSE_FAULT_APISERVER_DOWN, 20s by default.
func apiDownWindow(t *testing.T) time.Duration {
	d := 20 * time.Second
	if v := os.Getenv(apiDownEnv); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("%s: %v", apiDownEnv, err)
		}
	}
	return d
}

// TestAPIServerDownUnderLoad stops kube-apiserver (etcd stays up, as in a
// control-plane upgrade) while clients log in, refresh, get
// client_credentials tokens and introspect them. The token server serves
// every request from its informer caches: not one may fail, and its
// readiness stays OK. A token server started meanwhile stays unready and
// says why. Once the API server is back, on the same port and
// certificates, the new server becomes ready, the operator reconciles a
// client created after the return, and its writes stay a handful (no
// burst). Afterwards every acknowledged refresh token and access token
// must still work (internal/acked).
func TestAPIServerDownUnderLoad(t *testing.T) {
	s := get(t)
	if !s.local {
		t.Skip("stops kube-apiserver: runs only against the suite's own control plane, not a real cluster")
	}
	down := apiDownWindow(t)
	ctx, cancel := context.WithTimeout(context.Background(), down+4*time.Minute)
	defer cancel()
	load := newAPILoad(t, ctx, s)
	writesBefore := operatorWrites(t, s)
	load.run(ctx, 4)
	time.Sleep(3 * time.Second) // load on a healthy control plane first

	stoppedAt := time.Now()
	up := false
	t.Cleanup(func() {
		if !up { // the suite's other tests and its end need it
			if err := s.cp.StartAPIServer(); err != nil {
				t.Errorf("starting kube-apiserver again: %v", err)
			}
		}
	})
	if err := s.cp.StopAPIServer(); err != nil {
		t.Fatalf("stopping kube-apiserver: %v", err)
	}
	t.Logf("kube-apiserver killed (%s); down for %s under load", time.Since(stoppedAt).Round(time.Millisecond), down)
	during, reported := s.startedDuringOutage(t)
	t.Logf("a token server started while the API server is down: %s", reported)
	verifiedBefore := metricValue(t, metricsURL(s.serverMetrics), "gatehouse_server_config_verified_timestamp_seconds", nil)
	time.Sleep(time.Until(stoppedAt.Add(down)))

	startedAt := time.Now()
	if err := s.cp.StartAPIServer(); err != nil {
		t.Fatalf("starting kube-apiserver again: %v", err)
	}
	up = true
	t.Logf("kube-apiserver back after %s (healthy %s after its start)", startedAt.Sub(stoppedAt).Round(time.Second), time.Since(startedAt).Round(time.Millisecond))
	restarted := s.readyAfterOutage(t, during, startedAt)
	s.operatorResumes(t, ctx, startedAt)
	if at := <-restarted; at.IsZero() {
		t.Error("a token server (re)started around the outage did not become ready within 2 minutes of the API server's return")
	} else {
		t.Logf("a token server (re)started around the outage: ready %s after the API server returned", at.Sub(startedAt).Round(100*time.Millisecond))
	}
	var verifiedAgain float64
	eventually(t, 2*time.Minute, "the running server confirms its configuration again", func() error {
		if verifiedAgain = metricValue(t, metricsURL(s.serverMetrics), "gatehouse_server_config_verified_timestamp_seconds", nil); verifiedAgain < float64(startedAt.Unix()) {
			return fmt.Errorf("last confirmed %s before the API server returned", startedAt.Sub(time.Unix(int64(verifiedAgain), 0)).Round(time.Second))
		}
		return nil
	})
	t.Logf("the running server last confirmed its configuration %s before the API server returned, and again %s after (gatehouse_server_config_verified_timestamp_seconds)",
		startedAt.Sub(time.Unix(int64(verifiedBefore), 0)).Round(time.Second), time.Unix(int64(verifiedAgain), 0).Sub(startedAt).Round(time.Second))

	time.Sleep(3 * time.Second) // load on the returned control plane
	load.stopAndCheck(t, stoppedAt, startedAt)
	writes := operatorWrites(t, s).minus(writesBefore)
	answered, refused := writes.split()
	t.Logf("operator write requests from before the outage to now: %d answered %v (one new client included), %d attempts that found no API server",
		answered.total(), answered, refused)
	// The new client costs its Secret and its status (TestOAuthClientAPIRequests);
	// a relist of everything after the outage must write nothing. During
	// the outage the event recorder retries a pending Event every 10 s or
	// so, a dozen times at most per Event.
	if n := answered.total(); n > 8 {
		t.Errorf("the operator sent %d write requests across the outage and one new client, want at most 8: a burst after the API server returned", n)
	}
	if limit := int(down/(5*time.Second)) + 12; refused > limit {
		t.Errorf("the operator tried %d writes while the API server was down, want at most %d", refused, limit)
	}
}

// readyAfterOutage watches a token server started during the outage once
// the API server is back (one that exited is started again, as the
// kubelet would restart its container) and sends when it became ready,
// or the zero time after 2 minutes.
func (s *suite) readyAfterOutage(t *testing.T, during *serverProcess, back time.Time) <-chan time.Time {
	t.Helper()
	p := during
	select {
	case <-during.exited:
		p = s.startServerProcess(t, "server-restarted-after-outage")
	default:
	}
	ready := make(chan time.Time, 1)
	go func() {
		for time.Since(back) < 2*time.Minute {
			if strings.HasPrefix(probe(p.metrics+"/readyz"), "200") {
				ready <- time.Now()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		ready <- time.Time{}
	}()
	return ready
}

// operatorResumes creates a client after the API server returned: the
// operator must reconcile it and the token server serve it.
func (s *suite) operatorResumes(t *testing.T, ctx context.Context, back time.Time) {
	t.Helper()
	applied := time.Now()
	s.applyYAML(t, machineClientYAML("after-outage", ""))
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "after-outage"}}
	if err := waitCondition(ctx, s.c, oc, oauthv1.ConditionReady); err != nil {
		t.Fatal(err)
	}
	ready := time.Since(back)
	sec := s.appSecret(t, oc.Status.SecretName)
	eventually(t, 2*time.Minute, "a token for a client created after the outage", func() error {
		_, err := machineToken(ctx, s.issuer+endpoints.TokenPath, sec[oauthv1.SecretKeyClientID], sec[oauthv1.SecretKeyClientSecret], "inventory.sync")
		return err
	})
	t.Logf("a client applied %s after the API server returned: Ready %s and served a token %s after the return",
		applied.Sub(back).Round(100*time.Millisecond), ready.Round(100*time.Millisecond), time.Since(back).Round(100*time.Millisecond))
}

func metricsURL(addr string) string { return "http://" + addr + "/metrics" }

// serverProcess is a token server the test starts for the suite's
// AuthorizationServer, as a pod's container would be.
type serverProcess struct {
	metrics string // base URL of its metrics port
	log     string
	exited  chan struct{}
}

// startServerProcess starts one, stopped at the end of the test.
func (s *suite) startServerProcess(t *testing.T, name string) *serverProcess {
	t.Helper()
	listen, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{metrics: fmt.Sprintf("http://127.0.0.1:%d", metrics), log: filepath.Join(s.logDir, name+".log"), exited: make(chan struct{})}
	log, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.gatehouse, "server", "--authorization-server", s.ns+"/"+serverName,
		"--listen", fmt.Sprintf("127.0.0.1:%d", listen), "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", metrics), "--audit-log", "off")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-p.exited
		_ = log.Close()
	})
	return p
}

// startedDuringOutage starts a token server while the API server is down
// and watches it for 10 s: it must not become ready. It returns what it
// reported: its exit and last log line, or its /readyz answer.
func (s *suite) startedDuringOutage(t *testing.T) (*serverProcess, string) {
	t.Helper()
	p := s.startServerProcess(t, "server-started-during-outage")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-p.exited:
			return p, "exited: " + strings.TrimSpace(tail(p.log, 1))
		case <-deadline:
			body := probe(p.metrics + "/readyz")
			if !strings.HasPrefix(body, "503") {
				t.Errorf("a server started while the API server is down: /readyz %s, want 503", body)
			}
			return p, "/readyz " + body
		case <-time.After(200 * time.Millisecond):
			if body := probe(p.metrics + "/readyz"); strings.HasPrefix(body, "200") {
				t.Fatalf("a server started while the API server is down became ready: %s", body)
			}
		}
	}
}

// probe returns "status body" of a GET, or "error ..." when nothing
// answered.
func probe(u string) string {
	resp, err := http.Get(u)
	if err != nil {
		return "error " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
}

// writeCounts are the operator's requests to the API server that write,
// by "METHOD code" (code "<error>": no answer).
type writeCounts map[string]float64

func (w writeCounts) minus(before writeCounts) writeCounts {
	out := writeCounts{}
	for k, v := range w {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// split parts the requests the API server answered from the number that
// found no API server.
func (w writeCounts) split() (answered writeCounts, refused int) {
	answered = writeCounts{}
	for k, v := range w {
		if strings.HasSuffix(k, " <error>") {
			refused += int(v)
		} else {
			answered[k] = v
		}
	}
	return answered, refused
}

func (w writeCounts) total() int {
	n := 0.0
	for _, v := range w {
		n += v
	}
	return int(n)
}

// operatorWrites reads client-go's rest_client_requests_total from the
// operator's metrics: every request the process sent, by method and code.
func operatorWrites(t *testing.T, s *suite) writeCounts {
	t.Helper()
	out := writeCounts{}
	scrape(t, metricsURL(s.operatorMetrics), func(name string, labels map[string]string, v float64) {
		if name != "rest_client_requests_total" {
			return
		}
		switch labels["method"] {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			out[labels["method"]+" "+labels["code"]] += v
		}
	})
	return out
}

// metricValue is the sum of a metric's samples whose labels include want.
func metricValue(t *testing.T, u, metric string, want map[string]string) float64 {
	t.Helper()
	sum := 0.0
	scrape(t, u, func(name string, labels map[string]string, v float64) {
		if name != metric {
			return
		}
		for k, w := range want {
			if labels[k] != w {
				return
			}
		}
		sum += v
	})
	return sum
}

// scrape reads a Prometheus text exposition, calling each for every
// sample. Label values here carry no commas or escaped quotes.
func scrape(t *testing.T, u string, each func(name string, labels map[string]string, v float64)) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		name, rest, _ := strings.Cut(series, "{")
		labels := map[string]string{}
		for _, pair := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			if k, val, ok := strings.Cut(pair, "="); ok {
				labels[k] = strings.Trim(val, `"`)
			}
		}
		each(name, labels, v)
	}
}

// apiLoad is the traffic of TestAPIServerDownUnderLoad: refresh-token
// families, client_credentials, introspection, password logins through
// the login and consent pages, and the server's readiness, each paced.
type apiLoad struct {
	s              *suite
	ledger         *acked.Ledger
	web            oauth2.Config
	ccID, ccSecret string
	stop           chan struct{}
	wg             sync.WaitGroup
	latest         atomic.Pointer[string] // an access token to introspect
	groups         atomic.Int64
	mu             sync.Mutex
	log            []apiAnswer
}

type apiAnswer struct {
	kind   string
	at     time.Time
	failed string // empty when it worked
}

func newAPILoad(t *testing.T, ctx context.Context, s *suite) *apiLoad {
	t.Helper()
	web := s.appSecret(t, webClientSecret)
	oc := &oauthv1.OAuthClient{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: machineClient}, oc); err != nil {
		t.Fatal(err)
	}
	cc := s.appSecret(t, oc.Status.SecretName)
	return &apiLoad{s: s, ledger: acked.New(), stop: make(chan struct{}),
		ccID: cc[oauthv1.SecretKeyClientID], ccSecret: cc[oauthv1.SecretKeyClientSecret],
		web: oauth2.Config{ClientID: web[oauthv1.SecretKeyClientID], ClientSecret: web[oauthv1.SecretKeyClientSecret],
			Endpoint: oauth2.Endpoint{AuthURL: s.issuer + endpoints.AuthorizePath, TokenURL: s.issuer + endpoints.TokenPath,
				AuthStyle: oauth2.AuthStyleInHeader},
			RedirectURL: s.callback.url, Scopes: []string{"orders:read"}}}
}

// run starts the workers: families refresh-token loops (each family from
// a login), one client_credentials loop, one introspection loop, one
// login loop and one readiness probe.
func (l *apiLoad) run(ctx context.Context, families int) {
	for range families {
		tok, err := l.login(ctx)
		if err != nil {
			l.record("login", err)
			continue
		}
		group := fmt.Sprintf("family-%d", l.groups.Add(1))
		l.ack(group, tok)
		l.loop(ctx, 200*time.Millisecond, func() { tok = l.refresh(ctx, group, tok) })
	}
	l.loop(ctx, 50*time.Millisecond, func() { l.clientCredentials(ctx) })
	l.loop(ctx, 100*time.Millisecond, func() { l.introspect(ctx) })
	l.loop(ctx, time.Second, func() {
		tok, err := l.login(ctx)
		l.record("login", err)
		if err == nil {
			l.ack(fmt.Sprintf("login-%d", l.groups.Add(1)), tok)
		}
	})
	l.loop(ctx, time.Second, func() {
		body := probe("http://" + l.s.serverMetrics + "/readyz")
		var err error
		if !strings.HasPrefix(body, "200") {
			err = fmt.Errorf("/readyz %s", body)
		}
		l.record("readyz", err)
	})
}

func (l *apiLoad) loop(ctx context.Context, every time.Duration, do func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				do()
			}
		}
	}()
}

func (l *apiLoad) record(kind string, err error) {
	a := apiAnswer{kind: kind, at: time.Now()}
	if err != nil {
		a.failed = err.Error()
	}
	l.mu.Lock()
	l.log = append(l.log, a)
	l.mu.Unlock()
}

// ack records a token answer in the ledger.
func (l *apiLoad) ack(group string, tok *oauth2.Token) {
	l.ledger.Ack(acked.AccessToken, group, tok.AccessToken)
	if tok.RefreshToken != "" {
		l.ledger.Ack(acked.RefreshToken, group, tok.RefreshToken)
	}
	at := tok.AccessToken
	l.latest.Store(&at)
}

// login signs alice in through the login and consent pages (a fresh
// browser each time: a password login every time) and redeems the code.
func (l *apiLoad) login(ctx context.Context) (*oauth2.Token, error) {
	b, err := testlogin.New(l.s.issuer, nil)
	if err != nil {
		return nil, err
	}
	verifier, state := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	back, err := b.SignIn(ctx, l.web.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), username, l.s.password)
	if err != nil {
		return nil, err
	}
	q := back.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		return nil, fmt.Errorf("redirect back %s", redactCode(back))
	}
	return l.web.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
}

// refresh rotates the family's refresh token; on a failure the client
// keeps the one it holds.
func (l *apiLoad) refresh(ctx context.Context, group string, tok *oauth2.Token) *oauth2.Token {
	next, err := l.web.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	l.record("refresh", err)
	if err != nil {
		return tok
	}
	l.ack(group, next)
	return next
}

func (l *apiLoad) clientCredentials(ctx context.Context) {
	tok, err := machineToken(ctx, l.s.issuer+endpoints.TokenPath, l.ccID, l.ccSecret, "inventory.sync")
	l.record("client_credentials", err)
	if err == nil {
		l.ack(fmt.Sprintf("cc-%d", l.groups.Add(1)), tok)
	}
}

func (l *apiLoad) introspect(ctx context.Context) {
	at := l.latest.Load()
	if at == nil {
		return
	}
	active, err := l.active(ctx, *at)
	if err == nil && !active {
		err = fmt.Errorf("a fresh access token introspected inactive")
	}
	l.record("introspection", err)
}

// active introspects token with the web client's credentials.
func (l *apiLoad) active(ctx context.Context, token string) (bool, error) {
	status, body, err := postForm(ctx, l.s.issuer+endpoints.IntrospectPath, l.web.ClientID, l.web.ClientSecret, url.Values{"token": {token}})
	if err != nil {
		return false, err
	}
	if status != http.StatusOK {
		return false, fmt.Errorf("introspection answered %d %v", status, body)
	}
	return body["active"] == true, nil
}

// stopAndCheck stops the load, reports each kind's answers before,
// during and after the outage (none may have failed) and verifies the
// ledger.
func (l *apiLoad) stopAndCheck(t *testing.T, stoppedAt, startedAt time.Time) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	type tally struct{ before, during, after, failed int }
	byKind := map[string]*tally{}
	for _, a := range l.log {
		k := byKind[a.kind]
		if k == nil {
			k = &tally{}
			byKind[a.kind] = k
		}
		switch {
		case a.at.Before(stoppedAt):
			k.before++
		case a.at.Before(startedAt):
			k.during++
		default:
			k.after++
		}
		if a.failed != "" {
			k.failed++
			t.Errorf("%s at %s (%s into the outage) failed: %s", a.kind, a.at.Format("15:04:05.000"), a.at.Sub(stoppedAt).Round(time.Millisecond), a.failed)
		}
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		c := byKind[k]
		t.Logf("%-18s before %5d, while the API server was down %5d, after %5d; failed %d", k, c.before, c.during, c.after, c.failed)
	}
	if byKind["login"] == nil || byKind["login"].during == 0 || byKind["refresh"] == nil || byKind["refresh"].during == 0 {
		t.Errorf("no logins or refreshes while the API server was down: the load did not run")
	}
	l.check(t)
}

// check verifies every acknowledged item: a refresh family by a refresh
// grant, an access token by introspection.
func (l *apiLoad) check(t *testing.T) {
	t.Helper()
	rep, err := l.ledger.Verify(context.Background(), func(ctx context.Context, kind acked.Kind, token string) (acked.State, error) {
		if kind == acked.RefreshToken {
			_, err := l.web.TokenSource(ctx, &oauth2.Token{RefreshToken: token, Expiry: time.Unix(1, 0)}).Token()
			var re *oauth2.RetrieveError
			switch {
			case err == nil:
				return acked.Usable, nil
			case errors.As(err, &re) && re.Response.StatusCode == http.StatusBadRequest:
				return acked.Inactive, nil
			}
			return 0, err
		}
		active, err := l.active(ctx, token)
		if err != nil {
			return 0, err
		}
		if active {
			return acked.Usable, nil
		}
		return acked.Inactive, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checker: %s", rep)
	if !rep.OK() {
		t.Errorf("lost %v", rep.Lost)
	}
}
