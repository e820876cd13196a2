package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// leanConn is the lean load generator's connection, as wrk or h2load
// drive a server: one persistent HTTP/1.1 connection that writes a request
// built once and reads the answer with as little work as HTTP/1.1 allows
// (status line, Content-Length or chunked framing, Connection: close). It
// still reads every body to its end and hands back the status, so that
// every answer is checked. net/http's client costs about as much CPU per
// request as the server it measures, which on a shared two-core machine
// halves what the server can be shown to do.
type leanConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	body []byte // reused between answers
}

func newLeanConn(addr string) *leanConn { return &leanConn{addr: addr} }

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
		lc.c, lc.br = c, bufio.NewReaderSize(c, 16<<10)
	}
	status, body, keep, err := lc.exchange(req, head)
	if err != nil || !keep {
		lc.close()
	}
	return status, body, err
}

func (lc *leanConn) exchange(req []byte, head bool) (status int, body []byte, keep bool, err error) {
	if _, err = lc.c.Write(req); err != nil {
		return 0, nil, false, err
	}
	line, err := lc.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	if status, err = parseStatusLine(line); err != nil {
		return 0, nil, false, err
	}
	fr, err := lc.readHeader()
	if err != nil {
		return status, nil, false, err
	}
	// RFC 9112 §6.3: no body after HEAD, 1xx, 204 and 304.
	switch {
	case head || status == 204 || status == 304 || status < 200:
		lc.body = lc.body[:0]
	case fr.chunked:
		err = lc.readChunked()
	case fr.length >= 0:
		err = lc.readLength(fr.length)
	default: // delimited by the end of the connection
		lc.body, err = io.ReadAll(lc.br)
		fr.close = true
	}
	return status, lc.body, err == nil && !fr.close, err
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
	length  int // -1 when absent
	chunked bool
	close   bool
}

var (
	hContentLength    = []byte("content-length")
	hTransferEncoding = []byte("transfer-encoding")
	hConnection       = []byte("connection")
)

// readHeader reads header lines up to the empty line and keeps only what
// frames the body and the connection.
func (lc *leanConn) readHeader() (framing, error) {
	fr := framing{length: -1}
	for {
		line, err := lc.br.ReadSlice('\n')
		if err != nil {
			return fr, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return fr, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return fr, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, hContentLength):
			n, ok := parseDecimal(value)
			if !ok {
				return fr, fmt.Errorf("bad Content-Length %q", value)
			}
			fr.length = n
		case bytes.EqualFold(name, hTransferEncoding):
			fr.chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, hConnection):
			fr.close = bytes.EqualFold(value, []byte("close"))
		}
	}
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

func (lc *leanConn) readLength(n int) error {
	if cap(lc.body) < n {
		lc.body = make([]byte, n)
	}
	lc.body = lc.body[:n]
	_, err := io.ReadFull(lc.br, lc.body)
	return err
}

// readChunked reads a chunked body (RFC 9112 §7.1) and its trailer.
func (lc *leanConn) readChunked() error {
	lc.body = lc.body[:0]
	for {
		line, err := lc.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseUint(string(bytes.TrimSpace(size)), 16, 31)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			break
		}
		start := len(lc.body)
		lc.body = append(lc.body, make([]byte, n)...)
		if _, err := io.ReadFull(lc.br, lc.body[start:]); err != nil {
			return err
		}
		if crlf, err := lc.br.ReadSlice('\n'); err != nil || len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return errors.New("chunk not followed by CRLF")
		}
	}
	for { // trailer fields, then the empty line
		line, err := lc.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}

// buildRequest writes an HTTP/1.1 request once, for the lean client to
// send again and again. u is an absolute http URL.
func buildRequest(method, u string, header map[string]string, body string) ([]byte, string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, "", err
	}
	if p.Scheme != "http" {
		return nil, "", fmt.Errorf("the lean client speaks plain http only, not %s", u)
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
	return b.Bytes(), p.Host, nil
}
