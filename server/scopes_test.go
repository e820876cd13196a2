package server

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// uniqueScopes is n distinct scope-tokens of the given length, the input
// that made duplicate removal quadratic.
func uniqueScopes(n, length int) string {
	toks := make([]string, n)
	for i := range toks {
		id := fmt.Sprintf("s%d", i)
		toks[i] = id + strings.Repeat("x", max(0, length-len(id)))
	}
	return strings.Join(toks, " ")
}

func TestParseScope(t *testing.T) {
	cases := []struct {
		in       string
		want     []string
		errWords string // fragment of error_description; "" means accepted
	}{
		{"", nil, ""},
		{"orders:read", []string{"orders:read"}, ""},
		{"b a b a c", []string{"b", "a", "c"}, ""},
		{"a  b", nil, "empty entry"},
		{" a", nil, "empty entry"},
		{"a\tb", nil, "does not allow"},
		{`a"b`, nil, "does not allow"},
		{strings.Repeat("x", maxScopeLength), []string{strings.Repeat("x", maxScopeLength)}, ""},
		{strings.Repeat("x", maxScopeLength+1), nil, "longer than 128 characters"},
		{uniqueScopes(maxScopes, 2), nil, ""},
		{uniqueScopes(maxScopes+1, 2), nil, "lists 65 entries; at most 64"},
		// Duplicates count: the cap is on what the caller makes us read.
		{strings.TrimSpace(strings.Repeat("a ", maxScopes+1)), nil, "at most 64"},
		{uniqueScopes(maxScopes, maxScopeLength), nil, ""},
		{uniqueScopes(maxScopes, maxScopeLength) + "x", nil, "at most 64 scopes of at most 128 characters"},
		{uniqueScopes(4000, 11), nil, "47999 bytes long"},
	}
	for _, tc := range cases {
		got, e := parseScope(tc.in)
		name := tc.in
		if len(name) > 40 {
			name = fmt.Sprintf("%.40s... (%d bytes)", name, len(name))
		}
		switch {
		case tc.errWords == "" && e != nil:
			t.Errorf("%q: %v", name, e)
		case tc.errWords == "" && tc.want != nil && !slices.Equal(got, tc.want):
			t.Errorf("%q: got %q, want %q", name, got, tc.want)
		case tc.errWords != "" && e == nil:
			t.Errorf("%q: accepted %d scopes, want invalid_scope", name, len(got))
		case tc.errWords != "" && (e.Code != ErrInvalidScope || !strings.Contains(e.Description, tc.errWords)):
			t.Errorf("%q: got %s %q, want invalid_scope mentioning %q", name, e.Code, e.Description, tc.errWords)
		}
	}
}

// A scope parameter over the limits is refused with invalid_scope and a
// message, at /token (as a JSON error, through x/oauth2) and at
// /authorize (redirected back to the client).
func TestOversizedScopeRefused(t *testing.T) {
	ts := newTestServer(t)
	huge := strings.Fields(uniqueScopes(4000, 11)) // 48 KiB, the probe's input

	_, err := ts.ccConfig(ccClientID, ccSecret, huge...).Token(ctx(t))
	re := retrieveError(t, err)
	if re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != ErrInvalidScope || !strings.Contains(re.ErrorDescription, "at most 64 scopes") {
		t.Errorf("/token: %d %s %q, want 400 invalid_scope naming the limit", re.Response.StatusCode, re.ErrorCode, re.ErrorDescription)
	}

	authURL := ts.spaConfig(huge[:maxScopes+1]...).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	resp, _ := newBrowser(t, ts).get(authURL)
	q := location(t, resp).Query()
	if q.Get("error") != ErrInvalidScope || !strings.Contains(q.Get("error_description"), "at most 64") || q.Get("state") != "st" {
		t.Errorf("/authorize redirected with %v, want invalid_scope naming the limit", q)
	}
}

// FuzzParseScope: whatever the input, parseScope answers within the
// limits: either invalid_scope with a description, or distinct, valid
// scope-tokens in order of first appearance, no more than maxScopes.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"orders:read orders:write", "a a", "a  b", "", `"`, uniqueScopes(maxScopes, maxScopeLength), uniqueScopes(maxScopes+1, 1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, e := parseScope(s)
		if e != nil {
			if e.Code != ErrInvalidScope || e.Description == "" {
				t.Fatalf("error %+v", e)
			}
			return
		}
		if len(got) > maxScopes {
			t.Fatalf("%d scopes accepted", len(got))
		}
		seen := map[string]bool{}
		for _, sc := range got {
			if seen[sc] || sc == "" || len(sc) > maxScopeLength || strings.ContainsAny(sc, " \"\\") {
				t.Fatalf("accepted scope %q in %q", sc, got)
			}
			seen[sc] = true
		}
		// First-appearance order: the input with later duplicates dropped.
		var want []string
		for _, tok := range strings.Split(s, " ") {
			if !slices.Contains(want, tok) {
				want = append(want, tok)
			}
		}
		if s != "" && !slices.Equal(got, want) {
			t.Fatalf("parseScope(%q) = %q, want %q", s, got, want)
		}
	})
}

// BenchmarkParseScope shows the cost per scope staying flat as the number
// of scopes grows (linear parsing), and oversized input costing no more
// than a short one. Compare the ns/scope metric across sub-benchmarks; a
// quadratic parser shows it growing with n.
func BenchmarkParseScope(b *testing.B) {
	for _, n := range []int{1, 8, maxScopes} {
		s := uniqueScopes(n, 24)
		b.Run(fmt.Sprintf("scopes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, e := parseScope(s); e != nil {
					b.Fatal(e)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/scope")
		})
	}
	for _, size := range []int{48 << 10, 1 << 20} {
		s := uniqueScopes(size/12, 11)
		b.Run(fmt.Sprintf("oversized=%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, e := parseScope(s); e == nil {
					b.Fatal("oversized scope accepted")
				}
			}
		})
	}
}

// BenchmarkTokenOversizedScope is the probe's attack end to end: a 48 KiB
// scope parameter at /token costs about what a normal request does.
func BenchmarkTokenOversizedScope(b *testing.B) {
	srv, _ := benchServer(b, "ES256")
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {uniqueScopes(4000, 11)}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		w := &discard{h: http.Header{}}
		srv.ServeHTTP(w, newTokenHTTPRequest(form, ccClientID, ccSecret))
		if w.status != http.StatusBadRequest {
			b.Fatalf("status %d", w.status)
		}
	}
}
