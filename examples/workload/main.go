// Command workload is an example of a workload that gets OAuth tokens with
// no secret at all (docs/tutorials/workload-identity.md): it runs in a pod
// as a ServiceAccount, sends the pod's projected service-account token as
// its client assertion (RFC 7523 §2.2) for a client_credentials access
// token, and calls an API with it, in a loop.
//
// It reads everything it needs from files the pod mounts, again before
// each request, since the kubelet replaces the projected token before it
// expires:
//
//   - --token-file: the projected service-account token, with the
//     issuer as audience;
//   - --client-dir: the OAuthClient's connection ConfigMap (client_id,
//     token_endpoint, client_assertion_type; nothing secret).
//
// GET /stats on --listen reports what it saw, for the real-cluster test.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

type config struct {
	tokenFile, clientDir, tokenURL, scope, apiURL, listen string
	interval                                              time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.tokenFile, "token-file", "/var/run/secrets/gatehouse/token", "the projected service-account token (audience: the issuer)")
	flag.StringVar(&c.clientDir, "client-dir", "/etc/gatehouse/client", "the mounted connection ConfigMap of the OAuthClient")
	flag.StringVar(&c.tokenURL, "token-url", "", "the token endpoint, when the pod reaches it at another address than the ConfigMap's token_endpoint (e.g. the in-cluster Service)")
	flag.StringVar(&c.scope, "scope", "", "scope to ask for (default: the ConfigMap's scope)")
	flag.StringVar(&c.apiURL, "api-url", "", "an API to call with each access token (GET, Authorization: Bearer)")
	flag.DurationVar(&c.interval, "interval", 2*time.Second, "time between rounds")
	flag.StringVar(&c.listen, "listen", ":8080", "address of /stats and /healthz")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	st := &stats{}
	go func() {
		hc := &http.Client{Timeout: 5 * time.Second}
		for ctx.Err() == nil {
			st.round(ctx, log, hc, &c)
			select {
			case <-ctx.Done():
			case <-time.After(c.interval):
			}
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /stats", st.serve)
	srv := &http.Server{Addr: c.listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	log.Info("workload started", "tokenFile", c.tokenFile, "clientDir", c.clientDir, "apiURL", c.apiURL)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serving", "error", err)
		os.Exit(1)
	}
}

// stats count the rounds: token requests and API calls.
type stats struct {
	mu           sync.Mutex
	Tokens       int      `json:"tokens"`
	TokenErrors  int      `json:"tokenErrors"`
	APICalls     int      `json:"apiCalls"`
	APIOK        int      `json:"apiOK"`
	LastError    string   `json:"lastError,omitempty"`
	LastAPIBody  string   `json:"lastAPIBody,omitempty"`
	RecentErrors []string `json:"recentErrors,omitempty"`
}

func (st *stats) serve(w http.ResponseWriter, _ *http.Request) {
	st.mu.Lock()
	defer st.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

func (st *stats) failed(what string, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	msg := time.Now().UTC().Format(time.RFC3339) + " " + what + ": " + err.Error()
	st.LastError = msg
	if st.RecentErrors = append(st.RecentErrors, msg); len(st.RecentErrors) > 10 {
		st.RecentErrors = st.RecentErrors[1:]
	}
}

// round gets an access token and, with --api-url, calls the API with it.
func (st *stats) round(ctx context.Context, log *slog.Logger, hc *http.Client, c *config) {
	at, err := accessToken(ctx, hc, c)
	st.mu.Lock()
	if err != nil {
		st.TokenErrors++
	} else {
		st.Tokens++
	}
	st.mu.Unlock()
	if err != nil {
		st.failed("token", err)
		log.Warn("no access token", "error", err)
		return
	}
	if c.apiURL == "" {
		log.Info("got an access token")
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.apiURL, nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := hc.Do(req)
	if err != nil {
		st.failed("api", err)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	st.mu.Lock()
	st.APICalls++
	if resp.StatusCode == http.StatusOK {
		st.APIOK++
	}
	st.LastAPIBody = string(body)
	st.mu.Unlock()
	if resp.StatusCode != http.StatusOK {
		st.failed("api", fmt.Errorf("%s: %.200s", resp.Status, body))
	}
	log.Info("called the API with an access token", "url", c.apiURL, "status", resp.StatusCode)
}

// accessToken asks for a client_credentials token, authenticated by the
// projected service-account token as the client assertion.
func accessToken(ctx context.Context, hc *http.Client, c *config) (string, error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(name)
		return strings.TrimSpace(string(b)), err
	}
	assertion, err := read(c.tokenFile)
	if err != nil {
		return "", fmt.Errorf("reading the projected token: %w", err)
	}
	conn := map[string]string{}
	for _, k := range []string{"client_id", "token_endpoint", "client_assertion_type", "scope"} {
		if conn[k], err = read(filepath.Join(c.clientDir, k)); err != nil {
			return "", fmt.Errorf("reading the client's ConfigMap: %w", err)
		}
	}
	tokenURL := c.tokenURL
	if tokenURL == "" {
		tokenURL = conn["token_endpoint"]
	}
	scope := c.scope
	if scope == "" {
		scope = conn["scope"]
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {scope},
		"client_id":             {conn["client_id"]},
		"client_assertion_type": {conn["client_assertion_type"]},
		"client_assertion":      {assertion},
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return "", fmt.Errorf("token endpoint: %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: %s: %s %s", resp.Status, body.Error, body.Description)
	}
	return body.AccessToken, nil
}
