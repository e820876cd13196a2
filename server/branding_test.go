package server

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// The sign-in pages speak the language the relying party asked for with
// ui_locales (OpenID Connect Core §3.1.2.1), on every page of that
// sign-in, else the browser's Accept-Language, else the server's
// spec.branding.defaultLanguage; the flow itself, driven by
// golang.org/x/oauth2, is the same in every language, and protocol error
// codes and descriptions stay English.
func TestPagesSpeakTheRequestedLanguage(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.webConfig("orders:read")
	const german, english = `<html lang="de">`, `<html lang="en">`
	for _, tc := range []struct {
		name, uiLocales, acceptLanguage, defaultLanguage string
		want                                             string
	}{
		{"ui_locales", "de", "en-US,en;q=0.9", "en", german},
		{"ui_locales, first the server has", "es-MX de-CH", "en", "en", german},
		{"ui_locales French", "fr-CA de", "de", "en", `<html lang="fr">`},
		{"Accept-Language", "", "es, de;q=0.8, en;q=0.1", "en", german},
		{"Accept-Language before the default", "es", "en-GB", "de", english},
		{"the server's default", "", "", "de", german},
		{"English", "", "", "", english},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.update(func(s *config.Snapshot) { s.Branding.DefaultLanguage = tc.defaultLanguage })
			b := newBrowser(t, ts)
			b.acceptLanguage = tc.acceptLanguage
			verifier := oauth2.GenerateVerifier()
			opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
			if tc.uiLocales != "" {
				opts = append(opts, oauth2.SetAuthURLParam("ui_locales", tc.uiLocales))
			}
			resp, _ := b.get(cfg.AuthCodeURL("st", opts...))
			resp, login := b.get(location(t, resp).String())
			if !strings.Contains(login, tc.want) || resp.Header.Get("Content-Language") != strings.Split(tc.want, `"`)[1] {
				t.Fatalf("login page is not %s (Content-Language %q):\n%.400s", tc.want, resp.Header.Get("Content-Language"), login)
			}
			if tc.want == german && !strings.Contains(login, ">Benutzername</label>") {
				t.Errorf("German login page without German labels:\n%s", login)
			}
			f := hiddenFields(login)
			f.Set("username", testUser)
			f.Set("password", testPassword)
			// The next pages of the sign-in keep its language, whatever
			// this request says.
			b.acceptLanguage = "en"
			resp, _ = b.post(ts.URL+endpoints.LoginPath, f)
			_, consent := b.get(location(t, resp).String())
			if tc.uiLocales != "" && !strings.Contains(consent, tc.want) {
				t.Fatalf("consent page of the same sign-in is not %s:\n%.400s", tc.want, consent)
			}
			f = hiddenFields(consent)
			f.Set("decision", "approve")
			resp, _ = b.post(ts.URL+endpoints.ConsentPath, f)
			code := location(t, resp).Query().Get("code")
			if _, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier)); err != nil {
				t.Fatalf("code from a %s sign-in: %v", tc.name, err)
			}
		})
	}

	ts.update(func(s *config.Snapshot) { s.Branding.DefaultLanguage = "en" })
	b := newBrowser(t, ts)
	// An error page before the client is known speaks ui_locales too.
	resp, page := b.get(ts.URL + endpoints.AuthorizePath + "?client_id=nobody&ui_locales=de")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "<title>Unbekannte Anwendung · Gatehouse</title>") {
		t.Errorf("unknown client with ui_locales=de: %d\n%s", resp.StatusCode, page)
	}
	// An error sent back to the client is for its developers: English.
	u := cfg.AuthCodeURL("st", oauth2.SetAuthURLParam("ui_locales", "de"),
		oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
	resp, _ = b.get(u)
	if q := location(t, resp).Query(); q.Get("error") != ErrInvalidRequest || q.Get("error_description") != "code_challenge_method must be S256" {
		t.Errorf("error redirect with ui_locales=de: %v", q)
	}
}

// The server's branding reaches every page: its name in the header and
// title, its logo and colours, allowed by the CSP (checked in Chromium by
// TestBrandedGermanPagesInChromium).
func TestPagesShowTheServersBranding(t *testing.T) {
	ts := newTestServer(t)
	ts.update(func(s *config.Snapshot) {
		s.Branding = oauthv1.Branding{DisplayName: "Example Corp", LogoURL: "https://cdn.example/corp.svg", PrimaryColor: "#7a1fa2", AccentColor: "#ffb000"}
	})
	b := newBrowser(t, ts)
	resp, page := b.get(ts.URL + endpoints.AuthorizePath + "?client_id=nobody")
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(page, "<title>Unknown application · Example Corp</title>") || !strings.Contains(page, `src="https://cdn.example/corp.svg"`) ||
		!strings.Contains(page, "--brand:#7a1fa2") || !strings.Contains(csp, "img-src https://cdn.example/corp.svg;") || strings.Count(csp, "'sha256-") != 2 {
		t.Errorf("branded error page: CSP %q\n%s", csp, page)
	}
}

// A logo from spec.branding.logoConfigMapRef is served by the server
// itself, with its version in the URL the pages show and allow in
// img-src; the response is a cacheable document (ETag, 304) whose own
// CSP sandboxes an SVG opened by itself. Without one there is nothing
// there.
func TestServedBrandLogo(t *testing.T) {
	ts := newTestServer(t)
	b := newBrowser(t, ts)
	resp, _ := b.get(ts.URL + endpoints.BrandLogoPath)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("no logo configured: %d", resp.StatusCode)
	}
	ts.update(func(s *config.Snapshot) {
		s.BrandLogo = &config.BrandLogo{Image: []byte(brandLogoSVG), ContentType: "image/svg+xml", Version: "0123456789abcdef"}
	})
	resp, page := b.get(ts.URL + endpoints.AuthorizePath + "?client_id=nobody")
	logoURL := ts.URL + endpoints.BrandLogoPath + "?v=0123456789abcdef"
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(page, `src="`+logoURL+`"`) || !strings.Contains(csp, "img-src "+ts.URL+endpoints.BrandLogoPath+";") {
		t.Errorf("page with a served logo: CSP %q\n%s", csp, page)
	}
	resp, body := b.get(logoURL)
	h := resp.Header
	if resp.StatusCode != http.StatusOK || body != brandLogoSVG || h.Get("Content-Type") != "image/svg+xml" || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
		h.Get("Cache-Control") != brandLogoCacheControl || h.Get("Etag") == "" {
		t.Fatalf("logo: %d %v %q", resp.StatusCode, h, body)
	}
	req, _ := http.NewRequest(http.MethodGet, logoURL, nil)
	req.Header.Set("If-None-Match", h.Get("Etag"))
	if resp, _ := b.do(req); resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, logoURL, nil)
	if resp, _ := b.do(req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}
