package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/acked"
)

// The overload scenario's acknowledged-items checker (issue 24: nothing
// the server acknowledged is lost). Each phase records what the server
// answered with 2xx: the access token of every client_credentials 200
// (into a tokenLog, off the measured path), and for every login accepted
// during the flood the tokens of its code's redemption. After the
// overload every item is checked: an access token by introspection, a
// refresh token by a refresh grant.

// checkConns is how many connections check at once: well under the
// server's request slots (8 per CPU, at least 16), so that no check is
// shed.
const checkConns = 8

// ackedResult is the checker's verdict on one phase.
type ackedResult struct {
	Phase        string `json:"phase"`
	Acknowledged int    `json:"acknowledged"`
	Usable       int    `json:"usable"`
	Revoked      int    `json:"revoked"`
	Lost         int    `json:"lost"`
	// StillActive are revoked items the server still honours.
	StillActive int      `json:"revokedStillActive"`
	FirstLost   []string `json:"firstLost,omitempty"`
	// Checker is the checker's line, as the other fault tests print it.
	Checker string `json:"checker"`
	// CheckSeconds is how long checking every item took.
	CheckSeconds float64 `json:"checkSeconds"`
	// Logins accepted during the phase, redeemed for tokens, and not
	// redeemed (the accepted login's code flow failed: lost too).
	LoginsAccepted    int      `json:"loginsAccepted,omitempty"`
	LoginsRedeemed    int      `json:"loginsRedeemed,omitempty"`
	LoginsNotRedeemed int      `json:"loginsNotRedeemed,omitempty"`
	FirstNotRedeemed  []string `json:"firstNotRedeemed,omitempty"`
}

func (a *ackedResult) String() string {
	s := fmt.Sprintf("checker, %s: %s; checked in %.1f s", a.Phase, a.Checker, a.CheckSeconds)
	if a.LoginsAccepted > 0 {
		s += fmt.Sprintf("; logins accepted %d, redeemed %d, not redeemed %d", a.LoginsAccepted, a.LoginsRedeemed, a.LoginsNotRedeemed)
	}
	return s
}

// failures are what the checker found broken in the phase.
func (a *ackedResult) failures() []string {
	var f []string
	if a.Lost > 0 || a.StillActive > 0 {
		f = append(f, fmt.Sprintf("checker, %s: lost %d (first %v), revoked but still active %d", a.Phase, a.Lost, a.FirstLost, a.StillActive))
	}
	if a.LoginsNotRedeemed > 0 {
		f = append(f, fmt.Sprintf("checker, %s: %d accepted logins not redeemed for tokens: %v", a.Phase, a.LoginsNotRedeemed, a.FirstNotRedeemed))
	}
	return f
}

// ackTokens records a phase's client_credentials access tokens, each a
// group of its own.
func ackTokens(l *acked.Ledger, prefix string, tokens *tokenLog) {
	for i, tok := range tokens.tokens() {
		l.Ack(acked.AccessToken, prefix+strconv.Itoa(i), tok)
	}
}

// sampleToken asks for one client_credentials token before a phase: its
// size sizes the phase's tokenLog.
func (e *env) sampleToken(ccReq []byte) ([]byte, error) {
	lc := newLeanConn(e.addr)
	defer lc.close()
	status, body, err := lc.do(ccReq, false)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("client_credentials answered %d: %.200s", status, body)
	}
	tok, err := accessToken(body)
	return bytes.Clone(tok), err
}

// checkAcked checks every item of a phase's ledger: an access token by
// introspection, a refresh token by a refresh grant, both as the demo
// client (a confidential client, which may introspect any access token;
// the login flow's client, whose refresh tokens these are).
func (e *env) checkAcked(ctx context.Context, phase string, l *acked.Ledger) (*ackedResult, error) {
	conns := make(chan *leanConn, checkConns)
	for range checkConns {
		conns <- newLeanConn(e.addr)
	}
	defer func() {
		for range checkConns {
			(<-conns).close()
		}
	}()
	began := time.Now()
	rep, err := l.VerifyConcurrently(ctx, checkConns, func(ctx context.Context, kind acked.Kind, token string) (acked.State, error) {
		lc := <-conns
		defer func() { conns <- lc }()
		return e.checkOne(ctx, lc, kind, token)
	})
	if err != nil {
		return nil, fmt.Errorf("checker, %s: %w", phase, err)
	}
	a := &ackedResult{Phase: phase, Acknowledged: rep.Acknowledged, Usable: rep.Usable, Revoked: rep.Revoked,
		Lost: len(rep.Lost), StillActive: len(rep.StillActive), Checker: rep.String(), CheckSeconds: time.Since(began).Seconds()}
	a.FirstLost = rep.Lost[:min(3, len(rep.Lost))]
	return a, nil
}

// checkOne asks the server about one item; an answer shed with 503 is
// asked again a little later.
func (e *env) checkOne(ctx context.Context, lc *leanConn, kind acked.Kind, token string) (acked.State, error) {
	form, u := url.Values{"token": {token}}, e.endpoints().Introspection
	if kind == acked.RefreshToken {
		form, u = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}, e.endpoints().Token
	}
	req, err := e.leanPost(u, form)
	if err != nil {
		return 0, err
	}
	for attempt := 1; ; attempt++ {
		status, body, err := lc.do(req, false)
		switch {
		case err != nil:
			return 0, err
		case status == http.StatusServiceUnavailable && attempt < 20 && ctx.Err() == nil:
			time.Sleep(100 * time.Millisecond)
			continue
		case kind == acked.RefreshToken && status == http.StatusOK:
			return acked.Usable, nil
		case kind == acked.RefreshToken && status == http.StatusBadRequest:
			return acked.Inactive, nil
		case status == http.StatusOK && bytes.Contains(body, []byte(`"active":true`)):
			return acked.Usable, nil
		case status == http.StatusOK && bytes.Contains(body, []byte(`"active":false`)):
			return acked.Inactive, nil
		}
		return 0, fmt.Errorf("%s answered %d: %.200s", u, status, body)
	}
}

// loginRedemptions completes the logins the flood accepted, as their
// browsers and the app would: consent if asked, the code to the redirect
// URI, the code redeemed. They run beside the flood (the login's measured
// answer is the password's), and record the tokens in the ledger.
type loginRedemptions struct {
	e      *env
	ledger *acked.Ledger
	wg     sync.WaitGroup
	mu     sync.Mutex
	res    ackedResult
}

// start completes one accepted login, whose password answer redirected
// to location.
func (r *loginRedemptions) start(ctx context.Context, a *loginAttempt, location string) {
	r.mu.Lock()
	r.res.LoginsAccepted++
	n := r.res.LoginsAccepted
	r.mu.Unlock()
	r.wg.Go(func() {
		w := a.w
		w.http = &http.Client{Transport: shedRetry{w.http.Transport}, Jar: w.http.Jar, Timeout: 2 * answerTimeout,
			CheckRedirect: w.http.CheckRedirect}
		tok, err := w.followToToken(ctx, r.e, location, a.verifier)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.res.LoginsNotRedeemed++
			if len(r.res.FirstNotRedeemed) < 3 {
				r.res.FirstNotRedeemed = append(r.res.FirstNotRedeemed, err.Error())
			}
			return
		}
		r.res.LoginsRedeemed++
		group := fmt.Sprint("login-", n)
		r.ledger.Ack(acked.AccessToken, group, tok.AccessToken)
		if tok.RefreshToken != "" {
			r.ledger.Ack(acked.RefreshToken, group, tok.RefreshToken)
		}
	})
}

// wait waits for every completion and returns the logins' counts.
func (r *loginRedemptions) wait() ackedResult {
	r.wg.Wait()
	return r.res
}

// shedRetry sends a request again when the server shed it (429 or 503
// with Retry-After), after the wait it asks for, up to a second, as a
// client honouring Retry-After does: the completion of an accepted login
// is the client's business, not what the flood measures.
type shedRetry struct{ next http.RoundTripper }

func (s shedRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := s.next.RoundTrip(req)
		if err != nil || attempt == 30 || resp.Header.Get("Retry-After") == "" ||
			(resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests) {
			return resp, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		wait := time.Second
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
			wait = min(wait, time.Duration(secs)*time.Second)
		}
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(wait):
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}
