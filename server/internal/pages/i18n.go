package pages

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/text/language"
)

// The pages' messages, a JSON file per language under locales/, named by
// its BCP 47 tag (locales/de.json). Each maps the English text, as the
// code and templates write it, to the language's text; en.json is the
// source list, mapped to itself (the English wording can change there
// without touching code). A message with arguments is a fmt format whose
// verbs may be indexed (%[2]s) where a language orders them differently.
//
//go:embed locales/*.json
var localeFS embed.FS

// SourceLanguage is the language the messages are written in.
const SourceLanguage = "en"

// Catalog is one language's messages.
type Catalog struct {
	// Tag is the language's BCP 47 tag, for <html lang>.
	Tag      string
	messages map[string]string
}

// Languages are the catalogues the pages can speak, and the matcher that
// picks one for a request.
type Languages struct {
	byTag   map[string]*Catalog
	tags    []language.Tag
	catalog []*Catalog // in tags' order
	// matchers by default language: a matcher's first tag is what it
	// returns when nothing matches.
	matchers map[string]language.Matcher
}

// LoadLanguages reads every catalogue under locales/.
func LoadLanguages() (*Languages, error) { return loadLanguages(localeFS) }

func loadLanguages(fsys fs.FS) (*Languages, error) {
	files, err := fs.Glob(fsys, "locales/*.json")
	if err != nil {
		return nil, err
	}
	l := &Languages{byTag: map[string]*Catalog{}, matchers: map[string]language.Matcher{}}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".json")
		tag, err := language.Parse(name)
		if err != nil || tag.String() != name {
			return nil, fmt.Errorf("%s: the file name must be a BCP 47 language tag such as de or pt-BR", f)
		}
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		c := &Catalog{Tag: name}
		if err := json.Unmarshal(b, &c.messages); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		l.byTag[name] = c
		l.tags = append(l.tags, tag)
		l.catalog = append(l.catalog, c)
	}
	if l.byTag[SourceLanguage] == nil {
		return nil, fmt.Errorf("locales/%s.json is missing", SourceLanguage)
	}
	for i, tag := range l.tags {
		// The default first, then the others in file order.
		order := append([]language.Tag{tag}, append(append([]language.Tag(nil), l.tags[:i]...), l.tags[i+1:]...)...)
		l.matchers[l.catalog[i].Tag] = language.NewMatcher(order)
	}
	return l, nil
}

// Tags are the languages' BCP 47 tags (ui_locales_supported).
func (l *Languages) Tags() []string {
	out := make([]string, len(l.catalog))
	for i, c := range l.catalog {
		out[i] = c.Tag
	}
	return out
}

// Supported are the BCP 47 tags of the catalogues the pages are built
// with (locales/*.json), for ui_locales_supported.
func Supported() []string {
	files, _ := fs.Glob(localeFS, "locales/*.json")
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = strings.TrimSuffix(path.Base(f), ".json")
	}
	return out
}

// Get is the catalogue of tag, or nil.
func (l *Languages) Get(tag string) *Catalog { return l.byTag[tag] }

// Negotiate picks the pages' language for a request, in this order:
//  1. the first of uiLocales (OpenID Connect Core §3.1.2.1: space-separated
//     BCP 47 tags in order of preference) that the server has, or that
//     is close enough (de-CH reads de);
//  2. the best of the browser's Accept-Language (RFC 9110 §12.5.4);
//  3. the server's default language, English when it has none.
//
// A malformed tag is skipped, never an error: the page is shown anyway.
func (l *Languages) Negotiate(uiLocales, acceptLanguage, defaultLanguage string) *Catalog {
	m, ok := l.matchers[defaultLanguage]
	if !ok {
		defaultLanguage = SourceLanguage
		m = l.matchers[SourceLanguage]
	}
	for _, s := range strings.Fields(uiLocales) {
		if tag, err := language.Parse(s); err == nil {
			if _, i, conf := m.Match(tag); conf != language.No {
				return l.inMatcherOrder(defaultLanguage, i)
			}
		}
	}
	if tags, _, err := language.ParseAcceptLanguage(acceptLanguage); err == nil && len(tags) > 0 {
		if _, i, conf := m.Match(tags...); conf != language.No {
			return l.inMatcherOrder(defaultLanguage, i)
		}
	}
	return l.byTag[defaultLanguage]
}

// inMatcherOrder maps the index a matcher returned to the catalogue.
func (l *Languages) inMatcherOrder(defaultLanguage string, i int) *Catalog {
	if i == 0 {
		return l.byTag[defaultLanguage]
	}
	var rest []*Catalog
	for _, c := range l.catalog {
		if c.Tag != defaultLanguage {
			rest = append(rest, c)
		}
	}
	return rest[i-1]
}

// Keys are the catalogue's messages (their English text).
func (c *Catalog) Keys() []string {
	out := make([]string, 0, len(c.messages))
	for k := range c.messages {
		out = append(out, k)
	}
	return out
}

// Text is msg in c's language, msg itself when c has no translation (or
// c is nil): a missing translation shows English, never a broken page.
func (c *Catalog) Text(msg string) string {
	if c != nil {
		if t, ok := c.messages[msg]; ok && t != "" {
			return t
		}
	}
	return msg
}

// T is msg in c's language, formatted with args when there are any. Text
// that is not a catalogue message (an English error_description from the
// protocol) comes through unchanged.
func (c *Catalog) T(msg string, args ...any) string {
	if len(args) == 0 {
		return c.Text(msg)
	}
	return fmt.Sprintf(c.Text(msg), args...)
}

// HTML is msg in c's language as HTML: the message is escaped, and so is
// every argument except those that are template.HTML (built by the
// template from escaped parts, e.g. a <strong> around the client's name).
func (c *Catalog) HTML(msg string, args ...any) template.HTML {
	escaped := make([]any, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case template.HTML:
			escaped[i] = string(a)
		default:
			escaped[i] = template.HTMLEscapeString(fmt.Sprint(a))
		}
	}
	format := template.HTMLEscapeString(c.Text(msg))
	if len(args) == 0 {
		return template.HTML(format) // escaped above
	}
	return template.HTML(fmt.Sprintf(format, escaped...)) // format and arguments escaped above
}
