package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// auditLine is a decoded audit line.
type auditLine struct {
	AuditID string `json:"auditID"`
	Event   string `json:"event"`
	TraceID string `json:"traceID"`
	Issuer  string `json:"issuer"`
	User    struct {
		Username string `json:"username"`
	} `json:"user"`
	ClientID       string   `json:"clientID"`
	LoginName      string   `json:"loginName"`
	SourceIPs      []string `json:"sourceIPs"`
	UserAgent      string   `json:"userAgent"`
	GrantType      string   `json:"grantType"`
	Scopes         []string `json:"scopes"`
	Audience       []string `json:"audience"`
	JTI            string   `json:"jti"`
	GrantID        string   `json:"grantID"`
	SecurityEvent  string   `json:"securityEvent"`
	ResponseStatus struct {
		Status  string `json:"status"`
		Code    int    `json:"code"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"responseStatus"`
}

// auditedServer is a test server whose audit lines go to a buffer.
type auditedServer struct {
	*testServer
	buf  *testenv.LogBuffer
	log  *audit.Log
	seen int
}

func newAuditedServer(t *testing.T) *auditedServer {
	as := &auditedServer{buf: &testenv.LogBuffer{}}
	as.log = audit.New(as.buf, audit.Options{})
	t.Cleanup(func() { _ = as.log.Close() })
	as.testServer = newTestServerWith(t, func(o *Options) { o.Audit = as.log })
	return as
}

// next returns the lines written since the last call.
func (as *auditedServer) next(t *testing.T, want int) []auditLine {
	t.Helper()
	as.log.Flush()
	lines := as.all(t)
	got := lines[as.seen:]
	as.seen = len(lines)
	if len(got) != want {
		var events []string
		for _, l := range got {
			events = append(events, l.Event+":"+l.ResponseStatus.Status+":"+l.ResponseStatus.Reason)
		}
		t.Fatalf("%d new audit lines %v, want %d", len(got), events, want)
	}
	return got
}

func (as *auditedServer) all(t *testing.T) []auditLine {
	t.Helper()
	var out []auditLine
	for _, s := range strings.Split(strings.TrimSpace(as.buf.String()), "\n") {
		if s == "" {
			continue
		}
		var l auditLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("audit line %q: %v", s, err)
		}
		out = append(out, l)
	}
	return out
}

func wantLine(t *testing.T, l auditLine, event, status, reason string) {
	t.Helper()
	if l.Event != event || l.ResponseStatus.Status != status || l.ResponseStatus.Reason != reason {
		t.Errorf("line %+v, want event %s, status %s, reason %s", l, event, status, reason)
	}
	if l.AuditID == "" || l.Issuer == "" || len(l.SourceIPs) != 1 || l.SourceIPs[0] != "127.0.0.1" || l.UserAgent == "" {
		t.Errorf("line %+v lacks what every line has", l)
	}
}

// Issue 23 item 1: each event that matters is one audit line, with who,
// what and why, written by the shared phases whatever the grant.
func TestAuditLogRecordsTokenEvents(t *testing.T) {
	as := newAuditedServer(t)
	ts := as.testServer

	tok, err := ts.ccConfig(ccClientID, ccSecret, "orders:read").Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := ts.parseAccessToken(t, tok.AccessToken)
	l := as.next(t, 1)[0]
	wantLine(t, l, audit.EventToken, audit.StatusSuccess, "success")
	if l.GrantType != "client_credentials" || l.ClientID != ccClientID || l.User.Username != "client:"+ccClientID ||
		l.JTI != claims["jti"] || strings.Join(l.Scopes, " ") != "orders:read" || len(l.Audience) == 0 {
		t.Errorf("client_credentials line %+v (jti %v)", l, claims["jti"])
	}

	if _, err := ts.ccConfig(ccClientID, "wrong-secret-0123456789", "orders:read").Token(ctx(t)); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	l = as.next(t, 1)[0]
	wantLine(t, l, audit.EventToken, audit.StatusFailure, ErrInvalidClient)
	if l.ClientID != ccClientID || l.SecurityEvent != EventClientAuthFailed || l.ResponseStatus.Code != http.StatusUnauthorized || l.ResponseStatus.Message == "" {
		t.Errorf("refused line %+v", l)
	}

	// A grant the client may not use, and a malformed request: refused
	// before any grant runs, still one line each.
	resp := ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"authorization_code"}}, ccClientID, ccSecret)
	resp.Body.Close()
	l = as.next(t, 1)[0]
	wantLine(t, l, audit.EventToken, audit.StatusFailure, ErrUnauthorizedClient)
	if l.GrantType != "authorization_code" {
		t.Errorf("grant %q", l.GrantType)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+endpoints.TokenPath, strings.NewReader("grant_type=client_credentials&grant_type=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantLine(t, as.next(t, 1)[0], audit.EventToken, audit.StatusFailure, ErrInvalidRequest)

	// Introspection: refused is a line, answered is not.
	resp = ts.postForm(t, endpoints.IntrospectPath, url.Values{"token": {tok.AccessToken}}, ccClientID, "wrong-secret-0123456789")
	resp.Body.Close()
	wantLine(t, as.next(t, 1)[0], audit.EventIntrospection, audit.StatusFailure, ErrInvalidClient)
	ts.introspect(t, tok.AccessToken)
	as.next(t, 0)

	// The caller's trace ID, even with tracing off.
	req, _ = http.NewRequest(http.MethodPost, ts.URL+endpoints.TokenPath, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.SetBasicAuth(ccClientID, ccSecret)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l := as.next(t, 1)[0]; l.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("traceID %q", l.TraceID)
	}
	as.assertNoSecrets(t, ccSecret, tok.AccessToken)
}

// A person's flow: login refused and accepted, consent, the code
// redeemed, refreshed, revoked; consent denied.
func TestAuditLogRecordsAPersonsFlow(t *testing.T) {
	as := newAuditedServer(t)
	ts := as.testServer
	b := newBrowser(t, ts)
	cfg := ts.webConfig("orders:read")
	verifier := oauth2.GenerateVerifier()

	resp, _ := b.get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	_, page := b.get(location(t, resp).String())
	f := hiddenFields(page)
	f.Set("username", testUser)
	f.Set("password", "not the password")
	resp, page = b.post(ts.URL+endpoints.LoginPath, f)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	f = hiddenFields(page)
	f.Set("username", "nobody-"+testPassword) // a password typed as the username
	f.Set("password", "x")
	b.post(ts.URL+endpoints.LoginPath, f)
	lines := as.next(t, 2)
	wantLine(t, lines[0], audit.EventLogin, audit.StatusFailure, "invalid_credentials")
	if lines[0].LoginName != testUser || lines[0].ClientID != webClientID || lines[0].User.Username != "" {
		t.Errorf("failed login line %+v", lines[0])
	}
	if lines[1].LoginName != "" {
		t.Errorf("a name that is no account was written: %+v", lines[1])
	}

	back := b.authorize(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "approve", false)
	lines = as.next(t, 2)
	wantLine(t, lines[0], audit.EventLogin, audit.StatusSuccess, "success")
	if lines[0].User.Username != testSubject || lines[0].LoginName != testUser || lines[0].ClientID != webClientID {
		t.Errorf("login line %+v", lines[0])
	}
	wantLine(t, lines[1], audit.EventConsent, audit.StatusSuccess, "success")
	if lines[1].User.Username != testSubject || strings.Join(lines[1].Scopes, " ") != "orders:read" {
		t.Errorf("consent line %+v", lines[1])
	}

	code := back.Query().Get("code")
	tok, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	l := as.next(t, 1)[0]
	wantLine(t, l, audit.EventToken, audit.StatusSuccess, "success")
	if l.GrantType != "authorization_code" || l.User.Username != testSubject || l.JTI == "" || l.GrantID == "" {
		t.Errorf("code redemption line %+v", l)
	}
	family := l.GrantID

	next, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	l = as.next(t, 1)[0]
	if l.GrantType != "refresh_token" || l.GrantID != family || l.ResponseStatus.Status != audit.StatusSuccess {
		t.Errorf("refresh line %+v", l)
	}
	resp = ts.postForm(t, endpoints.RevokePath, url.Values{"token": {next.RefreshToken}}, webClientID, webSecret)
	resp.Body.Close()
	l = as.next(t, 1)[0]
	wantLine(t, l, audit.EventRevocation, audit.StatusSuccess, "success")
	if l.GrantID != family || l.ClientID != webClientID || l.User.Username != testSubject {
		t.Errorf("revocation line %+v", l)
	}

	if _, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("a replayed code was redeemed")
	}
	l = as.next(t, 1)[0]
	wantLine(t, l, audit.EventToken, audit.StatusFailure, ErrInvalidGrant)
	if l.SecurityEvent != EventCodeReplay {
		t.Errorf("replay line %+v", l)
	}

	b.authorize(cfg.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)), "deny", false)
	l = as.next(t, 1)[0] // the session is still live: no login
	wantLine(t, l, audit.EventConsent, audit.StatusFailure, ErrAccessDenied)

	as.assertNoSecrets(t, webSecret, testPassword, code, verifier, tok.AccessToken, tok.RefreshToken, next.AccessToken, next.RefreshToken)
}

// assertNoSecrets fails if any of secrets, or a cookie value the
// browser pages set, is anywhere in the audit stream.
func (as *auditedServer) assertNoSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	all := as.buf.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Errorf("the audit log carries a secret (%d bytes)", len(s))
		}
	}
}
