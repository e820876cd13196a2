package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/server/config"
)

//go:embed templates/layout.html templates/style.css
var templateFS embed.FS

// pages renders the browser pages. The stylesheet is inlined and allowed by
// its hash, so the pages load nothing from anywhere and the CSP can forbid
// everything else.
type pages struct {
	tmpl    *template.Template
	css     template.CSS
	cssHash string
}

func newPages() (*pages, error) {
	t, err := template.ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	css, err := templateFS.ReadFile("templates/style.css")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(css)
	return &pages{tmpl: t, css: template.CSS(css), cssHash: "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"}, nil
}

// pageData is what every page template sees.
type pageData struct {
	Title       string
	CSS         template.CSS
	Issuer      string
	Action      string
	CSRF        string
	AuthRequest string
	ClientName  string
	Subject     string
	Username    string
	Error       string
	Scopes      []*config.Scope
	// OfferRemember shows "Remember this decision" on the consent page.
	OfferRemember bool
	// Hidden are further hidden form fields (the logout page's request).
	Hidden []hiddenField
	// PasswordForm shows the login page's username and password form;
	// Upstreams are its "Sign in with" buttons (login_upstream.go).
	PasswordForm bool
	Upstreams    []upstreamButton
}

type hiddenField struct{ Name, Value string }

// securityHeaders are sent with every page. The CSP allows nothing but
// the inline stylesheet, by its hash: no script at all, no images, fonts,
// frames or connections, so markup that slipped into a page could neither
// run nor load anything. form-action allows the server itself and, for
// pages in an authorization flow, the client's redirect URI: browsers
// apply form-action to the redirect that follows a form post, so without
// it the redirect back to the app would be blocked.
func (p *pages) securityHeaders(h http.Header, redirectURI string) {
	formAction := "'self'"
	if src := cspSource(redirectURI); src != "" {
		formAction += " " + src
	}
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'none'; style-src "+p.cssHash+"; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
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

func (p *pages) render(w http.ResponseWriter, status int, name, redirectURI string, d pageData) {
	d.CSS = p.css
	var buf bytes.Buffer
	p.securityHeaders(w.Header(), redirectURI)
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

// errorPage is shown instead of redirecting when the redirect target
// cannot be trusted (RFC 6749 §4.1.2.1: unknown client, bad redirect_uri).
func (s *Server) errorPage(w http.ResponseWriter, snap *config.Snapshot, status int, title, msg string) {
	s.pages.render(w, status, "error", "", pageData{Title: title, Error: msg, Issuer: snap.Issuer})
}

// Cookies. With an https issuer they carry the __Host- prefix: Secure,
// Path=/, no Domain, so no sibling subdomain or plain-http page can plant
// or overwrite them. Only the prefixed name is ever read then, so an
// unprefixed cookie planted that way is ignored.
const (
	csrfCookie    = "gatehouse-csrf"
	sessionCookie = "gatehouse-session"
)

func secureIssuer(snap *config.Snapshot) bool { return strings.HasPrefix(snap.Issuer, "https://") }

func cookieName(snap *config.Snapshot, base string) string {
	if secureIssuer(snap) {
		return "__Host-" + base
	}
	return base
}

func setCookie(w http.ResponseWriter, snap *config.Snapshot, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(snap, base), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secureIssuer(snap), SameSite: http.SameSiteLaxMode,
	})
}

func readCookie(r *http.Request, snap *config.Snapshot, base string) string {
	c, err := r.Cookie(cookieName(snap, base))
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfToken returns the browser's CSRF token, setting the cookie when
// there is none. Forms carry the token in a hidden field and a post must
// present the same value as the cookie (double submit): another site can
// make the browser send the cookie but cannot read it to fill the field.
func csrfToken(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) string {
	if v := readCookie(r, snap, csrfCookie); len(v) == 43 {
		return v
	}
	v := randomToken(32)
	setCookie(w, snap, csrfCookie, v, 0)
	return v
}

// checkCSRF verifies a posted form's token against the cookie.
func checkCSRF(r *http.Request, snap *config.Snapshot, form url.Values) bool {
	cookie := readCookie(r, snap, csrfCookie)
	field := form.Get("csrf_token")
	return cookie != "" && subtle.ConstantTimeCompare([]byte(cookie), []byte(field)) == 1
}

// readPageForm reads the input of a browser page: the query of a GET, or
// the CSRF-checked form of a POST. When it returns false it has already
// written an error page, and res is what to record.
func (s *Server) readPageForm(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, page string) (form url.Values, res result, ok bool) {
	switch r.Method {
	case http.MethodGet:
		return r.URL.Query(), result{}, true
	case http.MethodPost:
		form, e := parsePostForm(w, r)
		if e != nil {
			s.errorPage(w, snap, e.Status, "Invalid request", e.Description)
			return nil, failed(e), false
		}
		if !checkCSRF(r, snap, form) {
			s.errorPage(w, snap, http.StatusForbidden, "Session expired", "This form has expired or did not come from this site. Go back to the application and try again.")
			return nil, result{outcome: "csrf_failed"}, false
		}
		return form, result{}, true
	default:
		w.Header().Set("Allow", "GET, POST")
		s.errorPage(w, snap, http.StatusMethodNotAllowed, "Request not allowed", "The "+page+" page accepts GET and POST requests only.")
		return nil, result{outcome: "method_not_allowed"}, false
	}
}
