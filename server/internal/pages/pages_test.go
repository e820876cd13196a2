package pages

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

const (
	formPostScriptTag = "<script>{{.Script}}</script>"
	// clientLogoTag is the consent page's one image, which its CSP
	// allows by exact URL (TestImageSource).
	clientLogoTag = `<img class="client-logo" id="client-logo" src="{{.ClientLogo}}" alt="" width="56" height="56">`
	// brandLogoTag and brandStyleTag are the brand's logo and colours,
	// allowed by exact URL and by hash (TestBrandedPage).
	brandLogoTag  = `<img class="brand-logo" id="brand-logo" src="{{.BrandLogo}}" alt="" width="32" height="32">`
	brandStyleTag = `<style>{{.BrandCSS}}</style>`
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
		// The form_post page's one script, which its own CSP allows by
		// hash (TestFormPostPage); no other page has script-src.
		src = []byte(strings.NewReplacer(formPostScriptTag, "", clientLogoTag, "", brandLogoTag, "", brandStyleTag, "").Replace(string(src)))
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

// The form_post page (OAuth 2.0 Form Post Response Mode) posts its fields
// to the client's redirect URI with the one script its CSP allows by hash:
// the hash is of the script the page carries, the form may go to the
// client's origin and nowhere else, and a value cannot break out of its
// field.
func TestFormPostPage(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	p.RenderFormPost(w, "https://app.example/cb?tenant=1", []HiddenField{
		{"code", "abc"}, {"state", `"><script>alert(1)</script>`}, {"iss", "https://id.example"},
	}, Data{Issuer: "https://id.example"})
	h, body := w.Result().Header, w.Body.String()
	m := regexp.MustCompile(`<script>([^<]*)</script>`).FindAllStringSubmatch(body, -1)
	if len(m) != 1 {
		t.Fatalf("want exactly one script, got %d: %s", len(m), body)
	}
	wantCSP := "default-src 'none'; script-src " + sourceHash([]byte(m[0][1])) + "; style-src " + p.StyleSource() +
		"; form-action https://app.example; frame-ancestors 'none'; base-uri 'none'"
	if csp := h.Get("Content-Security-Policy"); csp != wantCSP {
		t.Errorf("CSP\n %s\nwant\n %s", csp, wantCSP)
	}
	if p.FormPostScriptSource() != sourceHash([]byte(m[0][1])) {
		t.Error("FormPostScriptSource is not the hash of the page's script")
	}
	for _, want := range []string{
		`<form method="post" action="https://app.example/cb?tenant=1" id="response">`,
		`<input type="hidden" name="code" value="abc">`,
		`<input type="hidden" name="state" value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">`,
		`<noscript>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	if w.Code != http.StatusOK || h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" || h.Get("Strict-Transport-Security") == "" {
		t.Errorf("status %d, headers %v", w.Code, h)
	}
}

// A logo is allowed by its exact https URL, query left out (no source
// expression has one); anything else is no image at all, and the page
// then shows none: the CSP names no img-src.
func TestImageSource(t *testing.T) {
	for in, want := range map[string]string{
		"https://cdn.example/logo.png":          "https://cdn.example/logo.png",
		"https://cdn.example:8443/a/b.svg?v=2":  "https://cdn.example:8443/a/b.svg",
		"https://cdn.example":                   "https://cdn.example/",
		"https://cdn.example/a%20b.png":         "https://cdn.example/a%20b.png",
		"http://cdn.example/logo.png":           "",
		"data:image/png;base64,AAAA":            "",
		"https://cdn.example/x.png; script-src": "",
		"https://user@cdn.example/x.png":        "",
		"https://cdn.example/x.png'":            "",
		"":                                      "",
	} {
		if got := ImageSource(in); got != want {
			t.Errorf("ImageSource(%q) = %q, want %q", in, got, want)
		}
	}
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for logo, img := range map[string]string{"https://cdn.example/logo.png?v=1": "; img-src https://cdn.example/logo.png;", "javascript:alert(1)": ""} {
		w := httptest.NewRecorder()
		p.Render(w, http.StatusOK, "consent", "https://app.example/cb", Data{Title: "t", Issuer: "https://id.example", ClientName: "App", ClientLogo: logo})
		csp, body := w.Result().Header.Get("Content-Security-Policy"), w.Body.String()
		if img != "" && (!strings.Contains(csp, img) || !strings.Contains(body, `src="https://cdn.example/logo.png?v=1"`)) {
			t.Errorf("logo %s: CSP %q; page shows it: %v", logo, csp, strings.Contains(body, "client-logo"))
		}
		if img == "" && (strings.Contains(csp, "img-src") || strings.Contains(body, "<img")) {
			t.Errorf("logo %s: CSP %q, page %s", logo, csp, body)
		}
	}
}
