package pages

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// verbs are a message's fmt verbs: a translation must use the same
// arguments, and may reorder them with %[n]s.
var verbs = regexp.MustCompile(`%(?:\[(\d+)\])?([a-z])`)

// messageVerbs are s's verbs as "n:verb" by argument number, sorted.
func messageVerbs(s string) []string {
	var out []string
	next := 1
	for _, m := range verbs.FindAllStringSubmatch(s, -1) {
		n := next
		if m[1] != "" {
			n, _ = strconv.Atoi(m[1])
		}
		next = n + 1
		out = append(out, strconv.Itoa(n)+":"+m[2])
	}
	slices.Sort(out)
	return out
}

// Every language has every English message, with the same arguments, and
// nothing else; every message a template shows is in English's list.
func TestEveryCatalogueHasEveryMessage(t *testing.T) {
	langs, err := LoadLanguages()
	if err != nil {
		t.Fatal(err)
	}
	en := langs.Get(SourceLanguage)
	if len(langs.Tags()) < 2 {
		t.Fatalf("languages %v: English and at least one more", langs.Tags())
	}
	for _, tag := range langs.Tags() {
		c := langs.Get(tag)
		for _, k := range en.Keys() {
			got, ok := c.messages[k]
			switch {
			case !ok || strings.TrimSpace(got) == "":
				t.Errorf("locales/%s.json lacks %q", tag, k)
			case !slices.Equal(messageVerbs(got), messageVerbs(k)):
				t.Errorf("locales/%s.json: %q has arguments %v, English %q has %v", tag, got, messageVerbs(got), k, messageVerbs(k))
			}
		}
		for _, k := range c.Keys() {
			if _, ok := en.messages[k]; !ok {
				t.Errorf("locales/%s.json has %q, which English does not (a stale message?)", tag, k)
			}
		}
	}
	src, err := templateFS.ReadFile("templates/layout.html")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`\.(?:T|H) "([^"]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(used) < 25 {
		t.Fatalf("found %d messages in the templates", len(used))
	}
	for _, m := range used {
		if _, ok := en.messages[m[1]]; !ok {
			t.Errorf("the templates show %q, which is not in locales/en.json", m[1])
		}
	}
}

// The pages' language: ui_locales first (the first tag the server has,
// or a close one), then Accept-Language by quality, then the server's
// default; malformed input is skipped.
func TestNegotiate(t *testing.T) {
	langs, err := LoadLanguages()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ui, accept, def, want string }{
		{"", "", "", "en"},
		{"", "", "de", "de"},
		{"", "", "fr", "fr"},
		{"", "", "xx", "en"},
		{"de", "", "en", "de"},
		{"de-CH", "", "en", "de"},
		{"es-MX de en", "", "en", "de"},
		{"fr-CA de en", "", "en", "fr"},
		{"en", "de", "de", "en"},
		{"es", "de-AT,de;q=0.9,en;q=0.5", "en", "de"},
		{"", "es;q=1, de;q=0.8, en;q=0.1", "en", "de"},
		{"", "fr-BE, de;q=0.8", "de", "fr"},
		{"", "en-GB,en;q=0.9,de;q=0.8", "de", "en"},
		{"", "es, it", "de", "de"},
		{"", "*", "de", "de"},
		{"!!! \x00", "de;q=garbage", "en", "en"},
		{"zz-ZZZZ-9", "de", "en", "de"},
	} {
		if got := langs.Negotiate(tc.ui, tc.accept, tc.def).Tag; got != tc.want {
			t.Errorf("Negotiate(%q, %q, %q) = %s, want %s", tc.ui, tc.accept, tc.def, got, tc.want)
		}
	}
}

// A page speaks its language: <html lang>, Content-Language, its texts;
// arguments are escaped, markup the template builds is kept, and a text
// no catalogue has (an English error_description) passes unchanged.
func TestRenderInLanguage(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	de := p.Languages.Get("de")
	w := httptest.NewRecorder()
	p.Render(w, http.StatusOK, "consent", "", Data{Title: "Allow access", Issuer: "https://id.example", Lang: de, ClientName: "<Orders>", Username: "alice"})
	body := w.Body.String()
	for _, want := range []string{
		`<html lang="de">`, "<title>Zugriff erlauben · Gatehouse</title>",
		`<strong>&lt;Orders&gt;</strong> möchte auf Ihr Konto <span class="who">(alice)</span> zugreifen.`,
		`value="approve" class="primary">Erlauben</button>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("German consent page lacks %s:\n%s", want, body)
		}
	}
	if got := w.Result().Header.Get("Content-Language"); got != "de" {
		t.Errorf("Content-Language %q", got)
	}
	w = httptest.NewRecorder()
	p.Render(w, http.StatusBadRequest, "error", "", Data{Title: "Invalid request", Error: "The application's request could not be used: %s.", ErrorArgs: []any{"request is not a JWT <b>"}, Lang: de})
	if want := "Die Anfrage der Anwendung konnte nicht verwendet werden: request is not a JWT &lt;b&gt;."; !strings.Contains(w.Body.String(), want) {
		t.Errorf("error page lacks %s:\n%s", want, w.Body.String())
	}
	w = httptest.NewRecorder()
	p.Render(w, http.StatusBadRequest, "error", "", Data{Title: "Invalid request", Error: "redirect_uri has 100% of nothing", Lang: de})
	if !strings.Contains(w.Body.String(), "<title>Ungültige Anfrage · Gatehouse</title>") || !strings.Contains(w.Body.String(), "redirect_uri has 100% of nothing") {
		t.Errorf("untranslated description changed:\n%s", w.Body.String())
	}
}

// A catalogue's file name is its language tag, and English must exist.
func TestLoadLanguagesRefusesBadFiles(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no English":        {"locales/de.json": {Data: []byte(`{}`)}},
		"not a tag":         {"locales/en.json": {Data: []byte(`{}`)}, "locales/german.json": {Data: []byte(`{}`)}},
		"not canonical":     {"locales/en.json": {Data: []byte(`{}`)}, "locales/pt_br.json": {Data: []byte(`{}`)}},
		"not a JSON object": {"locales/en.json": {Data: []byte(`["Sign in"]`)}},
	} {
		if _, err := loadLanguages(fsys); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
