package pages

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// No template carries inline script, event handlers, style attributes or
// anything loaded from elsewhere, in any branch: the CSP forbids them all
// (server's TestPagesSendStrictCSP checks the rendered pages).
func TestTemplatesCarryNothingTheCSPForbids(t *testing.T) {
	inline := regexp.MustCompile(`(?i)<script|\son[a-z]+\s*=|\sstyle\s*=|javascript:|<link|<img|<iframe|<object|<embed|@import|url\(`)
	n := 0
	err := fs.WalkDir(templateFS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		src, _ := templateFS.ReadFile(path)
		if m := inline.FindString(string(src)); m != "" {
			t.Errorf("template %s carries %q", path, m)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walked %d templates: %v", n, err)
	}
}

// A page allows its stylesheet by hash, the client's origin as a
// form-action, and nothing else; HSTS only under an https issuer.
func TestRenderHeaders(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		issuer, redirectURI, formAction string
		hsts                            bool
	}{
		{"https://id.example", "https://app.example/cb?x=1", "form-action 'self' https://app.example;", true},
		{"http://127.0.0.1:8080", "com.example.app:/cb", "form-action 'self' com.example.app:;", false},
		{"https://id.example", "https://bad;host/cb", "form-action 'self';", true},
		{"https://id.example", "", "form-action 'self';", true},
	} {
		w := httptest.NewRecorder()
		p.Render(w, http.StatusOK, "error", tc.redirectURI, Data{Title: "t", Error: "e", Issuer: tc.issuer})
		h := w.Result().Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, tc.formAction) || !strings.Contains(csp, "style-src "+p.StyleSource()+";") {
			t.Errorf("%s: CSP %q, want %q and the stylesheet's hash", tc.redirectURI, csp, tc.formAction)
		}
		if got := h.Get("Strict-Transport-Security") != ""; got != tc.hsts {
			t.Errorf("%s: HSTS %v, want %v", tc.issuer, got, tc.hsts)
		}
		if w.Code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(w.Body.String(), "<style>") {
			t.Errorf("rendered %d %q: %.200s", w.Code, h.Get("Content-Type"), w.Body.String())
		}
	}
}
