package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// minSecretLen keeps short values (a "true", a port) out of the set: every
// secret Gatehouse hands out or takes is far longer.
const minSecretLen = 8

// handled is every secret, code, token and password the suite handled:
// what went over http.DefaultTransport (the oauth2 library's, and the
// suite's own requests), the codes the callback received, the person's
// password and, at the end, every value of every Secret in the cluster.
// TestMain checks that neither the audit stream nor the debug logs of the
// run carry any of them (checkLogsCarryNoSecrets).
var handled = &secretSet{seen: map[string]string{}}

type secretSet struct {
	mu   sync.Mutex
	seen map[string]string // value → where it came from
}

func (s *secretSet) add(from string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if len(v) < minSecretLen {
			continue
		}
		s.seen[v] = from
		// A JWT's signature alone is as secret as the JWT.
		if parts := strings.Split(v, "."); len(parts) == 3 && len(parts[2]) >= minSecretLen {
			s.seen[parts[2]] = from + " (its signature)"
		}
	}
}

func (s *secretSet) list() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.seen)
}

// secretParams are the request and response parameters that carry a
// secret, code, token or password (RFC 6749, 7009, 7636, 7662, 8628, 8693,
// 7523, OpenID Connect).
var secretParams = []string{
	"client_secret", "code", "code_verifier", "refresh_token", "access_token", "id_token", "token",
	"password", "device_code", "user_code", "client_assertion", "assertion", "subject_token",
	"actor_token", "id_token_hint", "logout_token", "issued_token", "request", "request_uri",
}

// recordingTransport adds to handled every secret in the requests it
// sends and the answers it gets.
type recordingTransport struct{ next http.RoundTripper }

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	recordRequest(req)
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		recordURL(loc)
	}
	if resp.Body != nil && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			return resp, err
		}
		var fields map[string]any
		if json.Unmarshal(body, &fields) == nil {
			for _, p := range secretParams {
				if v, ok := fields[p].(string); ok {
					handled.add(p+" in an answer from "+req.URL.Path, v)
				}
			}
		}
	}
	return resp, nil
}

func recordRequest(req *http.Request) {
	recordURL(req.URL.String())
	// A client secret in the Basic scheme is form-encoded first
	// (RFC 6749 §2.3.1): record both spellings.
	if _, pass, ok := req.BasicAuth(); ok {
		handled.add("a Basic password", pass)
		if u, err := url.QueryUnescape(pass); err == nil {
			handled.add("a Basic password", u)
		}
	}
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		handled.add("a bearer token", tok)
	}
	if req.Body == nil || req.GetBody == nil {
		return
	}
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return
	}
	body, err := req.GetBody()
	if err != nil {
		return
	}
	data, _ := io.ReadAll(body)
	if form, err := url.ParseQuery(string(data)); err == nil {
		recordValues(form)
	}
}

func recordURL(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	recordValues(u.Query())
	if frag, err := url.ParseQuery(u.Fragment); err == nil {
		recordValues(frag)
	}
}

func recordValues(v url.Values) {
	for _, p := range secretParams {
		handled.add(p, v[p]...)
	}
}

// recordClusterSecrets adds every secret value of every Secret in the
// cluster: client secrets (and their aliases), signing keys, the users
// Secret, service-account tokens.
func (s *suite) recordClusterSecrets(ctx context.Context) error {
	var list corev1.SecretList
	if err := s.c.List(ctx, &list); err != nil {
		return fmt.Errorf("listing Secrets: %w", err)
	}
	for _, sec := range list.Items {
		// A client's Secret is its client_secret plus connection data
		// (client_id, issuer, endpoints, scope) that is not secret; its
		// aliases hold the same value.
		if secret, ok := sec.Data["client_secret"]; ok {
			handled.add(fmt.Sprintf("Secret %s/%s key client_secret", sec.Namespace, sec.Name), string(secret))
			continue
		}
		for k, v := range sec.Data {
			handled.add(fmt.Sprintf("Secret %s/%s key %s", sec.Namespace, sec.Name, k), string(v))
		}
	}
	return nil
}

// checkLogsCarryNoSecrets is the audit log's invariant over a whole run
// (DESIGN.md: audit and debug logs never carry a secret, code, token or
// password): after every scenario, the audit streams of the operator and
// the token server, and their debug logs, are searched for every secret the
// run handled. The audit streams must also hold what the run did (tokens
// issued, and the operator's client secrets), so an empty stream cannot
// pass. Local mode only: in real-cluster mode the streams are the pods'.
func (s *suite) checkLogsCarryNoSecrets() error {
	if !s.local {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.recordClusterSecrets(ctx); err != nil {
		return err
	}
	handled.add("the person's password", s.password)
	secrets := handled.list()

	var errs []error
	events := map[string]int{}
	// Gatehouse's own logs: the operator's, every token server's (a
	// second server writes its audit lines to stdout, into its log) and
	// the audit streams. Other programs' (oauth2-proxy's) are not ours.
	var logs []string
	for _, glob := range []string{"operator.log", "server*.log", "audit-*.log"} {
		m, _ := filepath.Glob(filepath.Join(s.logDir, glob))
		logs = append(logs, m...)
	}
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		name := filepath.Base(path)
		for v, from := range secrets {
			if bytes.Contains(data, []byte(v)) {
				errs = append(errs, fmt.Errorf("%s carries %s (%d bytes, starting %q)", name, from, len(v), v[:4]))
			}
		}
		switch {
		case strings.HasPrefix(name, "audit-"):
			if err := countEvents(name, data, events, true); err != nil {
				errs = append(errs, err)
			}
		case strings.HasPrefix(name, "server-"):
			// Another token server's audit lines, among its debug log's.
			_ = countEvents("audit-server.log", data, events, false)
		}
	}
	wants := []string{"operator client_secret Success"}
	if handledTokens(secrets) {
		wants = append(wants, "server token Success")
	}
	for _, want := range wants {
		if events[want] == 0 {
			errs = append(errs, fmt.Errorf("the audit streams have no %q line (they have %v)", want, events))
		}
	}
	progress("audit streams and debug logs searched for %d secrets, codes, tokens and passwords the run handled; audit lines: %v", len(secrets), events)
	return errors.Join(errs...)
}

// countEvents counts the audit lines of a stream by stream, event and
// status; strict, every line must be one (an audit stream), else lines
// that are not are skipped (a log that mixes both).
func countEvents(name string, data []byte, into map[string]int, strict bool) error {
	stream := strings.TrimSuffix(strings.TrimPrefix(name, "audit-"), ".log")
	for line := range bytes.Lines(data) {
		var ev struct {
			Kind           string `json:"kind"`
			Event          string `json:"event"`
			ResponseStatus struct {
				Status string `json:"status"`
			} `json:"responseStatus"`
		}
		if err := json.Unmarshal(line, &ev); err != nil || ev.Kind != "Event" {
			if strict {
				return fmt.Errorf("%s: a line that is not an audit event: %q", name, line)
			}
			continue
		}
		into[stream+" "+ev.Event+" "+ev.ResponseStatus.Status]++
	}
	return nil
}

// handledTokens reports whether the run got an access token in an
// answer: then some token server's audit stream must say it issued one.
func handledTokens(secrets map[string]string) bool {
	for _, from := range secrets {
		if strings.HasPrefix(from, "access_token in an answer") {
			return true
		}
	}
	return false
}
