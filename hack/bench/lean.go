package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// The lean load generator drives a server as wrk or h2load do: persistent
// HTTP/1.1 connections, each sending a request built once, and answers
// read with as little work as HTTP/1.1 allows (status line, Content-Length
// or chunked framing, Connection: close), yet every body read to its end
// and every status checked. net/http's client costs about as much CPU per
// request as the server it measures, which on a shared two-core machine
// halves what the server can be shown to do. The harness runs it in an
// epoll loop (epoll.go); leanConn is the same parser over one blocking
// connection, for the tests and one-off requests.

// maxHeaderBytes bounds a response's header block.
const maxHeaderBytes = 64 << 10

// response is one parsed answer. body points into the buffer it was
// parsed from, or into scratch for a chunked body, until the next parse.
type response struct {
	status int
	body   []byte
	close  bool
	// retryAfter: the answer has a Retry-After header (a shed request).
	retryAfter bool
}

// parseResponse parses the one whole response at the start of b. It
// returns the bytes it took, 0 when b does not hold all of it yet. A body
// is framed by Content-Length or chunked encoding; one delimited by the
// end of the connection is refused (a keep-alive benchmark cannot use
// it). After HEAD, 1xx, 204 and 304 there is no body (RFC 9112 §6.3).
func parseResponse(b []byte, head bool, scratch *[]byte) (int, response, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxHeaderBytes {
			return 0, response{}, errors.New("response header too large")
		}
		return 0, response{}, nil
	}
	line, rest, _ := bytes.Cut(b[:end], []byte("\r\n"))
	status, err := parseStatusLine(line)
	if err != nil {
		return 0, response{}, err
	}
	fr, err := parseHeader(rest)
	if err != nil {
		return 0, response{}, err
	}
	r, start := response{status: status, close: fr.close, retryAfter: fr.retryAfter}, end+4
	switch {
	case head || status == 204 || status == 304 || status < 200:
		return start, r, nil
	case fr.chunked:
		n, body, err := dechunk(b[start:], (*scratch)[:0])
		*scratch, r.body = body, body
		if n == 0 || err != nil {
			return 0, response{}, err
		}
		return start + n, r, nil
	case fr.length >= 0:
		if len(b)-start < fr.length {
			return 0, response{}, nil
		}
		r.body = b[start : start+fr.length]
		return start + fr.length, r, nil
	}
	return 0, response{}, errors.New("response without Content-Length or chunked encoding")
}

// parseStatusLine reads "HTTP/1.1 200 OK".
func parseStatusLine(line []byte) (int, error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	s := line[9:12]
	if s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	return int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0'), nil
}

type framing struct {
	length     int // -1 when absent
	chunked    bool
	close      bool
	retryAfter bool
}

// parseHeader reads the header lines (without the status line and the
// empty line) and keeps only what frames the body and the connection, and
// whether the server asked to be retried later.
func parseHeader(b []byte) (framing, error) {
	fr := framing{length: -1}
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return fr, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			n, ok := parseDecimal(value)
			if !ok {
				return fr, fmt.Errorf("bad Content-Length %q", value)
			}
			fr.length = n
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			fr.chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("connection")):
			fr.close = bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("retry-after")):
			fr.retryAfter = len(value) > 0
		}
	}
	return fr, nil
}

// parseDecimal reads a Content-Length without allocating.
func parseDecimal(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// dechunk decodes a chunked body (RFC 9112 §7.1) and its trailer from the
// start of b, appending the data to body. n is 0 while b holds only part
// of it.
func dechunk(b, body []byte) (int, []byte, error) {
	pos := 0
	for {
		i := bytes.Index(b[pos:], []byte("\r\n"))
		if i < 0 {
			return 0, body, nil
		}
		size, _, _ := bytes.Cut(b[pos:pos+i], []byte(";"))
		n, ok := parseHex(bytes.TrimSpace(size))
		if !ok {
			return 0, body, fmt.Errorf("bad chunk size %q", b[pos:pos+i])
		}
		pos += i + 2
		if n == 0 {
			break
		}
		if len(b)-pos < n+2 {
			return 0, body, nil
		}
		if !bytes.Equal(b[pos+n:pos+n+2], []byte("\r\n")) {
			return 0, body, errors.New("chunk not followed by CRLF")
		}
		body = append(body, b[pos:pos+n]...)
		pos += n + 2
	}
	for { // trailer fields, then the empty line
		i := bytes.Index(b[pos:], []byte("\r\n"))
		if i < 0 {
			return 0, body, nil
		}
		pos += i + 2
		if i == 0 {
			return pos, body, nil
		}
	}
}

func parseHex(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 7 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n*16 + int(c-'0')
		case c >= 'a' && c <= 'f':
			n = n*16 + int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n*16 + int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// leanConn is parseResponse over one blocking persistent connection.
type leanConn struct {
	addr    string
	c       net.Conn
	buf     []byte // received; buf[:n] not yet parsed
	n       int
	scratch []byte
}

func newLeanConn(addr string) *leanConn { return &leanConn{addr: addr, buf: make([]byte, 16<<10)} }

func (lc *leanConn) close() {
	if lc.c != nil {
		_ = lc.c.Close()
		lc.c = nil
	}
}

// do sends req (a whole HTTP/1.1 request) and reads the answer. The body
// is valid until the next call. A transport error closes the connection,
// and the next call dials again.
func (lc *leanConn) do(req []byte, head bool) (int, []byte, error) {
	if lc.c == nil {
		c, err := net.DialTimeout("tcp", lc.addr, 10*time.Second)
		if err != nil {
			return 0, nil, err
		}
		lc.c, lc.n = c, 0
	}
	r, err := lc.exchange(req, head)
	if err != nil || r.close {
		lc.close()
	}
	return r.status, r.body, err
}

func (lc *leanConn) exchange(req []byte, head bool) (response, error) {
	if _, err := lc.c.Write(req); err != nil {
		return response{}, err
	}
	for {
		n, r, err := parseResponse(lc.buf[:lc.n], head, &lc.scratch)
		if err != nil {
			return response{}, err
		}
		if n > 0 {
			// The body may point into buf: copy it out before the rest
			// moves down.
			lc.scratch = append(lc.scratch[:0], r.body...)
			r.body = lc.scratch
			lc.n = copy(lc.buf, lc.buf[n:lc.n])
			return r, nil
		}
		if lc.n == len(lc.buf) {
			lc.buf = append(lc.buf, make([]byte, len(lc.buf))...)
		}
		m, err := lc.c.Read(lc.buf[lc.n:])
		lc.n += m
		if err != nil {
			return response{}, err
		}
	}
}

// buildRequest writes an HTTP/1.1 request once, for the lean client to
// send again and again. u is an absolute http URL.
func buildRequest(method, u string, header map[string]string, body string) ([]byte, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	if p.Scheme != "http" {
		return nil, fmt.Errorf("the lean client speaks plain http only, not %s", u)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehouse-bench\r\n", method, p.RequestURI(), p.Host)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if body != "" || method == "POST" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.Bytes(), nil
}
