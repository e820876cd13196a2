package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/acked"
)

// overloadResult is the overload scenario's figures and verdict.
type overloadResult struct {
	Phase string `json:"phase"`
	// Capacity is closed loop (-conns connections for client_credentials,
	// loginConns browsers for logins); unloaded is one request at a time.
	CCCapacity     float64         `json:"clientCredentialsCapacityPerSecond"`
	CCUnloaded     latency         `json:"clientCredentialsUnloaded"`
	LoginCapacity  float64         `json:"loginCapacityPerSecond"`
	LoginUnloaded  latency         `json:"loginUnloaded"`
	CC             *openLoopResult `json:"clientCredentials2x"`
	Logins         *openLoopResult `json:"logins2x"`
	CCDuringLogins *openLoopResult `json:"clientCredentialsDuringLogins"`
	Probes         *probeResult    `json:"probes"`
	RSSBeforeMiB   float64         `json:"rssBeforeMiB"`
	// PeakRSSMiB is the server's VmHWM at the end; LimitMiB the memory
	// limit the operator gives it by default.
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	LimitMiB   float64 `json:"limitMiB"`
	// CCChecked and LoginsChecked are the acknowledged-items checker's
	// verdicts on the two phases, checked after both.
	CCChecked     *ackedResult `json:"clientCredentials2xChecked"`
	LoginsChecked *ackedResult `json:"loginFloodChecked"`
	Notes         []string     `json:"notes,omitempty"`
	Failures      []string     `json:"failures,omitempty"`
}

// loginConns is how many browsers log in at once to measure the login
// capacity: twice the server's default login slots (half the CPUs), so
// that a slot is never idle, and few enough that none waits long.
var loginConns = max(2, runtime.NumCPU())

// runOverload measures, overloads and judges; phase is each measured
// period.
func (e *env) runOverload(ctx context.Context, phase time.Duration) (*overloadResult, error) {
	res := &overloadResult{Phase: phase.String(), LimitMiB: defaultMemoryLimitMiB()}
	if err := e.measureCapacity(ctx, res, phase); err != nil {
		return nil, err
	}
	var err error
	if res.RSSBeforeMiB, err = memoryMiB(e.serverPID(), "VmRSS"); err != nil {
		return nil, err
	}
	probeCtx, stopProbes := context.WithCancel(ctx)
	var probes sync.WaitGroup
	probes.Go(func() { res.Probes = e.probe(probeCtx) })
	defer func() { stopProbes(); probes.Wait() }()

	ccReq, err := e.leanPost(e.endpoints().Token, ccForm)
	if err != nil {
		return nil, err
	}
	sample, err := e.sampleToken(ccReq)
	if err != nil {
		return nil, fmt.Errorf("a token before the overload: %w", err)
	}
	// Room for every arrival's token, with slack for longer ones.
	tokenSize := len(sample) + 64
	ccTokens := newTokenLog(int(2*res.CCCapacity*phase.Seconds())+1, tokenSize)
	progress("overload: client_credentials at %.0f/s (2x) for %s", 2*res.CCCapacity, phase)
	if res.CC, err = openLoopLean(ctx, e.addr, ccReq, 2*res.CCCapacity, phase, ccTokens); err != nil {
		return nil, err
	}
	ccLedger := acked.New()
	ackTokens(ccLedger, "client-credentials-", ccTokens)
	loginLedger := acked.New()
	logins, err := e.loginFlood(ctx, res, ccReq, phase, tokenSize, loginLedger)
	if err != nil {
		return nil, err
	}
	stopProbes()
	probes.Wait()
	if res.PeakRSSMiB, err = memoryMiB(e.serverPID(), "VmHWM"); err != nil {
		return nil, err
	}
	// Every acknowledged item is checked after the whole overload: those
	// of the first phase must have outlived the second too.
	for _, c := range []struct {
		name   string
		ledger *acked.Ledger
		out    **ackedResult
	}{{"client_credentials at 2x", ccLedger, &res.CCChecked}, {"login flood", loginLedger, &res.LoginsChecked}} {
		progress("overload: checking what the server acknowledged during %s", c.name)
		if *c.out, err = e.checkAcked(ctx, c.name, c.ledger); err != nil {
			return nil, err
		}
		progress("overload: %s", *c.out)
	}
	res.LoginsChecked.LoginsAccepted, res.LoginsChecked.LoginsRedeemed = logins.LoginsAccepted, logins.LoginsRedeemed
	res.LoginsChecked.LoginsNotRedeemed, res.LoginsChecked.FirstNotRedeemed = logins.LoginsNotRedeemed, logins.FirstNotRedeemed
	res.judge()
	return res, ctx.Err()
}

// measureCapacity measures client_credentials and logins closed loop,
// then one at a time.
func (e *env) measureCapacity(ctx context.Context, res *overloadResult, phase time.Duration) error {
	progress("overload: client_credentials capacity, %d connections, %s", e.o.conns, phase)
	cc, err := e.closedLoop(ctx, "client_credentials", e.o.conns, phase)
	if err != nil {
		return err
	}
	if cc.Errors > 0 {
		return fmt.Errorf("client_credentials capacity: %d errors: %v", cc.Errors, cc.FirstErrors)
	}
	res.CCCapacity = cc.PerSecond
	unloaded, err := e.closedLoop(ctx, "client_credentials", 1, phase)
	if err != nil {
		return err
	}
	if unloaded.Errors > 0 {
		return fmt.Errorf("client_credentials unloaded: %d errors: %v", unloaded.Errors, unloaded.FirstErrors)
	}
	res.CCUnloaded = latency{P50: unloaded.P50, P99: unloaded.P99}
	progress("overload: client_credentials %.0f/s, unloaded p50 %.2f ms, p99 %.2f ms; login capacity, %d browsers",
		res.CCCapacity, res.CCUnloaded.P50, res.CCUnloaded.P99, loginConns)
	if res.LoginCapacity, _, err = e.loginsClosedLoop(ctx, loginConns, phase); err != nil {
		return fmt.Errorf("login capacity: %w", err)
	}
	if _, res.LoginUnloaded, err = e.loginsClosedLoop(ctx, 1, phase); err != nil {
		return fmt.Errorf("login unloaded: %w", err)
	}
	progress("overload: logins %.1f/s, unloaded p50 %.0f ms, p99 %.0f ms", res.LoginCapacity, res.LoginUnloaded.P50, res.LoginUnloaded.P99)
	return nil
}

// closedLoop measures a flow with conns connections for d (after the
// usual warm-up).
func (e *env) closedLoop(ctx context.Context, flow string, conns int, d time.Duration) (flowResult, error) {
	saved := e.o
	defer func() { e.o = saved }()
	o := *saved
	o.conns, o.duration = conns, d
	e.o = &o
	return e.measure(ctx, flow)
}

// loginFlood offers twice the login capacity, each arrival a new browser
// posting its password, with client_credentials beside them at a quarter
// of its capacity. The browsers reach the login page before the flood.
// Each accepted login is completed to its tokens beside the flood; those
// tokens and the client_credentials ones go into ledger. It returns the
// logins' completions.
func (e *env) loginFlood(ctx context.Context, res *overloadResult, ccReq []byte, phase time.Duration, tokenSize int, ledger *acked.Ledger) (ackedResult, error) {
	rate := 2 * res.LoginCapacity
	n := int(rate*phase.Seconds()) + 1
	progress("overload: %d browsers to the login page", n)
	tr := newLoginTransport()
	defer tr.CloseIdleConnections()
	attempts := make(chan *loginAttempt, n)
	for range n {
		a, err := e.newLoginAttempt(ctx, tr)
		if err != nil {
			return ackedResult{}, fmt.Errorf("before the login flood: %w", err)
		}
		attempts <- a
	}
	progress("overload: logins at %.1f/s (2x) for %s, client_credentials beside them at %.0f/s", rate, phase, res.CCCapacity/4)
	ccTokens := newTokenLog(int(res.CCCapacity/4*phase.Seconds())+1, tokenSize)
	var wg sync.WaitGroup
	var ccErr error
	wg.Go(func() {
		res.CCDuringLogins, ccErr = openLoopLean(ctx, e.addr, ccReq, res.CCCapacity/4, phase, ccTokens)
	})
	redeem := &loginRedemptions{e: e, ledger: ledger}
	res.Logins = openLoop(ctx, rate, phase, http.StatusSeeOther, func(ctx context.Context) answer {
		a := <-attempts
		ans := a.post(ctx)
		if ans.err == nil && ans.status == http.StatusSeeOther {
			redeem.start(ctx, a, ans.location)
		}
		return ans
	})
	wg.Wait()
	logins := redeem.wait()
	ackTokens(ledger, "client-credentials-", ccTokens)
	return logins, ccErr
}

// judge lists what broke the guarantees, and notes what was measured
// against issue 24's goals without failing the run (Notes).
func (r *overloadResult) judge() {
	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	for _, p := range []struct {
		name string
		res  *openLoopResult
	}{{"client_credentials at 2x", r.CC}, {"logins at 2x", r.Logins}, {"client_credentials during the login flood", r.CCDuringLogins}} {
		if p.res.Other+p.res.ShedBare+p.res.Hung > 0 {
			fail("%s: %d other answers %v, %d shed without Retry-After, %d hung (no answer within %s)",
				p.name, p.res.Other, p.res.FirstOther, p.res.ShedBare, p.res.Hung, answerTimeout)
		}
	}
	// client_credentials: the server keeps issuing (one that fell over
	// would issue next to none; others' load on this shared machine can
	// take half of its CPU between two phases).
	if got := float64(r.CC.OK) / r.CC.Seconds; got < r.CCCapacity/5 {
		fail("client_credentials at 2x: %.0f issued a second, under a fifth of the capacity %.0f/s", got, r.CCCapacity)
	}
	r.note(r.CC, r.CCUnloaded, "client_credentials at 2x")
	// Logins: the excess is shed, and a login admitted waits for at most a
	// couple of others.
	if r.Logins.Shed == 0 {
		fail("logins at 2x: nothing shed (%d of %d accepted)", r.Logins.OK, r.Logins.Sent)
	}
	if bound := overloadMaxP99Ratio * r.LoginUnloaded.P99; r.Logins.Accepted.P99 > bound {
		fail("logins at 2x: p99 of accepted logins %.0f ms, over %dx the unloaded %.0f ms", r.Logins.Accepted.P99, overloadMaxP99Ratio, r.LoginUnloaded.P99)
	}
	// A login flood does not starve token issuance: the median token
	// request takes under a quarter of one login's bcrypt (queued behind
	// logins, it takes several), and none is refused otherwise than shed.
	// How many were issued is shown, not judged: on this shared machine a
	// stall of others' making leaves every connection waiting for a while.
	c := r.CCDuringLogins
	if c.Accepted.P50 > r.LoginUnloaded.P50/4 {
		fail("client_credentials during the login flood: p50 %.2f ms, over a quarter of an unloaded login (p50 %.0f ms)", c.Accepted.P50, r.LoginUnloaded.P50)
	}
	r.note(c, r.CCUnloaded, "client_credentials during the login flood")
	if r.Probes.Failed > 0 {
		fail("probes: %d of %d failed: %v", r.Probes.Failed, r.Probes.Sent, r.Probes.FirstFailure)
	}
	if r.PeakRSSMiB > r.LimitMiB {
		fail("peak RSS %.0f MiB over the default memory limit %.0f MiB", r.PeakRSSMiB, r.LimitMiB)
	}
	// Nothing acknowledged is lost.
	for _, c := range []struct {
		name string
		res  *ackedResult
	}{{"client_credentials at 2x", r.CCChecked}, {"login flood", r.LoginsChecked}} {
		if c.res == nil {
			fail("checker, %s: did not run", c.name)
			continue
		}
		r.Failures = append(r.Failures, c.res.failures()...)
	}
	// And the checker saw everything: a token per 200, a login's tokens
	// for each accepted login.
	if c := r.CCChecked; c != nil && c.Acknowledged != r.CC.OK {
		fail("checker, client_credentials at 2x: %d tokens recorded of %d issued", c.Acknowledged, r.CC.OK)
	}
	if c := r.LoginsChecked; c != nil && (c.LoginsAccepted != r.Logins.OK || c.Acknowledged < r.CCDuringLogins.OK+c.LoginsRedeemed) {
		fail("checker, login flood: %d tokens recorded of %d client_credentials and %d logins redeemed; %d logins accepted, %d followed to their code",
			c.Acknowledged, r.CCDuringLogins.OK, c.LoginsRedeemed, r.Logins.OK, c.LoginsAccepted)
	}
}

// note records whether a phase's accepted p99 stayed within
// overloadMaxP99Ratio of the unloaded one, which for client_credentials
// this machine does not reach (docs/operations.md, "Failure modes").
func (r *overloadResult) note(p *openLoopResult, unloaded latency, name string) {
	ratio := p.Accepted.P99 / unloaded.P99
	verdict := "within"
	if ratio > overloadMaxP99Ratio {
		verdict = "NOT within"
	}
	r.Notes = append(r.Notes, fmt.Sprintf("%s: accepted p99 %.2f ms is %.0fx the unloaded %.2f ms, %s %dx", name, p.Accepted.P99, ratio, unloaded.P99, verdict, overloadMaxP99Ratio))
}

func (r *overloadResult) print(w io.Writer) {
	fmt.Fprintf(w, "overload, %s per phase\n", r.Phase)
	fmt.Fprintf(w, "capacity (closed loop): client_credentials %.0f/s, logins %.1f/s\n", r.CCCapacity, r.LoginCapacity)
	fmt.Fprintf(w, "unloaded p50/p99: client_credentials %.2f/%.2f ms, logins %.0f/%.0f ms\n",
		r.CCUnloaded.P50, r.CCUnloaded.P99, r.LoginUnloaded.P50, r.LoginUnloaded.P99)
	for _, p := range []struct {
		name string
		res  *openLoopResult
	}{{"client_credentials 2x", r.CC}, {"logins 2x", r.Logins}, {"client_credentials during logins", r.CCDuringLogins}} {
		q := p.res
		fmt.Fprintf(w, "%s: offered %.1f/s, sent %d: accepted %d (%.1f/s), shed %d with Retry-After, %d without, other %d, hung %d, not sent (every connection waiting) %d; accepted p50/p99 %.2f/%.2f ms",
			p.name, q.Offered, q.Sent, q.OK, float64(q.OK)/q.Seconds, q.Shed, q.ShedBare, q.Other, q.Hung, q.Unsent, q.Accepted.P50, q.Accepted.P99)
		if q.GenCPUPerAnswer > 0 {
			fmt.Fprintf(w, "; generator CPU %.1f µs per answer", q.GenCPUPerAnswer)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "probes (/healthz, /readyz, %s timeout): %d sent, %d failed, slowest %.0f ms\n", probeTimeout, r.Probes.Sent, r.Probes.Failed, r.Probes.SlowestMs)
	fmt.Fprintf(w, "server RSS: %.0f MiB before the overload, peak (VmHWM) %.0f MiB; default limit %.0f MiB\n", r.RSSBeforeMiB, r.PeakRSSMiB, r.LimitMiB)
	for _, c := range []*ackedResult{r.CCChecked, r.LoginsChecked} {
		if c != nil {
			fmt.Fprintln(w, c)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, n)
	}
	if len(r.Failures) == 0 {
		fmt.Fprintln(w, "overload: PASS")
		return
	}
	fmt.Fprintf(w, "overload: FAIL\n  %s\n", strings.Join(r.Failures, "\n  "))
}
