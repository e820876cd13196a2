package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"time"
)

// The lean client's event loop, as wrk's: one OS thread, non-blocking
// sockets and epoll. Each readiness costs one read and one write, with no
// goroutine parked and woken per request and no read that finds nothing:
// about half of what a goroutine per connection costs, which on a shared
// machine is CPU given back to the server under test.

// answerTimeout is how long after the end the loop waits for the answers
// under way.
const answerTimeout = 10 * time.Second

// evConn is one connection of the loop, driving one worker.
type evConn struct {
	w     *worker
	lf    *leanFlow
	fd    int
	buf   []byte // received; buf[:n] not yet parsed
	n     int
	began time.Time
	done  bool
	// scratch holds a chunked body.
	scratch []byte
}

// runEventLoop drives the lean workers on connections to addr until
// deadline, then finishes the requests under way. Errors of an answer are
// the worker's; the returned error is the loop's own (socket, epoll).
func runEventLoop(ctx context.Context, addr string, workers []*worker, deadline time.Time) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	defer func() { _ = syscall.Close(ep) }() // an epoll descriptor holds no data
	conns := map[int]*evConn{}
	defer func() {
		for fd := range conns {
			_ = syscall.Close(fd)
		}
	}()
	for _, w := range workers {
		c := &evConn{w: w, lf: w.leanFlow, buf: make([]byte, 16<<10)}
		if err := c.open(ep, addr); err != nil {
			return err
		}
		conns[c.fd] = c
		c.send()
	}
	events := make([]syscall.EpollEvent, len(workers))
	for open := len(conns); open > 0; {
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(deadline) > answerTimeout {
			return fmt.Errorf("%d connections without an answer %s after the end", open, answerTimeout)
		}
		n, err := syscall.EpollWait(ep, events, 100)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:max(n, 0)] {
			c := conns[int(ev.Fd)]
			if c == nil || c.done {
				continue
			}
			if c.readable(ep, addr, deadline, conns) {
				open--
			}
		}
	}
	return nil
}

// open connects a non-blocking socket to addr and adds it to the epoll set.
func (c *evConn) open(ep int, addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return fmt.Errorf("the event loop needs an IPv4 address:port, not %q", addr)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	// Connected while blocking (loopback answers at once), then made
	// non-blocking; no delay, as Go's net package sets.
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		_ = syscall.Close(fd)
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return err
	}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}); err != nil {
		_ = syscall.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	c.fd, c.n = fd, 0
	return nil
}

// send writes the worker's request. Requests are small: a socket buffer
// that cannot take one at once is an error, not something to wait for.
func (c *evConn) send() {
	if err := c.w.rebuildRequest(); err != nil {
		c.w.fail(err)
		return
	}
	c.began = time.Now()
	req := c.w.leanReq
	for len(req) > 0 {
		m, err := syscall.Write(c.fd, req)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || m <= 0 {
			c.w.fail(fmt.Errorf("writing a request: %v (%d of %d bytes)", err, len(c.w.leanReq)-len(req), len(c.w.leanReq)))
			return
		}
		req = req[m:]
	}
}

// readable reads what arrived and handles each whole answer in it; after
// each, the next request goes out until the deadline. It reports whether
// the connection is done.
func (c *evConn) readable(ep int, addr string, deadline time.Time, conns map[int]*evConn) bool {
	if c.n == len(c.buf) {
		c.buf = append(c.buf, make([]byte, len(c.buf))...)
	}
	m, err := syscall.Read(c.fd, c.buf[c.n:])
	switch {
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
		return false
	case err != nil || m == 0:
		return c.reconnect(ep, addr, deadline, conns, fmt.Errorf("connection closed: %v", err))
	}
	c.n += m
	for {
		used, r, err := parseResponse(c.buf[:c.n], false, &c.scratch)
		if err != nil {
			return c.reconnect(ep, addr, deadline, conns, err)
		}
		if used == 0 {
			return false
		}
		c.w.record(c.began, c.w.checkLean(c.lf, r.status, r.body))
		c.n = copy(c.buf, c.buf[used:c.n])
		switch {
		case r.close:
			return c.reconnect(ep, addr, deadline, conns, nil)
		case time.Now().After(deadline):
			c.done = true
			return true
		}
		c.send()
	}
}

// reconnect replaces a connection the server closed (after an answer that
// said so, or after an error, which is counted), unless time is up.
func (c *evConn) reconnect(ep int, addr string, deadline time.Time, conns map[int]*evConn, cause error) bool {
	if cause != nil {
		c.w.fail(cause)
	}
	delete(conns, c.fd)
	_ = syscall.Close(c.fd)
	if time.Now().After(deadline) {
		c.done = true
		return true
	}
	if err := c.open(ep, addr); err != nil {
		c.w.fail(err)
		c.done = true
		return true
	}
	conns[c.fd] = c
	c.send()
	return false
}
