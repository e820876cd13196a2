package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
)

// fakeIssuer serves RFC 8414 metadata and a JWKS on 127.0.0.1 and signs
// RFC 9068 tokens as the Gatehouse token server does.
type fakeIssuer struct {
	*httptest.Server
	key keyset.Key
}

func newIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	key, err := keyset.Generate(keyset.ES256)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": f.URL, "jwks_uri": f.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		jwks, err := (&keyset.Set{Keys: []keyset.Key{f.key}}).PublicJWKS()
		if err != nil {
			t.Error(err)
		}
		_ = json.NewEncoder(w).Encode(jwks)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIssuer) token(t *testing.T, scope, aud string, exp time.Duration) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": f.URL, "sub": "alice", "aud": []string{aud}, "client_id": "web",
		"scope": scope, "jti": "id-" + scope, "iat": now.Unix(), "exp": now.Add(exp).Unix(),
	})
	tok.Header["typ"], tok.Header["kid"] = "at+jwt", f.key.ID
	s, err := tok.SignedString(f.key.Signer())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// syncBuffer collects the server's log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("log line is not JSON: %s", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// start runs orders-api in-process and returns its base URL.
func start(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, append(args, "--listen", "127.0.0.1:0"), out, func(a string) { addr <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case a := <-addr:
		return "http://" + a, out
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("orders-api did not start")
	}
	return "", nil
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func call(t *testing.T, method, url, token, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %s", method, url, raw)
	}
	return r
}

func TestOrdersAPI(t *testing.T) {
	iss := newIssuer(t)
	base, logs := start(t, "--issuer", iss.URL, "--audience", "orders-api")
	read := iss.token(t, "orders:read", "orders-api", 5*time.Minute)
	readWrite := iss.token(t, "orders:read orders:write", "orders-api", 5*time.Minute)

	if r := call(t, "GET", base+"/healthz", "", ""); r.status != 200 || r.body["status"] != "ok" {
		t.Fatalf("healthz: %+v", r)
	}

	r := call(t, "GET", base+"/orders", "", "")
	if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="orders-api"` {
		t.Fatalf("no token: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}

	for name, tok := range map[string]string{
		"expired":        iss.token(t, "orders:read", "orders-api", -2*time.Minute),
		"other audience": iss.token(t, "orders:read", "billing-api", 5*time.Minute),
		"garbage":        "not-a-jwt",
	} {
		r := call(t, "GET", base+"/orders", tok, "")
		if r.status != 401 || r.body["error"] != "invalid_token" || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s token: %d %v %q", name, r.status, r.body, r.header.Get("WWW-Authenticate"))
		}
	}

	if r := call(t, "GET", base+"/orders", read, ""); r.status != 200 || len(r.body["orders"].([]any)) != 0 {
		t.Fatalf("list with orders:read: %+v", r)
	}

	r = call(t, "POST", base+"/orders", read, `{"item":"coffee","quantity":2}`)
	wantChallenge := `Bearer realm="orders-api", error="insufficient_scope", error_description="the access token lacks scope orders:write", scope="orders:write"`
	if r.status != 403 || r.header.Get("WWW-Authenticate") != wantChallenge || r.body["error"] != "insufficient_scope" {
		t.Fatalf("create with orders:read only: %d %v %q", r.status, r.body, r.header.Get("WWW-Authenticate"))
	}

	r = call(t, "POST", base+"/orders", readWrite, `{"item":"coffee","quantity":2}`)
	if r.status != 201 || r.body["item"] != "coffee" || r.body["created_by"] != "alice" || r.header.Get("Location") != "/orders/1" {
		t.Fatalf("create: %+v", r)
	}
	if r := call(t, "POST", base+"/orders", readWrite, `{"item":"","quantity":0}`); r.status != 400 || r.body["error"] != "invalid_order" {
		t.Fatalf("invalid order: %+v", r)
	}
	if r := call(t, "GET", base+"/orders", read, ""); r.status != 200 || len(r.body["orders"].([]any)) != 1 {
		t.Fatalf("list after create: %+v", r)
	}
	if r := call(t, "GET", base+"/me", read, ""); r.status != 200 || r.body["sub"] != "alice" || r.body["client_id"] != "web" || r.body["scope"] != "orders:read" {
		t.Fatalf("me: %+v", r)
	}

	var listening, refused bool
	for _, l := range logs.lines(t) {
		switch l["msg"] {
		case "listening":
			listening = true
		case "request refused":
			refused = refused || l["status"] == float64(403)
		}
	}
	if !listening || !refused {
		t.Errorf("logs lack the listening or refusal lines: %v", logs.lines(t))
	}
}

func TestOrdersAPIFlags(t *testing.T) {
	iss := newIssuer(t)
	for name, args := range map[string][]string{
		"no issuer":    {"--audience", "orders-api"},
		"unknown flag": {"--issuer", iss.URL, "--colour", "blue"},
		"extra args":   {"--issuer", iss.URL, "serve"},
	} {
		if err := run(context.Background(), args, io.Discard, nil); !errors.Is(err, errUsage) {
			t.Errorf("%s: err = %v, want a usage error", name, err)
		}
	}
	// An issuer that does not answer is a start-up error, not a server
	// that refuses every token.
	if err := run(context.Background(), []string{"--issuer", "http://127.0.0.1:1"}, io.Discard, nil); err == nil || errors.Is(err, errUsage) {
		t.Errorf("unreachable issuer: err = %v", err)
	}
}

// In the cluster the API reads the JWKS ConfigMap from a mounted file and
// never calls the token server.
func TestOrdersAPIWithJWKSFile(t *testing.T) {
	iss := newIssuer(t)
	jwks, err := (&keyset.Set{Keys: []keyset.Key{iss.key}}).PublicJWKS()
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(jwks)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	issuer := iss.URL
	iss.Close() // nothing may be fetched from the issuer
	base, _ := start(t, "--issuer", issuer, "--jwks-file", path)
	if r := call(t, "GET", base+"/orders", iss.token(t, "orders:read", "https://orders.example.com", time.Minute), ""); r.status != 200 {
		t.Fatalf("GET /orders: %+v", r)
	}
}
