package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"syscall"
	"time"
)

// openLoopConns is how many connections the open-loop event loop opens at
// most: an arrival that finds every one waiting for an answer is not sent
// (Unsent), which happens only when the server holds that many requests.
const openLoopConns = 256

// openLoopLean offers rate requests a second for d, the same request
// each time (the lean client's), over openLoopConns keep-alive
// connections in one epoll loop: as cheap per request as the closed-loop
// measurement of the capacity, so that the generator takes no more of the
// shared CPUs at twice the rate than the server's capacity was measured
// with. Latency is from the send to the whole answer. The access token of
// each 200 goes into tokens, for the checker after the phase.
func openLoopLean(ctx context.Context, addr string, req []byte, rate float64, d time.Duration, tokens *tokenLog) (*openLoopResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	defer func() { _ = syscall.Close(ep) }()
	l := &openLoopState{ep: ep, addr: addr, req: req, res: &openLoopResult{Offered: rate}, conns: map[int]*evConn{}, tokens: tokens}
	defer l.closeAll()
	total := int(rate * d.Seconds())
	events := make([]syscall.EpollEvent, openLoopConns)
	cpu0 := threadCPU()
	start := time.Now()
	for sent := 0; (sent < total || l.busy > 0) && ctx.Err() == nil; {
		if time.Since(start) > d+answerTimeout {
			l.res.Hung += l.busy
			break
		}
		for due := min(total, int(time.Since(start).Seconds()*rate)+1); sent < due; sent++ {
			l.dispatch()
		}
		if sent == total && l.res.Seconds == 0 {
			l.res.Seconds = time.Since(start).Seconds()
		}
		n, err := syscall.EpollWait(ep, events, 1)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return nil, fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:max(n, 0)] {
			if c := l.conns[int(ev.Fd)]; c != nil {
				l.readable(c)
			}
		}
	}
	if l.res.Sent > 0 {
		l.res.GenCPUPerAnswer = (threadCPU() - cpu0).Seconds() / float64(l.res.Sent) * 1e6
	}
	l.res.Accepted = latencyOf(l.res.latencies)
	return l.res, nil
}

// rusageThread is Linux's RUSAGE_THREAD, which package syscall does not
// name: the CPU of the calling thread alone, here the loop's locked one.
const rusageThread = 1

// threadCPU is the CPU time (user and system) of the calling thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tokenLog keeps the access tokens of an open-loop phase's 200 answers
// for the acknowledged-items checker, which runs after the phase. Their
// bytes go into one buffer allocated and touched before the phase, so
// that recording one costs the loop a copy: no allocation, no garbage
// and no page fault (first writes to fresh pages took 0.8 µs a token).
type tokenLog struct {
	buf  []byte
	ends []int
}

// newTokenLog makes room for n tokens of about size bytes.
func newTokenLog(n, size int) *tokenLog {
	l := &tokenLog{buf: make([]byte, 0, n*size), ends: make([]int, 0, n)}
	all := l.buf[:cap(l.buf)]
	for i := 0; i < len(all); i += 4096 {
		all[i] = 0
	}
	return l
}

func (l *tokenLog) add(tok []byte) {
	l.buf = append(l.buf, tok...)
	l.ends = append(l.ends, len(l.buf))
}

// tokens are the recorded tokens, in the order they were answered: one
// copy of the buffer, shared by them all.
func (l *tokenLog) tokens() []string {
	all, out := string(l.buf), make([]string, len(l.ends))
	begin := 0
	for i, end := range l.ends {
		out[i], begin = all[begin:end], end
	}
	return out
}

var accessTokenField = []byte(`"access_token":"`)

// accessToken finds the access token in a token endpoint's JSON answer
// (a JWT: no character JSON escapes). The slice points into body.
func accessToken(body []byte) ([]byte, error) {
	i := bytes.Index(body, accessTokenField)
	if i < 0 {
		return nil, fmt.Errorf("answer without %s: %.200s", accessTokenField, body)
	}
	rest := body[i+len(accessTokenField):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return nil, fmt.Errorf("answer with an empty or unterminated access_token: %.200s", body)
	}
	return rest[:end], nil
}

// openLoopState is the loop's connections: idle ones, and how many wait
// for an answer.
type openLoopState struct {
	ep    int
	addr  string
	req   []byte
	res   *openLoopResult
	conns map[int]*evConn
	idle  []*evConn
	busy  int
	// tokens receives the access token of each 200.
	tokens *tokenLog
}

func (l *openLoopState) closeAll() {
	for fd := range l.conns {
		_ = syscall.Close(fd)
	}
}

// dispatch sends one arrival on an idle connection, or on a new one while
// there are fewer than openLoopConns. Connections are opened when needed
// and used at once: the server closes one that sends no request within
// its ReadHeaderTimeout.
func (l *openLoopState) dispatch() {
	if len(l.idle) == 0 && len(l.conns) < openLoopConns {
		c := &evConn{buf: make([]byte, 16<<10)}
		if err := c.open(l.ep, l.addr); err != nil {
			l.res.record(0, answer{err: err}, 0)
			return
		}
		l.conns[c.fd] = c
		l.idle = append(l.idle, c)
	}
	if len(l.idle) == 0 {
		l.res.Unsent++
		return
	}
	c := l.idle[len(l.idle)-1]
	l.idle = l.idle[:len(l.idle)-1]
	c.began = time.Now()
	for req := l.req; len(req) > 0; {
		m, err := syscall.Write(c.fd, req)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || m <= 0 {
			l.res.record(0, answer{err: fmt.Errorf("writing a request: %v", err)}, 0)
			l.replace(c)
			return
		}
		req = req[m:]
	}
	l.busy++
}

// readable reads an answer; the connection is idle again once it is whole.
func (l *openLoopState) readable(c *evConn) {
	if c.n == len(c.buf) {
		c.buf = append(c.buf, make([]byte, len(c.buf))...)
	}
	m, err := syscall.Read(c.fd, c.buf[c.n:])
	switch {
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
		return
	case err != nil || m == 0:
		l.busy--
		l.res.record(0, answer{err: fmt.Errorf("connection closed: %v", err)}, 0)
		l.replace(c)
		return
	}
	c.n += m
	used, r, err := parseResponse(c.buf[:c.n], false, &c.scratch)
	if used == 0 && err == nil {
		return
	}
	l.busy--
	if err == nil && r.status == http.StatusOK {
		var tok []byte
		if tok, err = accessToken(r.body); err == nil {
			l.tokens.add(tok)
		}
	}
	l.res.record(http.StatusOK, answer{status: r.status, retryAfter: r.retryAfter, err: err}, time.Since(c.began).Seconds())
	c.n = copy(c.buf, c.buf[used:c.n])
	if err != nil || r.close {
		l.replace(c)
		return
	}
	l.idle = append(l.idle, c)
}

// replace closes a connection; dispatch opens another when needed.
func (l *openLoopState) replace(c *evConn) {
	delete(l.conns, c.fd)
	_ = syscall.Close(c.fd)
}
