package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/server"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage/memory"
)

// realServer is the token server (server.New, memory storage) on
// loopback with one client_credentials client, and an env pointing the
// flows at it, as the harness does at the server gatehouse dev configures.
func realServer(t *testing.T, client string) *env {
	t.Helper()
	k, err := keyset.Generate(keyset.ES256)
	if err != nil {
		t.Fatal(err)
	}
	k.State, k.Created, k.ActivatesAt = keyset.StateActive, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	ts := httptest.NewUnstartedServer(nil)
	ts.Start()
	t.Cleanup(ts.Close)
	demoClientID, demoClientSecret = "bench-client", "a secret: with + and space"
	src := config.NewStatic(&config.Snapshot{
		Issuer: ts.URL, Endpoints: endpoints.For(ts.URL), AccessTokenTTL: config.DefaultAccessTokenTTL,
		PrepublishPeriod: config.DefaultPrepublishPeriod,
		Clients: config.NewClientMap(&config.Client{ID: demoClientID, AuthMethod: oauthv1.AuthClientSecretBasic,
			GrantTypes:    map[oauthv1.GrantType]bool{oauthv1.GrantClientCredentials: true},
			AllowedScopes: []string{"orders:read"}, SecretHashes: []config.SecretHash{{Hash: clientsecret.Hash(demoClientSecret)}}}),
		Scopes:     map[string]*config.Scope{"orders:read": {Name: "orders:read", Audience: "https://orders.example.test"}},
		ScopeNames: []string{"orders:read"},
		Keys:       &keyset.Set{Keys: []keyset.Key{k}},
	})
	srv, err := server.New(server.Options{Source: src, Store: memory.New()})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv
	ops := httptest.NewServer(srv.OpsHandler())
	t.Cleanup(ops.Close)
	return &env{o: &options{client: client}, issuer: ts.URL, addr: strings.TrimPrefix(ts.URL, "http://"), metricsURL: ops.URL + "/metrics"}
}

// Both clients drive the one-request flows against the real server without
// an error, and the lean client is the one used where asked.
func TestLeanClientAgainstServer(t *testing.T) {
	for _, client := range []string{clientLean, clientNetHTTP} {
		e := realServer(t, client)
		for _, name := range []string{"client_credentials", "introspection", "jwks", "metadata"} {
			workers, used, err := e.prepare(t.Context(), name, 2)
			if err != nil {
				t.Fatalf("%s %s: %v", client, name, err)
			}
			drive(t.Context(), e, workers, 200*time.Millisecond)
			closeWorkers(workers)
			res := flowResult{Flow: name, Seconds: .2}
			res.add(workers)
			if used != client || res.Ops < 10 || res.Errors != 0 {
				t.Errorf("%s %s: client %s, %d ops, %d errors %v", client, name, used, res.Ops, res.Errors, res.FirstErrors)
			}
		}
	}
}

// An answer with an unexpected status is an error of the lean client: a
// wrong secret is 401 at the token endpoint, and the run would fail.
func TestLeanClientCountsBadStatus(t *testing.T) {
	e := realServer(t, clientLean)
	demoClientSecret = "wrong"
	workers, _, err := e.prepare(t.Context(), "client_credentials", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer closeWorkers(workers)
	if err := workers[0].op(t.Context(), e, workers[0]); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Fatalf("a refused client: %v, want status 401", err)
	}
	drive(context.Background(), e, workers, 50*time.Millisecond)
	if workers[0].errors == 0 || len(workers[0].latencies) != 0 {
		t.Fatalf("%d errors, %d successes; want only errors", workers[0].errors, len(workers[0].latencies))
	}
}

// framingServer answers with each framing the lean client must read.
func framingServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/length", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hello")) })
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "3")
	})
	mux.HandleFunc("/304", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotModified) })
	mux.HandleFunc("/close", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = w.Write([]byte("bye"))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// The event loop reads the same framings, dials again after a server
// closed the connection, and counts a wrong status as an error.
func TestEventLoop(t *testing.T) {
	ts := framingServer(t)
	for _, c := range []struct {
		path, body string
		status     int
		ok         bool
	}{
		{"/length", "hello", 200, true}, {"/chunked", "part0;part1;part2;", 200, true}, {"/close", "bye", 200, true},
		{"/304", "", 304, true}, {"/missing", "", 200, false},
	} {
		req, err := buildRequest("GET", ts.URL+c.path, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		var workers []*worker
		for range 3 {
			workers = append(workers, &worker{leanReq: req, leanFlow: &leanFlow{want: c.status, check: func(b []byte) error {
				if string(b) != c.body {
					return fmt.Errorf("body %q", b)
				}
				return nil
			}}})
		}
		if err := runEventLoop(t.Context(), strings.TrimPrefix(ts.URL, "http://"), workers, time.Now().Add(150*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		res := flowResult{Seconds: .15}
		res.add(workers)
		if c.ok && (res.Ops < 10 || res.Errors != 0) || !c.ok && (res.Ops != 0 || res.Errors == 0) {
			t.Errorf("%s: %d ops, %d errors %v", c.path, res.Ops, res.Errors, res.FirstErrors)
		}
	}
}

// The lean client frames every kind of answer HTTP/1.1 allows: a
// Content-Length, a chunked body with a trailer, no body (304, HEAD), and
// a server that closes the connection after answering, on which it dials
// again.
func TestLeanClientFraming(t *testing.T) {
	ts := framingServer(t)
	lc := newLeanConn(strings.TrimPrefix(ts.URL, "http://"))
	defer lc.close()
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/length", 200, "hello"}, {"GET", "/chunked", 200, "part0;part1;part2;"}, {"GET", "/304", 304, ""},
		{"HEAD", "/length", 200, ""}, {"GET", "/close", 200, "bye"}, {"GET", "/length", 200, "hello"},
		{"GET", "/missing", 404, "404 page not found\n"}, {"GET", "/chunked", 200, "part0;part1;part2;"},
	} {
		req, err := buildRequest(c.method, ts.URL+c.path, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		status, body, err := lc.do(req, c.method == "HEAD")
		if err != nil || status != c.status || string(body) != c.body {
			t.Errorf("%s %s: %d %q %v; want %d %q", c.method, c.path, status, body, err, c.status, c.body)
		}
		if closed := lc.c == nil; closed != (c.path == "/close") {
			t.Errorf("%s %s: connection closed %v", c.method, c.path, closed)
		}
	}
}

// A malformed answer is an error, not a hang or a success.
func TestLeanClientRejectsMalformedAnswers(t *testing.T) {
	for _, answer := range []string{
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(c).ReadString('\n')
			_, _ = c.Write([]byte(answer))
			_ = c.Close()
		}()
		lc := newLeanConn(l.Addr().String())
		if status, body, err := lc.do([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false); err == nil {
			t.Errorf("%q: %d %q, want an error", answer, status, body)
		}
		lc.close()
		_ = l.Close()
	}
}
