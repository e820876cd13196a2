// Package pages renders the token server's browser pages (login, consent,
// logout, errors) from embedded templates, with the security headers every
// page carries. What a page says and when it is shown is the endpoints'.
package pages

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/server/config"
)

//go:embed templates/layout.html templates/style.css templates/form_post.js
var templateFS embed.FS

// Renderer renders the browser pages. The stylesheet is inlined and
// allowed by its hash, so the pages load nothing from anywhere and the CSP
// can forbid everything else.
type Renderer struct {
	// Languages are the catalogues the pages speak (i18n.go).
	Languages *Languages
	tmpl      *template.Template
	css       template.CSS
	cssHash   string
	// formPostJS submits the form_post page's form; allowed by its hash
	// on that page alone.
	formPostJS     template.JS
	formPostJSHash string
}

// New parses the embedded templates.
func New() (*Renderer, error) {
	langs, err := LoadLanguages()
	if err != nil {
		return nil, err
	}
	t, err := template.New("layout.html").Funcs(template.FuncMap{"strong": strong, "who": who}).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	css, err := templateFS.ReadFile("templates/style.css")
	if err != nil {
		return nil, err
	}
	js, err := templateFS.ReadFile("templates/form_post.js")
	if err != nil {
		return nil, err
	}
	return &Renderer{Languages: langs, tmpl: t, css: template.CSS(css), cssHash: sourceHash(css), formPostJS: template.JS(js), formPostJSHash: sourceHash(js)}, nil
}

// strong is name in bold, escaped, as an argument of a message (Data.H).
func strong(name string) template.HTML {
	return template.HTML("<strong>" + template.HTMLEscapeString(name) + "</strong>") // escaped
}

// who is the account a page is about, after a message's sentence ("" for
// none), as an argument of a message (Data.H).
func who(username string) template.HTML {
	if username == "" {
		return ""
	}
	return template.HTML(` <span class="who">(` + template.HTMLEscapeString(username) + `)</span>`) // escaped
}

// sourceHash is the CSP hash source of an inline stylesheet or script.
func sourceHash(b []byte) string {
	sum := sha256.Sum256(b)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// Data is what every page template sees. Title and Error are messages in
// English (the catalogues' keys), shown in the page's language; Error is
// formatted with ErrorArgs when there are any.
type Data struct {
	Title     string
	Error     string
	ErrorArgs []any
	// Lang is the page's language (Languages.Negotiate); English when nil.
	Lang *Catalog
	// Brand is the server's look (spec.branding).
	Brand Brand
	// CSS is the stylesheet; BrandCSS the brand's colours and BrandLogo
	// its logo, when they are valid (set by the renderer).
	CSS         template.CSS
	BrandCSS    template.CSS
	BrandLogo   string
	Issuer      string
	Action      string
	CSRF        string
	AuthRequest string
	ClientName  string
	Subject     string
	Username    string
	Scopes      []*config.Scope
	// OfferRemember shows "Remember this decision" on the consent page.
	OfferRemember bool
	// Hidden are further hidden form fields (the logout page's request).
	Hidden []HiddenField
	// PasswordForm shows the login page's username and password form;
	// Upstreams are its "Sign in with" buttons.
	PasswordForm bool
	Upstreams    []UpstreamButton
	// Device marks the consent page of a device authorization (RFC 8628),
	// which warns that a device, not this browser, will get the tokens;
	// UserCode is the code on the /device page's form.
	Device   bool
	UserCode string
	// Script is the form_post page's script.
	Script template.JS
	// ClientLogo, PolicyURI and TOSURI are the client's logo and links
	// on the consent page (https only, checked by the CRD). The logo is
	// the one image the page's CSP allows (ImageSource).
	ClientLogo, PolicyURI, TOSURI string
}

// T is msg in the page's language (Catalog.T).
func (d Data) T(msg string, args ...any) string { return d.Lang.T(msg, args...) }

// H is msg in the page's language as HTML (Catalog.HTML).
func (d Data) H(msg string, args ...any) template.HTML { return d.Lang.HTML(msg, args...) }

// ErrorText is the page's Error in its language.
func (d Data) ErrorText() string { return d.Lang.T(d.Error, d.ErrorArgs...) }

// HiddenField is a hidden form field of a page.
type HiddenField struct{ Name, Value string }

// UpstreamButton is one "Sign in with" link on the login page. A link, not
// a form: the CSP's form-action would block a form's redirect to the
// provider, and starting a login changes nothing the callback does not
// check.
type UpstreamButton struct{ Name, DisplayName, URL string }

// securityHeaders are sent with every page. The CSP allows nothing but
// the inline stylesheets, by their hashes: no script at all, no fonts,
// frames or connections, so markup that slipped into a page could neither
// run nor load anything. form-action allows the server itself and, for
// pages in an authorization flow, the client's redirect URI: browsers
// apply form-action to the redirect that follows a form post, so without
// it the redirect back to the app would be blocked.
//
// A page that shows images (the brand's logo, the client's on the consent
// page) allows exactly those images' URLs in img-src (ImageSource),
// nothing else.
func (p *Renderer) securityHeaders(h http.Header, redirectURI string, d *Data) {
	formAction := "'self'"
	if src := cspSource(redirectURI); src != "" {
		formAction += " " + src
	}
	var images []string
	if src := ImageSource(d.ClientLogo); src != "" {
		images = append(images, src)
	} else {
		d.ClientLogo = ""
	}
	p.setHeaders(h, "'none'", formAction, d, images...)
}

// setHeaders sets a page's headers; d's look and language are settled
// here, since its stylesheets and logo are part of the CSP.
func (p *Renderer) setHeaders(h http.Header, scriptSrc, formAction string, d *Data, images ...string) {
	p.prepare(d)
	styles := p.cssHash
	if d.BrandCSS != "" {
		styles += " " + sourceHash([]byte(d.BrandCSS))
	}
	if d.BrandLogo != "" {
		images = append([]string{d.Brand.logoSource()}, images...)
	}
	csp := "default-src 'none'; script-src " + scriptSrc + "; style-src " + styles
	if len(images) > 0 {
		csp += "; img-src " + strings.Join(images, " ")
	}
	h.Set("Content-Security-Policy", csp+"; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Language", d.Lang.Tag)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	// The page's language follows the request's headers: a cache that
	// kept one (none should: no-store) must tell them apart.
	h.Add("Vary", "Accept-Language")
}

// prepare fills in what the renderer owns: the stylesheets, the brand's
// valid parts and the language (English when none was negotiated).
func (p *Renderer) prepare(d *Data) {
	d.CSS = p.css
	d.BrandCSS = d.Brand.style()
	if d.Brand.logoSource() != "" {
		d.BrandLogo = d.Brand.Logo
	}
	if d.Lang == nil {
		d.Lang = p.Languages.Get(SourceLanguage)
	}
}

// cspSource is the CSP source expression for a redirect URI: its origin,
// or its scheme for a native app's private-use scheme (RFC 8252 §7.1).
func cspSource(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme == "" {
		return ""
	}
	if u.Host == "" {
		return u.Scheme + ":"
	}
	if strings.ContainsAny(u.Host, "; '") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// ImageSource is the CSP source expression that allows the image at
// https URL u and nothing else: scheme, host, port and the exact path
// (CSP3 §6.7.2.12 matches a path not ending in "/" exactly; the query is
// never part of a source expression). "" for anything that is not a
// plain https URL, which the page then does not show.
func ImageSource(u string) string { return imageSource(u, "https") }

// imageSource is ImageSource for a URL with one of schemes.
func imageSource(u string, schemes ...string) string {
	parsed, err := url.Parse(u)
	if err != nil || !slices.Contains(schemes, parsed.Scheme) || parsed.Host == "" || parsed.User != nil ||
		strings.ContainsAny(u, " \t\n\r;,'\"") {
		return ""
	}
	path := parsed.EscapedPath()
	if path == "" {
		path = "/"
	}
	return parsed.Scheme + "://" + parsed.Host + strings.NewReplacer(";", "%3B", ",", "%2C").Replace(path)
}

// StyleSource is the CSP source expression of the inline stylesheet.
func (p *Renderer) StyleSource() string { return p.cssHash }

// FormPostScriptSource is the CSP source expression of the form_post
// page's script.
func (p *Renderer) FormPostScriptSource() string { return p.formPostJSHash }

// RenderFormPost writes the OAuth 2.0 Form Post Response Mode page: a form
// that posts fields to redirectURI, submitted by the one script its CSP
// allows (by hash), with a button for a browser that runs no script. The
// form may post only to redirectURI's origin: nothing else, not even this
// server, is a form-action. d carries the page's issuer, language and
// brand.
func (p *Renderer) RenderFormPost(w http.ResponseWriter, redirectURI string, fields []HiddenField, d Data) {
	formAction := cspSource(redirectURI)
	if formAction == "" {
		formAction = "'none'"
	}
	d.Title, d.Action, d.Hidden, d.Script = "Returning to the application", redirectURI, fields, p.formPostJS
	p.setHeaders(w.Header(), p.formPostJSHash, formAction, &d)
	p.write(w, http.StatusOK, "form_post", d)
}

// Render writes page name with d, its security headers and status. The
// redirect URI, when the page is part of an authorization flow, is allowed
// as a form-action (the client's origin).
func (p *Renderer) Render(w http.ResponseWriter, status int, name, redirectURI string, d Data) {
	p.securityHeaders(w.Header(), redirectURI, &d)
	p.write(w, status, name, d)
}

// write renders a page whose CSP is set.
func (p *Renderer) write(w http.ResponseWriter, status int, name string, d Data) {
	var buf bytes.Buffer
	if strings.HasPrefix(d.Issuer, "https://") {
		// Once a browser has seen the pages over https it never sends the
		// password or the cookies over plain http to this host again, even
		// if a link or a network attacker says http://. No
		// includeSubDomains: other hosts under the issuer's are not ours.
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
	}
	if err := p.tmpl.ExecuteTemplate(&buf, name, d); err != nil {
		http.Error(w, "page rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
