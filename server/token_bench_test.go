package server

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// benchServer is a server for in-process benchmarks: requests go straight
// to ServeHTTP, measuring the server and not the loopback network.
func benchServer(b *testing.B, alg string) (*Server, *testServer) {
	ts := newTestServer(b)
	if alg != keyset.ES256 {
		ts.update(func(s *config.Snapshot) {
			s.Keys = &keyset.Set{Keys: []keyset.Key{activeKey(b, alg, ts.clock.Now().Add(-time.Hour))}}
		})
	}
	return ts.srv, ts
}

func newTokenHTTPRequest(form string, user, pass string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+endpoints.TokenPath, strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(user)+":"+url.QueryEscape(pass))))
	}
	return r
}

// discard is a minimal ResponseWriter, so the benchmark measures the
// server rather than httptest.ResponseRecorder.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(s int)           { d.status = s }

func BenchmarkTokenClientCredentials(b *testing.B) {
	for _, alg := range []string{keyset.ES256, keyset.EdDSA, keyset.RS256} {
		b.Run(alg, func(b *testing.B) {
			srv, _ := benchServer(b, alg)
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b, processCPU())
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := newTokenHTTPRequest("grant_type=client_credentials&scope=orders%3Aread", ccClientID, ccSecret)
					w := &discard{h: http.Header{}}
					srv.ServeHTTP(w, r)
					if w.status != 0 && w.status != http.StatusOK {
						b.Fatalf("status %d", w.status)
					}
				}
			})
		})
	}
}

// BenchmarkTokenCodeExchange compares a plain OAuth code exchange with an
// OpenID Connect one, which also signs an RS256 ID token: the one extra
// signature per token response that OpenID Connect may cost.
func BenchmarkTokenCodeExchange(b *testing.B) {
	b.Run("oauth", func(b *testing.B) {
		benchmarkCodeExchange(b, webClientID, webSecret, webRedirect, []string{"orders:read"})
	})
	b.Run("openid", func(b *testing.B) {
		benchmarkCodeExchange(b, oidcClientID, oidcSecret, oidcRedirect, []string{"openid", "profile", "email", "groups", "orders:read"})
	})
}

func benchmarkCodeExchange(b *testing.B, clientID, secret, redirect string, scopes []string) {
	srv, ts := benchServer(b, keyset.ES256)
	withOIDC(b, ts)
	now := ts.clock.Now()
	verifier := oauth2.GenerateVerifier()
	challenge := oauth2.S256ChallengeFromVerifier(verifier)
	codes := make([]string, b.N)
	for i := range codes {
		codes[i] = randomToken(32)
		err := ts.store.CreateCode(b.Context(), storage.AuthCode{
			Hash: storage.HashToken(codes[i]), ClientID: clientID, RedirectURI: redirect, Scopes: scopes, Nonce: "n",
			Subject: testSubject, AuthTime: now, CodeChallenge: challenge, CodeChallengeMethod: "S256", ExpiresAt: now.Add(time.Hour),
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {codes[i]}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
		w := &discard{h: http.Header{}}
		srv.ServeHTTP(w, newTokenHTTPRequest(form.Encode(), clientID, secret))
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

func BenchmarkTokenRefresh(b *testing.B) {
	srv, ts := benchServer(b, keyset.ES256)
	now := ts.clock.Now()
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = randomToken(32)
		err := ts.store.CreateRefreshToken(b.Context(), storage.RefreshToken{
			Hash: storage.HashToken(tokens[i]), FamilyID: newID(), ClientID: webClientID, Subject: testSubject,
			Scopes: []string{"orders:read"}, AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens[i]}}
		w := &discard{h: http.Header{}}
		srv.ServeHTTP(w, newTokenHTTPRequest(form.Encode(), webClientID, webSecret))
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkTokenClientCredentialsLoopback measures requests per second
// over real HTTP on loopback, with the load generator (parallel keep-alive
// clients) on the same machine, as the target asks.
func BenchmarkTokenClientCredentialsLoopback(b *testing.B) {
	_, ts := benchServer(b, keyset.ES256)
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	body := "grant_type=client_credentials&scope=orders%3Aread"
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(ccClientID)+":"+url.QueryEscape(ccSecret)))
	b.SetParallelism(8)
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+endpoints.TokenPath, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", auth)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkIntrospection introspects one access token again and again, as
// a resource server does for each request it serves with that token.
func BenchmarkIntrospection(b *testing.B) {
	srv, ts := benchServer(b, keyset.ES256)
	tok, err := ts.ccConfig(ccClientID, ccSecret, "orders:read").Token(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	form := url.Values{"token": {tok.AccessToken}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b, processCPU())
	for range b.N {
		r := newTokenHTTPRequest(form, ccClientID, ccSecret)
		r.URL.Path = endpoints.IntrospectPath
		w := &discard{h: http.Header{}}
		srv.ServeHTTP(w, r)
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// processCPU is the CPU time (user+system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since since: on a shared
// machine wall time per operation is what the other work leaves over, CPU
// time much less so.
func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(processCPU()-since)/float64(b.N), "cpu-ns/op")
}

// rawConn is one keep-alive HTTP/1.1 connection that writes a pre-built
// request and reads the answer minimally (status line, Content-Length,
// body), so that a loopback profile shows the server, not a client.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(tb testing.TB, addr string) *rawConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return &rawConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}
}

// roundTrip sends req and returns the status and body.
func (rc *rawConn) roundTrip(req []byte) (int, []byte, error) {
	if _, err := rc.c.Write(req); err != nil {
		return 0, nil, err
	}
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 {
		return 0, nil, fmt.Errorf("status line %q", line)
	}
	status, _ := strconv.Atoi(string(line[9:12]))
	length := 0
	for {
		h, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := strings.Cut(string(h), ":"); ok && strings.EqualFold(k, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, length)
	_, err = io.ReadFull(rc.br, body)
	return status, body, err
}

// benchmarkLoopback sends req over parallel keep-alive connections to addr
// and reports requests per second; every answer must have status want.
func benchmarkLoopback(b *testing.B, addr string, req []byte, want int) {
	b.SetParallelism(8)
	b.ReportAllocs()
	start, cpu := time.Now(), processCPU()
	defer reportCPU(b, cpu)
	b.RunParallel(func(pb *testing.PB) {
		rc := dialRaw(b, addr)
		defer rc.c.Close()
		for pb.Next() {
			status, body, err := rc.roundTrip(req)
			if err != nil || status != want {
				b.Fatalf("status %d, err %v: %.200s", status, err, body)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func rawRequest(method, host, path string, header ...string) []byte {
	s := method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n"
	for _, h := range header {
		s += h + "\r\n"
	}
	return []byte(s + "\r\n")
}

// BenchmarkJWKSLoopback serves the JWKS over loopback: "gatehouse" is the
// server, "floor" a bare net/http handler writing the same bytes and
// headers, the least net/http can cost for this response.
func BenchmarkJWKSLoopback(b *testing.B) {
	_, ts := benchServer(b, keyset.ES256)
	host := strings.TrimPrefix(ts.URL, "http://")
	req := rawRequest(http.MethodGet, host, endpoints.JWKSPath)
	b.Run("gatehouse", func(b *testing.B) { benchmarkLoopback(b, host, req, http.StatusOK) })
	b.Run("floor", func(b *testing.B) {
		doc := ts.srv.derive(ts.snap()).jwks
		floor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Etag"], h["Cache-Control"], h["Content-Type"], h["Content-Length"] = doc.etag, doc.cacheControl, doc.contentType, doc.length
			_, _ = w.Write(doc.body)
		}))
		defer floor.Close()
		benchmarkLoopback(b, strings.TrimPrefix(floor.URL, "http://"), req, http.StatusOK)
	})
}

// BenchmarkTokenClientCredentialsRaw is the loopback token benchmark with
// the raw client: nearly all of its profile is the server's.
func BenchmarkTokenClientCredentialsRaw(b *testing.B) {
	_, ts := benchServer(b, keyset.ES256)
	host := strings.TrimPrefix(ts.URL, "http://")
	body := "grant_type=client_credentials&scope=orders%3Aread"
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(ccClientID)+":"+url.QueryEscape(ccSecret)))
	req := append(rawRequest(http.MethodPost, host, endpoints.TokenPath, "Content-Type: application/x-www-form-urlencoded",
		"Authorization: "+auth, "Content-Length: "+strconv.Itoa(len(body))), body...)
	benchmarkLoopback(b, host, req, http.StatusOK)
}
