package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// k8sEvent is the part of audit.k8s.io/v1 Event a line shares, decoded
// the way Kubernetes tooling would read it.
type k8sEvent struct {
	Kind                     string    `json:"kind"`
	APIVersion               string    `json:"apiVersion"`
	Level                    string    `json:"level"`
	AuditID                  string    `json:"auditID"`
	Stage                    string    `json:"stage"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
	StageTimestamp           time.Time `json:"stageTimestamp"`
	User                     struct {
		Username string `json:"username"`
	} `json:"user"`
	SourceIPs      []string `json:"sourceIPs"`
	UserAgent      string   `json:"userAgent"`
	ResponseStatus struct {
		Status  string `json:"status"`
		Code    int    `json:"code"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"responseStatus"`
	ObjectRef *struct {
		Resource, Namespace, Name, APIGroup, APIVersion string
	} `json:"objectRef"`

	Event            string   `json:"event"`
	TraceID          string   `json:"traceID"`
	Issuer           string   `json:"issuer"`
	ClientID         string   `json:"clientID"`
	LoginName        string   `json:"loginName"`
	IdentityProvider string   `json:"identityProvider"`
	GrantType        string   `json:"grantType"`
	Scopes           []string `json:"scopes"`
	Audience         []string `json:"audience"`
	JTI              string   `json:"jti"`
	GrantID          string   `json:"grantID"`
	SecurityEvent    string   `json:"securityEvent"`
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func decode(t *testing.T, line []byte) k8sEvent {
	t.Helper()
	var e k8sEvent
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return e
}

// A line decodes as JSON with every field where the schema says, under
// the Kubernetes names where there is one, and ends in one newline.
func TestEventLineSchema(t *testing.T) {
	received := time.Date(2026, 12, 7, 10, 0, 0, 123456789, time.UTC)
	e := Event{
		Event: EventToken, Received: received, Now: received.Add(1500 * time.Microsecond),
		TraceID: [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		Issuer:  "https://auth.example.com", ClientID: "shop.storefront", Subject: "alice-subject", LoginName: "alice",
		SourceIP: netip.MustParseAddr("203.0.113.9"), UserAgent: "curl/8.5\n\"x\"",
		GrantType: "authorization_code", Scopes: []string{"openid", "orders:read"}, Audience: []string{"https://orders"},
		JTI: "jti-1", GrantID: "fam-1", Failure: true, Code: 400, Reason: "invalid_grant", Message: "the code was used", SecurityEvent: "code_replay",
	}
	line := e.AppendJSON(nil)
	if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", line)
	}
	got := decode(t, line)
	if got.Kind != "Event" || got.APIVersion != APIVersion || got.Level != "Metadata" || got.Stage != "ResponseComplete" || !uuidV4.MatchString(got.AuditID) {
		t.Errorf("header fields: %+v", got)
	}
	if !got.RequestReceivedTimestamp.Equal(received.Truncate(time.Microsecond)) || got.StageTimestamp.Sub(got.RequestReceivedTimestamp) != 1500*time.Microsecond {
		t.Errorf("timestamps %v %v", got.RequestReceivedTimestamp, got.StageTimestamp)
	}
	if got.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || got.User.Username != "alice-subject" || got.LoginName != "alice" ||
		len(got.SourceIPs) != 1 || got.SourceIPs[0] != "203.0.113.9" || got.UserAgent != "curl/8.5\n\"x\"" {
		t.Errorf("who: %+v", got)
	}
	if got.Event != EventToken || got.Issuer != e.Issuer || got.ClientID != e.ClientID || got.GrantType != e.GrantType ||
		strings.Join(got.Scopes, " ") != "openid orders:read" || got.Audience[0] != "https://orders" || got.JTI != "jti-1" || got.GrantID != "fam-1" {
		t.Errorf("what: %+v", got)
	}
	if s := got.ResponseStatus; s.Status != StatusFailure || s.Code != 400 || s.Reason != "invalid_grant" || s.Message != "the code was used" || got.SecurityEvent != "code_replay" {
		t.Errorf("status: %+v", got.ResponseStatus)
	}
	if got.ObjectRef != nil {
		t.Errorf("objectRef without an object: %+v", got.ObjectRef)
	}

	op := Event{Event: EventClientSecret, Reason: "Rotated", Message: "rotated", Object: &ObjectRef{Resource: "oauthclients", Namespace: "shop", Name: "storefront", APIGroup: "oauth.gatehouse.dev", APIVersion: "v1alpha1"}}
	o := decode(t, op.AppendJSON(nil))
	if o.ObjectRef == nil || o.ObjectRef.Name != "storefront" || o.ObjectRef.Resource != "oauthclients" || o.ResponseStatus.Status != StatusSuccess || o.User.Username != "" {
		t.Errorf("operator line: %+v", o)
	}
	if strings.Contains(op.String(), `"user"`) || strings.Contains(op.String(), `"sourceIPs"`) || strings.Contains(op.String(), `"code"`) {
		t.Errorf("empty fields written: %s", op.String())
	}
}

func TestAuditIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		e := Event{Event: EventLogin}
		id := decode(t, e.AppendJSON(nil)).AuditID
		if seen[id] {
			t.Fatalf("auditID %s twice", id)
		}
		seen[id] = true
	}
}

// Strings someone else chose are bounded.
func TestLongValuesBounded(t *testing.T) {
	e := Event{Event: EventToken, ClientID: strings.Repeat("c", 5000), UserAgent: strings.Repeat("u", 5000)}
	got := decode(t, e.AppendJSON(nil))
	if len(got.ClientID) != maxValue || len(got.UserAgent) != maxValue {
		t.Errorf("clientID %d, userAgent %d bytes", len(got.ClientID), len(got.UserAgent))
	}
}

func TestParseTraceParent(t *testing.T) {
	want := [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", true}, // a later version may add fields
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", false},     // version 00 has none
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false}, // lowercase only
		{"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false},
		{"", false},
	} {
		id, ok := ParseTraceParent(tc.v)
		if ok != tc.ok || (ok && id != want) {
			t.Errorf("%q: %x %v", tc.v, id, ok)
		}
	}
}

// Formatting a line allocates nothing (the token path is allocation-tuned).
func TestAppendJSONAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not the product's under the race detector; make test runs this")
	}
	e := Event{Event: EventToken, Issuer: "https://auth.example.com", ClientID: "c", Subject: "client:c",
		SourceIP: netip.MustParseAddr("127.0.0.1"), Scopes: []string{"a"}, Audience: []string{"b"}, JTI: "j"}
	buf := make([]byte, 0, 2048)
	if n := testing.AllocsPerRun(100, func() { buf = e.AppendJSON(buf[:0]) }); n != 0 {
		t.Errorf("%v allocations per line", n)
	}
}

// syncBuffer is a bytes.Buffer safe for the Log's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines from many goroutines arrive whole, each once, and in each
// goroutine's order.
func TestLogKeepsEveryLineInOrder(t *testing.T) {
	var out syncBuffer
	l := New(&out, Options{MaxPending: 4096})
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				l.Record(&Event{Event: EventToken, ClientID: fmt.Sprintf("w%d", w), JTI: fmt.Sprint(i)})
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	n := 0
	for sc.Scan() {
		e := decode(t, sc.Bytes())
		if want := fmt.Sprint(next[e.ClientID]); e.JTI != want {
			t.Fatalf("%s: jti %s after %s", e.ClientID, e.JTI, want)
		}
		next[e.ClientID]++
		n++
	}
	if n != writers*each {
		t.Fatalf("%d lines, want %d", n, writers*each)
	}
	if got := testutil.ToFloat64(l.events); got != writers*each {
		t.Errorf("gatehouse_audit_events_total %v", got)
	}
}

// gate is a stream that accepts writes only when opened, failing or
// blocking until then.
type gate struct {
	mu     sync.Mutex
	open   chan struct{}
	fail   atomic.Bool
	writes [][]byte
}

func (g *gate) Write(p []byte) (int, error) {
	if g.fail.Load() {
		return 0, errors.New("disk full")
	}
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes = append(g.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (g *gate) lines() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, w := range g.writes {
		n += bytes.Count(w, []byte("\n"))
	}
	return n
}

// A stream that stops accepting makes Record wait once the queue is full,
// counting the time, and nothing is lost when it accepts again.
func TestSlowStreamBlocksRecordNeverDrops(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	l := New(g, Options{MaxPending: 1}) // every line waits for the one before
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			l.Record(&Event{Event: EventLogin})
		}
	}()
	select {
	case <-done:
		t.Fatal("Record returned while the stream accepted nothing")
	case <-time.After(200 * time.Millisecond):
	}
	close(g.open)
	<-done
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := g.lines(); n != 3 {
		t.Errorf("%d lines written, want 3", n)
	}
	if b := testutil.ToFloat64(l.blocked); b < 0.1 {
		t.Errorf("gatehouse_audit_blocked_seconds_total %v, want the time Record waited", b)
	}
}

// A failing stream is retried with the same bytes, counted and reported;
// the lines arrive once it works again.
func TestFailedWriteRetried(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	g.fail.Store(true)
	var reported atomic.Int32
	l := New(g, Options{OnError: func(error) { reported.Add(1) }})
	l.Record(&Event{Event: EventRevocation, JTI: "a"})
	deadline := time.Now().Add(5 * time.Second)
	for reported.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	g.fail.Store(false)
	l.Record(&Event{Event: EventRevocation, JTI: "b"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if reported.Load() == 0 || testutil.ToFloat64(l.writeErrors) == 0 {
		t.Error("the failed write was not reported and counted")
	}
	var all []byte
	for _, w := range g.writes {
		all = append(all, w...)
	}
	lines := strings.Split(strings.TrimSpace(string(all)), "\n")
	if len(lines) != 2 || decode(t, []byte(lines[0])).JTI != "a" || decode(t, []byte(lines[1])).JTI != "b" {
		t.Errorf("written: %q", all)
	}
}

func TestOpenDestinations(t *testing.T) {
	if l, err := Open(Off, io.Discard, io.Discard, Options{}); l != nil || err != nil {
		t.Errorf("off: %v %v", l, err)
	}
	var nilLog *Log
	nilLog.Record(&Event{Event: EventLogin}) // a nil Log records nothing, without panicking
	if _, err := Open("", io.Discard, io.Discard, Options{}); err == nil {
		t.Error("an empty destination was accepted")
	}
	var stdout, stderr syncBuffer
	for dest, want := range map[string]*syncBuffer{Stdout: &stdout, Stderr: &stderr} {
		l, err := Open(dest, &stdout, &stderr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.Record(&Event{Event: EventLogin, ClientID: dest})
		_ = l.Close()
		if !strings.Contains(want.String(), `"clientID":"`+dest+`"`) {
			t.Errorf("%s: %q", dest, want.String())
		}
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	for range 2 { // appended to, not truncated
		l, err := Open(path, io.Discard, io.Discard, Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.Record(&Event{Event: EventLogout})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if bytes.Count(b, []byte("\n")) != 2 || fi.Mode().Perm() != 0o600 {
		t.Errorf("file: %d lines, mode %v", bytes.Count(b, []byte("\n")), fi.Mode())
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "audit.log"), io.Discard, io.Discard, Options{}); err == nil {
		t.Error("a file in a missing directory was accepted")
	}
}

func BenchmarkRecord(b *testing.B) {
	l := New(io.Discard, Options{})
	defer func() { _ = l.Close() }()
	e := Event{Event: EventToken, Issuer: "https://auth.example.com", ClientID: "shop.storefront", Subject: "client:shop.storefront",
		SourceIP: netip.MustParseAddr("127.0.0.1"), UserAgent: "Go-http-client/1.1", GrantType: "client_credentials",
		Scopes: []string{"orders:read"}, Audience: []string{"https://orders"}, JTI: "Zm9vYmFyYmF6cXV4cXV1eA"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Record(&e)
		}
	})
}
