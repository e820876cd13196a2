package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// brandLogoSVG is the brand's logo, served over https by the test.
const brandLogoSVG = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="#7a1fa2"/></svg>`

// In Chromium, a branded server's sign-in pages, asked for in German with
// ui_locales=de, are German (<html lang>, texts), show the brand's name,
// its logo (loaded from its https URL, the one image the CSP allows) and
// its colours (the primary button's background and text), and Chromium
// reports no CSP violation, while a canary page shows it would.
func TestBrandedGermanPagesInChromium(t *testing.T) {
	logo := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/corp.svg" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		fmt.Fprint(w, brandLogoSVG)
	}))
	t.Cleanup(logo.Close)
	ts := newTestServer(t)
	ts.update(func(s *config.Snapshot) {
		s.Branding = oauthv1.Branding{
			DisplayName: "Example Corp", LogoURL: oauthv1.DisplayURI(logo.URL + "/corp.svg?v=2"),
			PrimaryColor: "#7a1fa2", AccentColor: "#ffb000", DefaultLanguage: "en",
		}
	})
	app := newAppSite(t)
	// The logo's server has a test certificate.
	bctx, consoleProblems := headlessChromium(t, chromedp.Flag("ignore-certificate-errors", true))
	seen := app.cspCanary(t, bctx, consoleProblems)

	authURL := ts.webConfig("orders:read").AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("ui_locales", "de"))
	if err := chromedp.Do(bctx, chromedp.Navigate(authURL), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
		t.Fatal(err)
	}
	checkBrandedGermanPage(t, bctx, "Anmelden")
	err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("username"), testUser),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`button[name=decision][value=approve]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	checkBrandedGermanPage(t, bctx, "Zugriff erlauben?")

	// The same with the logo from a ConfigMap, served by the server.
	ts.update(func(s *config.Snapshot) {
		s.Branding.LogoURL = ""
		s.BrandLogo = &config.BrandLogo{Image: []byte(brandLogoSVG), ContentType: "image/svg+xml", Version: "0123456789abcdef"}
	})
	if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+endpoints.DevicePath+"?ui_locales=de"), chromedp.WaitVisible(chromedp.ID("user_code"))); err != nil {
		t.Fatal(err)
	}
	checkBrandedGermanPage(t, bctx, "Gerät verbinden")
	// The form's answer keeps the language of the page's ui_locales.
	err = chromedp.Do(bctx, chromedp.SendKeys(chromedp.ID("user_code"), "BCDF-GHJK"), chromedp.Submit(chromedp.ID("user_code")),
		chromedp.WaitVisible(chromedp.ID("device-error")))
	if err != nil {
		t.Fatal(err)
	}
	errText, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.ID("device-error")))
	if err != nil || !strings.HasPrefix(errText, "Dieser Code ist ungültig oder abgelaufen.") {
		t.Errorf("device page's answer to an unknown code: %q %v", errText, err)
	}
	var problems []string
	for _, p := range consoleProblems()[seen:] {
		// The answer to the unknown code is a 400 page, as it should be.
		if !strings.Contains(p, "status of 400") || !strings.Contains(p, endpoints.DevicePath) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		t.Errorf("Chromium reported problems on the branded pages: %q", problems)
	}
}

// brandedPage is what Chromium shows of a page's language and look.
type brandedPage struct {
	Lang, Heading, Brand, Button, ButtonInk string
	LogoWidth                               int
}

// checkBrandedGermanPage checks the page Chromium shows: German, with
// heading, the brand's name, its logo loaded and its colours.
func checkBrandedGermanPage(t *testing.T, bctx context.Context, heading string) {
	t.Helper()
	page, err := chromedp.Run(bctx, chromedp.Poll[brandedPage](`(() => {
		const logo = document.getElementById("brand-logo");
		if (!logo || !logo.complete) return null;
		const b = getComputedStyle(document.querySelector("button.primary"));
		return {Lang: document.documentElement.lang, Heading: document.getElementById("page-title").textContent,
			Brand: document.getElementById("brand-name").textContent, Button: b.backgroundColor, ButtonInk: b.color,
			LogoWidth: logo.naturalWidth};
	})()`, chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		html, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
		t.Fatalf("reading the page: %v\n%s", err, html)
	}
	// naturalWidth 0 would be a logo the browser refused or could not load.
	if want := (brandedPage{"de", heading, "Example Corp", "rgb(122, 31, 162)", "rgb(255, 255, 255)", 64}); page != want {
		t.Errorf("page %+v\nwant %+v", page, want)
	}
}
