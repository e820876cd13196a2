package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/servercontract"
)

// The overload scenario (-overload; TestFaultOverload in the fault tier):
// issue 24's guarantee 5. It measures what the token server under test
// serves on this machine, closed loop (client_credentials with the lean
// client, and password logins, which are bcrypt), and its unloaded
// latency, one request at a time; then it offers twice that capacity open
// loop, at a fixed arrival rate whatever the answers: first at
// client_credentials (openLoopLean, as cheap per request as the capacity
// measurement), then at the password login with client_credentials
// beside it at a quarter of its capacity. Throughout, /healthz and
// /readyz are asked as a kubelet asks them. judge says what must hold.

// overloadMaxP99Ratio of the unloaded p99, keep its probes answering, keep
// issuing tokens during the login flood, and stay within the memory limit
// the operator gives it by default.

// overloadMaxP99Ratio bounds the p99 of accepted requests under overload,
// as a multiple of the unloaded p99 (issue 24).
const overloadMaxP99Ratio = 5

// maxOutstanding bounds the logins the generator keeps in flight; an
// arrival beyond it is not sent.
const maxOutstanding = 1024

// probeTimeout is the operator's probes' timeoutSeconds.
const probeTimeout = 2 * time.Second

type latency struct {
	P50 float64 `json:"p50ms"`
	P99 float64 `json:"p99ms"`
}

func latencyOf(seconds []float64) latency {
	slices.Sort(seconds)
	return latency{P50: quantile(seconds, .5), P99: quantile(seconds, .99)}
}

// openLoopResult is one open-loop phase: what was offered and how each
// arrival was answered.
type openLoopResult struct {
	Offered float64 `json:"offeredPerSecond"`
	Seconds float64 `json:"seconds"`
	Sent    int     `json:"sent"`
	OK      int     `json:"ok"`
	// Shed were answered 429 or 503 with Retry-After; ShedBare the same
	// without it.
	Shed     int `json:"shed"`
	ShedBare int `json:"shedWithoutRetryAfter"`
	Other    int `json:"other"`
	Hung     int `json:"hung"`
	// Unsent arrivals found maxOutstanding requests unanswered.
	Unsent     int      `json:"unsent"`
	Accepted   latency  `json:"accepted"`
	FirstOther []string `json:"firstOther,omitempty"`
	// GenCPUPerAnswer is the epoll loop's own CPU per arrival sent, in
	// microseconds, its idle waits included (openLoopLean only).
	GenCPUPerAnswer float64 `json:"generatorCPUMicrosecondsPerAnswer,omitempty"`
	latencies       []float64
	mu              sync.Mutex
}

// answer is how the server answered one arrival.
type answer struct {
	status     int
	retryAfter bool
	err        error
	// location is a redirect's Location.
	location string
}

func (r *openLoopResult) record(want int, a answer, seconds float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Sent++
	switch {
	case isTimeout(a.err):
		r.Hung++
	case a.err == nil && a.status == want:
		r.OK++
		r.latencies = append(r.latencies, seconds)
	case a.err == nil && (a.status == http.StatusServiceUnavailable || a.status == http.StatusTooManyRequests):
		if a.retryAfter {
			r.Shed++
		} else {
			r.ShedBare++
		}
	default:
		r.Other++
		if len(r.FirstOther) < 3 {
			r.FirstOther = append(r.FirstOther, fmt.Sprintf("status %d, %v", a.status, a.err))
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &t) && t.Timeout())
}

// openLoop offers rate arrivals a second for d, each sent when due whether
// or not the earlier ones were answered (in batches, every millisecond).
func openLoop(ctx context.Context, rate float64, d time.Duration, want int, send func(context.Context) answer) *openLoopResult {
	res := &openLoopResult{Offered: rate}
	total := int(rate * d.Seconds())
	inFlight := make(chan struct{}, maxOutstanding)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; time.Sleep(time.Millisecond) {
		for due := min(total, int(time.Since(start).Seconds()*rate)+1); i < due; i++ {
			select {
			case inFlight <- struct{}{}:
			default:
				res.mu.Lock()
				res.Unsent++
				res.mu.Unlock()
				continue
			}
			wg.Go(func() {
				defer func() { <-inFlight }()
				began := time.Now()
				a := send(ctx)
				res.record(want, a, time.Since(began).Seconds())
			})
		}
	}
	res.Seconds = time.Since(start).Seconds()
	wg.Wait()
	res.Accepted = latencyOf(res.latencies)
	return res
}

// loginAttempt is a browser at the login page, ready to post the demo
// user's password; verifier is its code flow's PKCE verifier.
type loginAttempt struct {
	w        *worker
	action   string
	form     url.Values
	verifier string
}

// newLoginAttempt starts a code flow in a new browser (its own cookies,
// the shared transport) up to the login page.
func (e *env) newLoginAttempt(ctx context.Context, tr http.RoundTripper) (*loginAttempt, error) {
	w := &worker{http: &http.Client{Transport: tr, Timeout: answerTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	w.newBrowser()
	resp, verifier, err := w.authorize(ctx, e)
	if err != nil {
		return nil, err
	}
	u := e.local(resp.Header.Get("Location"))
	if !strings.Contains(u, "/login") {
		return nil, fmt.Errorf("/authorize sent a new browser to %s, not the login page", u)
	}
	action, f, err := w.pageForm(ctx, u)
	if err != nil {
		return nil, err
	}
	f.Set("username", demoUsername)
	f.Set("password", demoPassword)
	return &loginAttempt{w: w, action: action, form: f, verifier: verifier}, nil
}

// post sends the password: 303 on to consent when the login is accepted.
func (a *loginAttempt) post(ctx context.Context) answer {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.action, strings.NewReader(a.form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.w.http.Do(req)
	if err != nil {
		return answer{err: err}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After") != "", err: err,
		location: resp.Header.Get("Location")}
}

func newLoginTransport() *http.Transport {
	return &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
}

// loginsClosedLoop runs conns browsers, each logging in one after the
// other for d (the login page fetched before the timer starts): logins
// accepted per second and their latency. A login shed (a busy machine
// makes one wait past the server's bound) is not counted; any other
// answer is an error.
func (e *env) loginsClosedLoop(ctx context.Context, conns int, d time.Duration) (float64, latency, error) {
	tr := newLoginTransport()
	defer tr.CloseIdleConnections()
	var mu sync.Mutex
	var lat []float64
	var firstErr error
	deadline := time.Now().Add(d)
	began := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				a, err := e.newLoginAttempt(ctx, tr)
				t := time.Now()
				var ans answer
				if err == nil {
					ans = a.post(ctx)
					err = ans.err
				}
				mu.Lock()
				switch {
				case err == nil && ans.retryAfter && (ans.status == http.StatusServiceUnavailable || ans.status == http.StatusTooManyRequests):
					// Shed: not counted.
				case err == nil && ans.status != http.StatusSeeOther:
					err = fmt.Errorf("login answered %d, want 303", ans.status)
				case err == nil:
					lat = append(lat, time.Since(t).Seconds())
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, latency{}, firstErr
	}
	return float64(len(lat)) / time.Since(began).Seconds(), latencyOf(lat), nil
}

// probeResult counts the liveness and readiness probes sent during the
// overload and those that failed (not 200 within probeTimeout).
type probeResult struct {
	Sent         int      `json:"sent"`
	Failed       int      `json:"failed"`
	SlowestMs    float64  `json:"slowestMs"`
	FirstFailure []string `json:"firstFailures,omitempty"`
}

// probe asks /healthz and /readyz every 200 ms until ctx ends.
func (e *env) probe(ctx context.Context) *probeResult {
	res := &probeResult{}
	c := &http.Client{Timeout: probeTimeout}
	base := strings.TrimSuffix(e.metricsURL, servercontract.MetricsPath)
	for t := time.NewTicker(200 * time.Millisecond); ; {
		select {
		case <-ctx.Done():
			t.Stop()
			return res
		case <-t.C:
		}
		for _, path := range []string{servercontract.HealthzPath, servercontract.ReadyzPath} {
			began := time.Now()
			resp, err := c.Get(base + path)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s answered %d", path, resp.StatusCode)
				}
			}
			res.Sent++
			res.SlowestMs = max(res.SlowestMs, float64(time.Since(began).Milliseconds()))
			if err != nil {
				res.Failed++
				if len(res.FirstFailure) < 3 {
					res.FirstFailure = append(res.FirstFailure, err.Error())
				}
			}
		}
	}
}

// memoryMiB reads a /proc/PID/status field in MiB: VmRSS, or VmHWM (the
// peak RSS since the process started).
func memoryMiB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// defaultMemoryLimitMiB is the memory limit the operator gives a token
// server by default.
func defaultMemoryLimitMiB() float64 {
	lim := controllers.DefaultServerResources().Limits[corev1.ResourceMemory]
	return float64(lim.Value()) / (1 << 20)
}
