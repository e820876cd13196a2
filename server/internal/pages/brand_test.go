package pages

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// A branded page shows the brand's name and logo and its colours as a
// second stylesheet; the CSP allows that stylesheet by its hash and the
// logo by its exact URL, next to the client's logo, and nothing else.
// What is not valid (a colour that would break out of the stylesheet, a
// logo that is not https) is left out, never written.
func TestBrandedPage(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	p.Render(w, http.StatusOK, "consent", "https://app.example/cb", Data{
		Title: "Allow access", Issuer: "https://id.example", ClientName: "Orders", ClientLogo: "https://cdn.example/orders.png",
		Brand: Brand{Name: "Example Corp", Logo: "https://brand.example/logo.svg?v=2", Primary: "#0B5FFF", Accent: "#ffb000"},
	})
	body, csp := w.Body.String(), w.Result().Header.Get("Content-Security-Policy")
	styles := regexp.MustCompile(`<style>([^<]*)</style>`).FindAllStringSubmatch(body, -1)
	if len(styles) != 2 {
		t.Fatalf("want the stylesheet and the brand's, got %d:\n%s", len(styles), body)
	}
	if brand := styles[1][1]; brand != ":root{--brand:#0B5FFF;--brand-ink:#fff;--focus:#ffb000;--accent:#ffb000;}" {
		t.Errorf("brand stylesheet %q", brand)
	}
	wantCSP := "default-src 'none'; script-src 'none'; style-src " + p.StyleSource() + " " + sourceHash([]byte(styles[1][1])) +
		"; img-src https://brand.example/logo.svg https://cdn.example/orders.png; form-action 'self' https://app.example; frame-ancestors 'none'; base-uri 'none'"
	if csp != wantCSP {
		t.Errorf("CSP\n %s\nwant\n %s", csp, wantCSP)
	}
	for _, want := range []string{
		"<title>Allow access · Example Corp</title>",
		`<img class="brand-logo" id="brand-logo" src="https://brand.example/logo.svg?v=2"`,
		`<span id="brand-name">Example Corp</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}

	w = httptest.NewRecorder()
	p.Render(w, http.StatusOK, "error", "", Data{Title: "Busy", Error: "e", Issuer: "https://id.example",
		Brand: Brand{Name: "<Corp>", Logo: "http://brand.example/logo.svg", Primary: "red;}body{display:none", Accent: "#12345"}})
	body, csp = w.Body.String(), w.Result().Header.Get("Content-Security-Policy")
	if strings.Count(body, "<style>") != 1 || strings.Contains(body, "display:none") || strings.Contains(body, "<img") ||
		strings.Contains(csp, "img-src") || strings.Count(csp, "'sha256-") != 1 {
		t.Errorf("invalid brand parts were written: CSP %q\n%s", csp, body)
	}
	if !strings.Contains(body, `<span class="logo">&lt;</span> <span id="brand-name">&lt;Corp&gt;</span>`) {
		t.Errorf("brand name not escaped, or no initial:\n%s", body)
	}
}

// Text on the primary colour is whichever of white and black contrasts
// more with it.
func TestInkOn(t *testing.T) {
	for bg, want := range map[string]string{
		"#000000": "#fff", "#0b5fff": "#fff", "#2f5bea": "#fff", "#b42318": "#fff",
		"#ffffff": "#000", "#ffb000": "#000", "#f4f6fb": "#000", "#00ff00": "#000",
	} {
		if got := inkOn(bg); got != want {
			t.Errorf("inkOn(%s) = %s, want %s", bg, got, want)
		}
	}
}
