package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/server/internal/throttle"
)

// securityLog reads the "security event" lines a test server logged.
type securityLog struct {
	t    *testing.T
	ts   *testServer
	logs *testenv.LogBuffer
	seen map[string]int
}

func newSecurityLog(t *testing.T) *securityLog {
	sl := &securityLog{t: t, logs: &testenv.LogBuffer{}, seen: map[string]int{}}
	sl.ts = newTestServerWith(t, func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(sl.logs, nil)) })
	return sl
}

func securityCount(t *testing.T, ts *testServer, event string) float64 {
	t.Helper()
	var m dto.Metric
	if err := ts.srv.metrics.security.WithLabelValues(event).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func (sl *securityLog) events(event string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(sl.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "security event" && m["event"] == event {
			out = append(out, m)
		}
	}
	return out
}

// expectOne checks that exactly one more event was logged and counted
// since the last call, at level WARN, and returns its line.
func (sl *securityLog) expectOne(event string) map[string]any {
	sl.t.Helper()
	lines := sl.events(event)
	count := securityCount(sl.t, sl.ts, event)
	want := sl.seen[event] + 1
	sl.seen[event] = want
	if len(lines) != want || int(count) != want {
		sl.t.Fatalf("%s: %d log lines and a count of %v, want %d of each", event, len(lines), count, want)
	}
	line := lines[want-1]
	if line["level"] != "WARN" {
		sl.t.Errorf("%s logged at %v, want WARN", event, line["level"])
	}
	return line
}

func wantAttrs(t *testing.T, line map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s: %s = %v, want %v (line %v)", line["event"], k, line[k], v, line)
		}
	}
}

// Issue 14 item 9: code replay, refresh-token reuse, throttled logins and
// refused client authentication are each one WARN log line, without
// secrets, and one count an operator can alert on.
func TestSecurityEventsAreLoggedAndCounted(t *testing.T) {
	sl := newSecurityLog(t)
	ts := sl.ts
	var secrets []string
	for _, e := range securityEvents {
		if got := securityCount(t, ts, e); got != 0 {
			t.Fatalf("%s starts at %v", e, got)
		}
	}
	cfg := ts.webConfig("orders:read")
	b := newBrowser(t, ts)

	// Code replay.
	code, verifier := ts.codeFor(t, b, "orders:read")
	first, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("a replayed code was redeemed")
	}
	line := sl.expectOne(EventCodeReplay)
	wantAttrs(t, line, map[string]any{"client_id": webClientID, "sub": testSubject, "endpoint": "token", "client_address": "127.0.0.1"})
	if line["revoked_jti"] == "" || line["revoked_grant_id"] == "" {
		t.Errorf("code replay does not name what it revoked: %v", line)
	}
	secrets = append(secrets, code, verifier, first.AccessToken, first.RefreshToken)

	// Refresh-token reuse.
	code, verifier = ts.codeFor(t, b, "orders:read")
	tok, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	next, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	// The client moves on with the successor; then the old token is reuse
	// (before, it would be a retry of the same rotation: refreshTokenRetry).
	last, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: next.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a rotated refresh token was accepted")
	}
	line = sl.expectOne(EventRefreshTokenReuse)
	wantAttrs(t, line, map[string]any{"client_id": webClientID, "sub": testSubject})
	secrets = append(secrets, tok.RefreshToken, next.RefreshToken, next.AccessToken, last.RefreshToken, last.AccessToken)

	// Refused client authentication, at each endpoint that authenticates.
	const wrong = "not-the-secret-0123456789"
	if _, err := ts.ccConfig(ccClientID, wrong).Token(ctx(t)); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	wantAttrs(t, sl.expectOne(EventClientAuthFailed), map[string]any{"client_id": ccClientID, "reason": "wrong_secret", "auth_method": "client_secret_basic", "endpoint": "token"})
	resp := ts.postForm(t, endpoints.RevokePath, url.Values{"token": {"x"}}, "apps.nobody", wrong)
	resp.Body.Close()
	wantAttrs(t, sl.expectOne(EventClientAuthFailed), map[string]any{"client_id": "apps.nobody", "reason": "unknown_client", "endpoint": "revoke"})
	resp = ts.postForm(t, endpoints.IntrospectPath, url.Values{"token": {"x"}, "client_id": {ccClientID}}, "", "")
	resp.Body.Close()
	wantAttrs(t, sl.expectOne(EventClientAuthFailed), map[string]any{"client_id": ccClientID, "reason": "wrong_method", "endpoint": "introspect"})
	req, _ := http.NewRequest(http.MethodPost, ts.URL+endpoints.TokenPath, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic !!!")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantAttrs(t, sl.expectOne(EventClientAuthFailed), map[string]any{"reason": "malformed_credentials"})
	// No credentials at all is a bad request, not a refusal.
	resp = ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"client_credentials"}}, "", "")
	resp.Body.Close()
	if n := len(sl.events(EventClientAuthFailed)); n != sl.seen[EventClientAuthFailed] {
		t.Errorf("a request without credentials was logged as refused client authentication")
	}
	secrets = append(secrets, wrong, ccSecret)

	// Throttled login: a known account is named, an unknown username
	// (perhaps a password typed in the wrong field) is not.
	lb := newBrowser(t, ts)
	resp2, _ := lb.get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	_, page := lb.get(location(t, resp2).String())
	f := hiddenFields(page)
	for _, username := range []string{testUser, "Tr0ub4dor&3"} {
		f.Set("username", username)
		f.Set("password", "wrong-password-"+username)
		secrets = append(secrets, "wrong-password-"+username)
		for range throttle.Default.UserBurst + 1 {
			resp2, _ = lb.post(ts.URL+endpoints.LoginPath, f)
		}
		if resp2.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("login for %s: %d, want 429", username, resp2.StatusCode)
		}
	}
	events := sl.events(EventLoginThrottled)
	if len(events) != 2 || securityCount(t, ts, EventLoginThrottled) != 2 {
		t.Fatalf("%d throttled-login lines, want 2", len(events))
	}
	wantAttrs(t, events[0], map[string]any{"username": testUser, "throttled_by": "account", "client_id": webClientID, "endpoint": "login"})
	wantAttrs(t, events[1], map[string]any{"username_known": false, "throttled_by": "account"})
	if _, ok := events[1]["username"]; ok {
		t.Errorf("an unknown username was logged: %v", events[1])
	}
	secrets = append(secrets, "Tr0ub4dor&3", testPassword)

	all := sl.logs.String()
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("the log carries a secret (%.12s…)", s)
		}
	}
}
