package cors

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// An allowed origin gets Access-Control-Allow-Origin and, on a preflight,
// the methods, with the request answered; any other origin gets no CORS
// header, and its preflight is refused. Every answer varies by Origin.
func TestApply(t *testing.T) {
	allowed := func(o string) bool { return o == "https://app.example" }
	for _, tc := range []struct {
		name, method, origin string
		answered             bool
		status               int
		allowOrigin, methods string
	}{
		{"request from an allowed origin", http.MethodPost, "https://app.example", false, 0, "https://app.example", ""},
		{"preflight from an allowed origin", http.MethodOptions, "https://app.example", true, http.StatusNoContent, "https://app.example", "GET, POST"},
		{"request from another origin", http.MethodPost, "https://evil.example", false, 0, "", ""},
		{"preflight from another origin", http.MethodOptions, "https://evil.example", true, http.StatusForbidden, "", ""},
		{"request without an origin", http.MethodPost, "", false, 0, "", ""},
		{"preflight without an origin", http.MethodOptions, "", true, http.StatusForbidden, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/token", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			answered := Apply(w, r, allowed, "GET, POST")
			h := w.Result().Header
			if answered != tc.answered || (answered && w.Code != tc.status) {
				t.Errorf("answered %v with %d, want %v with %d", answered, w.Code, tc.answered, tc.status)
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.allowOrigin)
			}
			if got := h.Get("Access-Control-Allow-Methods"); got != tc.methods {
				t.Errorf("Access-Control-Allow-Methods %q, want %q", got, tc.methods)
			}
			if h.Get("Vary") != "Origin" {
				t.Errorf("Vary %q, want Origin", h.Get("Vary"))
			}
		})
	}
}
