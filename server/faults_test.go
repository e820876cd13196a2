package server

// The fault tier on the host (make test-faults): a real PostgreSQL primary
// streaming synchronously to a replica, a TCP proxy standing for the
// Service in front of them, and this token server over HTTP under load
// while the database crashes, fails over or stalls. Each test prints its
// figures and the acknowledged-items checker's line.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/acked"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/server/storage/postgres"
)

// faultTimeouts are the store's timeouts in the fault tests: what
// --postgres-connect-timeout, --postgres-acquire-timeout and
// --postgres-statement-timeout would set.
var faultTimeouts = postgres.Timeouts{Connect: 2 * time.Second, Acquire: time.Second, Statement: 2 * time.Second}

// answerBound is how long any answer may take during a fault: the
// timeouts above, with room for a busy machine. A client that waits longer
// counts as a hang.
const answerBound = 20 * time.Second

// faultRig is a token server on a PostgreSQL primary and its synchronous
// replica, reached through a proxy.
type faultRig struct {
	ts               *testServer
	primary, replica *testpg.Server
	proxy            *testpg.Proxy
	store            *postgres.Store
	hc               *http.Client
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	primary, err := testpg.StartPrimary(true)
	if err != nil {
		if missing := (*testpg.MissingBinariesError)(nil); errors.As(err, &missing) {
			testenv.MissingDependency(t, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.Stop() })
	replica, err := primary.StartReplica()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = replica.Stop() })
	proxy, err := testpg.NewProxy(fmt.Sprintf("127.0.0.1:%d", primary.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	// The server knows one address, the "Service"; the database it names
	// exists on both, as replication copies it.
	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", proxy.Port())
	store, err := postgres.Open(t.Context(), dbURL, postgres.WithTimeouts(faultTimeouts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// The clock stays real: tokens are issued and checked over seconds.
	// Retries of a refresh whose answer was lost are the default's
	// (spec.refreshTokenRetry covers the confidential web client).
	ts := newTestServerWith(t, func(o *Options) { o.Store = store; o.Now = time.Now })
	return &faultRig{ts: ts, primary: primary, replica: replica, proxy: proxy, store: store,
		hc: &http.Client{Timeout: answerBound}}
}

// answer is one request's outcome.
type answer struct {
	path    string
	form    string // the grant type, or empty
	family  string // the refresh family, or empty
	at      time.Time
	took    time.Duration
	status  int // 0: no answer (hang or connection error)
	problem string
}

// faultLoad drives refresh-token families and client_credentials at the
// server, records every acknowledged credential in a ledger and every
// answer in a log.
type faultLoad struct {
	r      *faultRig
	ledger *acked.Ledger
	mu     sync.Mutex
	log    []answer
	stop   chan struct{}
	wg     sync.WaitGroup
	seq    atomic.Int64
}

func (r *faultRig) startLoad(t *testing.T, families, ccWorkers int) *faultLoad {
	t.Helper()
	l := &faultLoad{r: r, ledger: acked.New(), stop: make(chan struct{})}
	b := newBrowser(t, r.ts)
	var tokens []string
	uses := make([]int, families)
	for range families {
		code, verifier := r.ts.codeFor(t, b, "orders:read")
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {webRedirect}}
		tok, a := l.token("", form, webClientID, webSecret)
		if a.status != http.StatusOK {
			t.Fatalf("redeeming a code before the fault: %d %s", a.status, a.problem)
		}
		fam := fmt.Sprint("family-", len(tokens))
		l.ledger.Ack(acked.RefreshToken, fam, tok.RefreshToken)
		l.ledger.Ack(acked.AccessToken, fam, tok.AccessToken)
		tokens = append(tokens, tok.RefreshToken)
	}
	// Two workers share the families, each family used by one at a time.
	for w := range 2 {
		l.wg.Go(func() {
			for i := w; ; i = (i + 2) % len(tokens) {
				if l.stopped() {
					return
				}
				if tokens[i] == "" {
					continue
				}
				uses[i]++
				// A quarter of the families are given up on their 20th
				// use: a client revoking, whose revocation must hold.
				tokens[i] = l.refresh(fmt.Sprint("family-", i), tokens[i], i < families/4 && uses[i] == 20)
			}
		})
	}
	for range ccWorkers {
		l.wg.Go(func() {
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}}
			// Paced: the ledger keeps every access token it acknowledges
			// (about a KiB each), and these need no database, so unpaced
			// they record as many as the machine is fast, and the stall
			// test's heap bound would measure the test's bookkeeping.
			pace := time.NewTicker(ccInterval)
			defer pace.Stop()
			for !l.stopped() {
				select {
				case <-pace.C:
				case <-l.stop:
					return
				}
				tok, a := l.token("", form, ccClientID, ccSecret)
				if a.status == http.StatusOK {
					l.ledger.Ack(acked.AccessToken, fmt.Sprint("client-credentials-", l.seq.Add(1)), tok.AccessToken)
				} else {
					l.backoff(a)
				}
			}
		})
	}
	return l
}

// ccInterval paces each client_credentials worker of the fault load
// (500 requests a second).
const ccInterval = 2 * time.Millisecond

func (l *faultLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// backoff waits after a refused request, as a client honouring
// Retry-After would, but briefly, to keep probing.
func (l *faultLoad) backoff(a answer) {
	if a.status != http.StatusOK {
		time.Sleep(100 * time.Millisecond)
	}
}

// refresh rotates a family's token once: the new one on success, the same
// one when the server could not serve (a client retries with what it
// holds), "" when the family ended (revoked on purpose, or lost).
func (l *faultLoad) refresh(fam, rt string, revoke bool) string {
	if revoke {
		for !l.stopped() {
			a := l.post(fam, endpoints.RevokePath, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}, webClientID, webSecret, nil)
			if a.status == http.StatusOK {
				l.ledger.Revoked(fam)
				return ""
			}
			l.backoff(a)
		}
		return rt
	}
	tok, a := l.token(fam, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, webClientID, webSecret)
	switch a.status {
	case http.StatusOK:
		l.ledger.Ack(acked.RefreshToken, fam, tok.RefreshToken)
		l.ledger.Ack(acked.AccessToken, fam, tok.AccessToken)
		return tok.RefreshToken
	case http.StatusBadRequest:
		return "" // the checker will call it lost
	}
	l.backoff(a)
	return rt
}

type faultToken struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (l *faultLoad) token(fam string, form url.Values, id, secret string) (faultToken, answer) {
	var tok faultToken
	a := l.post(fam, endpoints.TokenPath, form, id, secret, &tok)
	return tok, a
}

// post sends a form for a refresh family (or none) and logs the answer;
// out receives a 200's JSON.
func (l *faultLoad) post(fam, path string, form url.Values, id, secret string, out any) answer {
	a := l.r.post(path, form, id, secret, out)
	a.family = fam
	l.mu.Lock()
	l.log = append(l.log, a)
	l.mu.Unlock()
	return a
}

func (r *faultRig) post(path string, form url.Values, id, secret string, out any) answer {
	req, err := http.NewRequest(http.MethodPost, r.ts.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	a := answer{path: path, form: form.Get("grant_type"), at: time.Now()}
	resp, err := r.hc.Do(req)
	a.took = time.Since(a.at)
	if err != nil {
		a.problem = err.Error()
		return a
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a.status = resp.StatusCode
	switch {
	case resp.StatusCode == http.StatusOK:
		if out != nil && json.Unmarshal(body, out) != nil {
			a.problem = "undecodable 200: " + string(body)
		}
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "":
		a.problem = "503 without Retry-After: " + string(body)
	case resp.StatusCode != http.StatusServiceUnavailable:
		a.problem = string(body)
	}
	return a
}

// end stops the load and returns the answers in the order they began.
func (l *faultLoad) end() []answer {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.SortFunc(l.log, func(a, b answer) int { return a.at.Compare(b.at) })
	return l.log
}

// check verifies every acknowledged item: a refresh family by a refresh
// grant (which must succeed unless it was revoked), an access token by
// introspection.
func (l *faultLoad) check(t *testing.T) {
	t.Helper()
	rep, err := l.ledger.Verify(t.Context(), func(_ context.Context, kind acked.Kind, token string) (acked.State, error) {
		if kind == acked.RefreshToken {
			_, a := l.token("", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}, webClientID, webSecret)
			switch a.status {
			case http.StatusOK:
				return acked.Usable, nil
			case http.StatusBadRequest:
				return acked.Inactive, nil
			}
			return 0, fmt.Errorf("refresh answered %d %s", a.status, a.problem)
		}
		var got struct {
			Active bool `json:"active"`
		}
		a := l.r.post(endpoints.IntrospectPath, url.Values{"token": {token}}, ccClientID, ccSecret, &got)
		if a.status != http.StatusOK {
			return 0, fmt.Errorf("introspection answered %d %s", a.status, a.problem)
		}
		if got.Active {
			return acked.Usable, nil
		}
		return acked.Inactive, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checker: %s", rep)
	if !rep.OK() {
		t.Errorf("lost %v; revoked but still active %v", rep.Lost, rep.StillActive)
	}
}

// faultFigures summarises the answers of a run.
type faultFigures struct {
	total, ok, unavailable, failed int
	slowest                        time.Duration
}

func (f faultFigures) String() string {
	return fmt.Sprintf("%d requests: %d ok, %d 503 with Retry-After, %d other; slowest answer %s",
		f.total, f.ok, f.unavailable, f.failed, f.slowest.Round(time.Millisecond))
}

// judge fails the test for any answer but 200 or 503 with Retry-After,
// and for any that took longer than answerBound.
func judge(t *testing.T, log []answer) faultFigures {
	t.Helper()
	var f faultFigures
	for _, a := range log {
		f.total++
		f.slowest = max(f.slowest, a.took)
		switch {
		case a.problem == "" && a.status == http.StatusOK:
			f.ok++
		case a.problem == "" && a.status == http.StatusServiceUnavailable:
			f.unavailable++
		default:
			f.failed++
			if f.failed <= 5 {
				t.Errorf("answer %d after %s: %s", a.status, a.took.Round(time.Millisecond), a.problem)
			}
		}
	}
	return f
}

// recovery is how long after since a refresh (which needs the database;
// client_credentials does not) first succeeded again: the end of the
// first successful refresh that began after since.
func recovery(log []answer, since time.Time) time.Duration {
	for _, a := range log {
		if !a.at.Before(since) && a.form == "refresh_token" && a.status == http.StatusOK && a.problem == "" {
			return a.at.Add(a.took).Sub(since)
		}
	}
	return -1
}

// everyFamily is how long after since every refresh family still in use
// (not revoked by its client) had its first successful refresh: a family
// whose row a transaction abandoned by the fault still locks recovers only
// when the database ends that transaction. -1 while one has not.
func everyFamily(log []answer, since time.Time) time.Duration {
	first := map[string]time.Duration{}
	revoked := map[string]bool{}
	for _, a := range log {
		ok := a.status == http.StatusOK && a.problem == ""
		if a.path == endpoints.RevokePath && ok {
			revoked[a.family] = true
		}
		if a.family == "" || a.form != "refresh_token" {
			continue
		}
		if _, seen := first[a.family]; !seen {
			first[a.family] = -1
		}
		if first[a.family] < 0 && ok && !a.at.Before(since) {
			first[a.family] = a.at.Add(a.took).Sub(since)
		}
	}
	latest := time.Duration(0)
	for fam, d := range first {
		switch {
		case revoked[fam]:
		case d < 0:
			return -1
		default:
			latest = max(latest, d)
		}
	}
	return latest
}

// failedBetween counts the answers other than 200 of requests that began
// in [from, to), and the longest of them.
func failedBetween(log []answer, from, to time.Time) (int, time.Duration) {
	n, longest := 0, time.Duration(0)
	for _, a := range log {
		if !a.at.Before(from) && a.at.Before(to) && (a.status != http.StatusOK || a.problem != "") {
			n++
			longest = max(longest, a.took)
		}
	}
	return n, longest
}

// Under load, the primary crashes and restarts, then crashes for good and
// its synchronous replica is promoted while the "Service" switches to it.
// The server reconnects by itself; meanwhile every answer is 200 or 503
// with Retry-After within the configured timeouts; afterwards every
// refresh token and access token it acknowledged is usable or was revoked
// by its client.
func TestFaultPostgresRestartAndFailover(t *testing.T) {
	r := newFaultRig(t)
	load := r.startLoad(t, 8, 2)
	time.Sleep(2 * time.Second)

	if err := r.primary.Crash(); err != nil {
		t.Fatal(err)
	}
	crash1 := time.Now()
	time.Sleep(3 * time.Second)
	restarted := time.Now()
	if err := r.primary.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("primary crashed and restarted (down %s, restart took %s)", restarted.Sub(crash1).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	waitFor(t, "the server to serve again after the primary restarted", func() bool { return recovery(load.snapshot(), time.Now().Add(-time.Second)) >= 0 })
	time.Sleep(3 * time.Second)

	if err := r.primary.Crash(); err != nil {
		t.Fatal(err)
	}
	crash2 := time.Now()
	time.Sleep(2 * time.Second)
	r.proxy.SetTarget(fmt.Sprintf("127.0.0.1:%d", r.replica.Port))
	promoted := time.Now()
	if err := r.replica.Promote(); err != nil {
		t.Fatal(err)
	}
	t.Logf("primary crashed, replica promoted %s later (promotion took %s)", promoted.Sub(crash2).Round(time.Millisecond), time.Since(promoted).Round(time.Millisecond))
	waitFor(t, "the server to serve again after the failover", func() bool { return recovery(load.snapshot(), time.Now().Add(-time.Second)) >= 0 })
	time.Sleep(3 * time.Second)
	log := load.end()

	f := judge(t, log)
	t.Logf("load: %s", f)
	n, longest := failedBetween(log, crash1, crash2)
	t.Logf("primary restart: refreshes served again %s after the crash (%s after the restart); %d requests failed, the longest in %s",
		recovery(log, crash1).Round(time.Millisecond), recovery(log, restarted).Round(time.Millisecond), n, longest.Round(time.Millisecond))
	n, longest = failedBetween(log, crash2, time.Now())
	t.Logf("failover: refreshes served again %s after the crash (%s after the promotion); %d requests failed, the longest in %s",
		recovery(log, crash2).Round(time.Millisecond), recovery(log, promoted).Round(time.Millisecond), n, longest.Round(time.Millisecond))
	load.check(t)
}

func (l *faultLoad) snapshot() []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log)
}

// waitFor polls until ok, failing after a minute.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for began := time.Now(); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Since(began) > time.Minute {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

// stallWindow is how long TestFaultPostgresStall and
// TestFaultPostgresPacketDrop hold the database's traffic:
// GATEHOUSE_FAULT_STALL (a Go duration, 30s for the figure), 10s
// by default.
func stallWindow(t *testing.T) time.Duration {
	d := 10 * time.Second
	if v := os.Getenv("GATEHOUSE_FAULT_STALL"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("GATEHOUSE_FAULT_STALL: %v", err)
		}
	}
	return d
}

// A network that stalls (bytes held, no error) costs each request the
// store's timeouts, never a hang: every answer is 200 or 503 with
// Retry-After within the time the timeouts allow (stallAnswerBound); the
// heap does not grow with the stall; once traffic flows the server serves
// by itself, every refresh family included, and nothing acknowledged is
// lost.
func TestFaultPostgresStall(t *testing.T) {
	r := newFaultRig(t)
	r.stall(t, "stall", r.proxy.Stall, r.proxy.Resume)
}

// The same with the kernel dropping the packets, as a partition does: the
// token server's connections stay open and silent, its TCP retransmits,
// a cancel request and a new connection's SYN go unanswered. The same
// bounds hold, and once packets flow the server serves by itself.
func TestFaultPostgresPacketDrop(t *testing.T) {
	r := newFaultRig(t)
	// The proxy's port: the only one the token server reaches PostgreSQL
	// by, so the proxy, the primary and its replica keep talking.
	drop, err := testpg.NewPacketDrop(r.proxy.Port())
	if err != nil {
		if missing := (*testpg.MissingPacketDropError)(nil); errors.As(err, &missing) {
			testenv.MissingDependency(t, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop.Restore(); err != nil {
			t.Errorf("removing the iptables rules: %v", err)
		}
	})
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("dropping every packet to and from port %d on lo", drop.Port())
	r.stall(t, "packet drop", func() { must(drop.Drop()) }, func() { must(drop.Restore()) })
}

// stallAnswerBound is the longest a request may take while the database
// is silent: it meets the silence in one statement (which fails it), and
// waits at most the acquire timeout for a connection, then the statement
// timeout and the second a canceled statement's connection is given to
// hear the cancel (postgres.cancelGrace); 3 s more is room for a busy
// machine.
func stallAnswerBound() time.Duration {
	return faultTimeouts.Acquire + faultTimeouts.Statement + time.Second + 3*time.Second
}

// stall runs the load, holds the database's traffic with begin for
// stallWindow, releases it with end, and judges and prints what the load
// saw.
func (r *faultRig) stall(t *testing.T, what string, begin, end func()) {
	t.Helper()
	load := r.startLoad(t, 8, 2)
	time.Sleep(2 * time.Second)
	heapBefore := liveHeap()

	listener := r.watchListener()
	begin()
	stalled := time.Now()
	window := stallWindow(t)
	time.Sleep(window)
	heapDuring := liveHeap()
	end()
	resumed := time.Now()
	// Every family, not only the first refresh: a transaction the fault
	// abandoned can hold a family's row after the pool serves again.
	waitFor(t, "every refresh family to be served again after the "+what, func() bool { return everyFamily(load.snapshot(), resumed) >= 0 })
	// It may notice the silence late (its heartbeat), even after the end.
	time.Sleep(faultTimeouts.Statement)
	waitFor(t, "the revocation listener to reconnect", r.store.RevocationsLive)
	down := listener()
	time.Sleep(2 * time.Second)
	log := load.end()
	heapAfter := liveHeap()

	f := judge(t, log)
	t.Logf("load: %s", f)
	// answerBound (the client's patience) is too loose here: a request
	// that waited the whole window and was served once packets flowed
	// would pass it in a 10 s run.
	if bound := stallAnswerBound(); f.slowest > bound {
		t.Errorf("the slowest answer took %s; the store's timeouts allow %s", f.slowest.Round(time.Millisecond), bound)
	}
	n, longest := failedBetween(log, stalled, resumed)
	t.Logf("%s for %s: %d requests failed, the longest in %s; refreshes served again %s after traffic resumed, every family %s after",
		what, window, n, longest.Round(time.Millisecond), recovery(log, resumed).Round(time.Millisecond), everyFamily(log, resumed).Round(time.Millisecond))
	if len(down) == 0 {
		t.Logf("the revocation listener stayed live (no heartbeat fell in the %s)", what)
	}
	for _, d := range down {
		t.Logf("the revocation listener was down from %s after the %s began to %s after it ended (revocations checked in the database meanwhile)",
			d.from.Sub(stalled).Round(100*time.Millisecond), what, d.to.Sub(resumed).Round(100*time.Millisecond))
	}
	t.Logf("live heap: %d KiB before, %d KiB at the end of the %s, %d KiB after", heapBefore>>10, heapDuring>>10, what, heapAfter>>10)
	// Generous: the property is that the stall does not pile up requests
	// or buffers, not a figure. The heap is this process's, so it holds
	// the ledger's record of every token acknowledged meanwhile too.
	if heapDuring > 4*heapBefore+64<<20 {
		t.Errorf("the live heap grew from %d KiB to %d KiB during the %s", heapBefore>>10, heapDuring>>10, what)
	}
	load.check(t)
}

// outage is a time the revocation listener was down.
type outage struct{ from, to time.Time }

// watchListener polls whether the store's revocation listener is live
// until the returned function is called, which returns its outages.
func (r *faultRig) watchListener() func() []outage {
	stop, done := make(chan struct{}), make(chan []outage)
	go func() {
		var down []outage
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			live := r.store.RevocationsLive()
			switch n := len(down); {
			case !live && (n == 0 || !down[n-1].to.IsZero()):
				down = append(down, outage{from: time.Now()})
			case live && n > 0 && down[n-1].to.IsZero():
				down[n-1].to = time.Now()
			}
			select {
			case <-tick.C:
			case <-stop:
				done <- down
				return
			}
		}
	}()
	return func() []outage { close(stop); return <-done }
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
