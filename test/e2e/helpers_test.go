package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

var randRead = rand.Read

// callbackServer is the web app's redirect URI on 127.0.0.1: it hands
// what the browser brings back to the test.
type callbackServer struct {
	url  string
	srv  *http.Server
	hits chan url.Values
}

func newCallbackServer() (*callbackServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cb := &callbackServer{url: "http://" + l.Addr().String() + "/oauth/callback", hits: make(chan url.Values, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/callback", func(w http.ResponseWriter, r *http.Request) {
		recordValues(r.URL.Query())
		select {
		case cb.hits <- r.URL.Query():
		default:
		}
		_, _ = io.WriteString(w, "<!doctype html><title>signed in</title><p id=done>You can close this window.</p>")
	})
	cb.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = cb.srv.Serve(l) }()
	return cb, nil
}

func (cb *callbackServer) close() { _ = cb.srv.Close() }

// machineToken gets a client_credentials token with golang.org/x/oauth2.
func machineToken(ctx context.Context, tokenURL, id, secret string, scopes ...string) (*oauth2.Token, error) {
	cfg := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: tokenURL, Scopes: scopes,
		AuthStyle: oauth2.AuthStyleInHeader}
	return cfg.Token(ctx)
}

// callAPI calls a resource server with the token and returns the status
// and body.
func callAPI(ctx context.Context, method, url, token, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 400 {
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate") + " " + string(b), nil
	}
	return resp.StatusCode, string(b), nil
}

// postForm posts to a Gatehouse endpoint with HTTP Basic client
// authentication (RFC 6749 §2.3.1) and decodes the JSON answer.
func postForm(ctx context.Context, endpoint, id, secret string, form url.Values) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("%s: not JSON: %q", resp.Status, b)
		}
	}
	return resp.StatusCode, out, nil
}

// tokenError is the RFC 6749 §5.2 error code of a failed token request.
func tokenError(err error) string {
	if re, ok := err.(*oauth2.RetrieveError); ok {
		return re.ErrorCode
	}
	return ""
}

// jwtHeader decodes a JWT's header.
func jwtHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	part, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	h := map[string]any{}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h
}

// eventually retries check until it succeeds or the timeout passes, and
// returns how long it took.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(began)
		}
		if time.Since(began) > timeout {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
