package pages

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkNegotiate is the language choice every page makes: a browser's
// typical Accept-Language, no ui_locales.
func BenchmarkNegotiate(b *testing.B) {
	langs, err := LoadLanguages()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if langs.Negotiate("", "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", "en").Tag != "de" {
			b.Fatal("not German")
		}
	}
}

// BenchmarkRenderBrandedConsent renders a branded German consent page:
// the brand's stylesheet and its hash are made per page.
func BenchmarkRenderBrandedConsent(b *testing.B) {
	p, err := New()
	if err != nil {
		b.Fatal(err)
	}
	d := Data{Title: "Allow access", Issuer: "https://id.example", ClientName: "Orders", Username: "alice", Lang: p.Languages.Get("de"),
		Brand: Brand{Name: "Example Corp", Logo: "https://cdn.example/logo.svg", Primary: "#0b5fff", Accent: "#ffb000"}}
	for b.Loop() {
		p.Render(httptest.NewRecorder(), http.StatusOK, "consent", "https://app.example/cb", d)
	}
}
