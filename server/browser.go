package server

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
)

// errorPage is shown instead of redirecting when the redirect target
// cannot be trusted (RFC 6749 §4.1.2.1: unknown client, bad redirect_uri),
// and for a page's request that cannot be served. title and msg are
// catalogue messages (English, the pages' source language; msg formatted
// with args), shown in the language of the request's ui_locales or its
// Accept-Language. A protocol error_description passed as an argument
// stays English.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, status int, title, msg string, args ...any) {
	s.errorPageIn(w, r, snap, uiLocales(r.URL.Query()), status, title, msg, args...)
}

// errorPageIn is errorPage in the languages of the request's parameters.
func (s *Server) errorPageIn(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, locales string, status int, title, msg string, args ...any) {
	s.pages.Render(w, status, "error", "", s.page(r, snap, locales, pages.Data{Title: title, Error: msg, ErrorArgs: args}))
}

// page completes a page's data with what every page shows: the issuer,
// the server's branding, and the language: uiLocales (the ui_locales of
// the sign-in the page belongs to) first, then the browser's
// Accept-Language, then the server's spec.branding.defaultLanguage.
func (s *Server) page(r *http.Request, snap *config.Snapshot, uiLocales string, d pages.Data) pages.Data {
	d.Issuer = snap.Issuer
	d.Brand = brand(snap)
	d.Lang = s.pages.Languages.Negotiate(uiLocales, r.Header.Get("Accept-Language"), snap.Branding.DefaultLanguage)
	return d
}

// maxUILocales bounds what a request's ui_locales keeps: a few languages
// in order of preference is all a person has.
const maxUILocales = 8

// uiLocales is the ui_locales parameter (OpenID Connect Core §3.1.2.1) of
// q, at most maxUILocales tags of at most 35 characters each (the longest
// BCP 47 tags in use), so that what a sign-in stores stays small.
func uiLocales(q url.Values) string {
	var keep []string
	for _, tag := range strings.Fields(q.Get("ui_locales")) {
		if len(keep) == maxUILocales {
			break
		}
		if len(tag) <= 35 {
			keep = append(keep, tag)
		}
	}
	return strings.Join(keep, " ")
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
func (s *Server) readPageForm(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) (form url.Values, res result, ok bool) {
	switch r.Method {
	case http.MethodGet:
		return r.URL.Query(), result{}, true
	case http.MethodPost:
		form, e := parsePostForm(w, r)
		if e != nil {
			s.errorPage(w, r, snap, e.Status, "Invalid request", e.Description)
			return nil, failed(e), false
		}
		if !checkCSRF(r, snap, form) {
			s.errorPage(w, r, snap, http.StatusForbidden, "Session expired", "This form has expired or did not come from this site. Go back to the application and try again.")
			return nil, result{outcome: "csrf_failed"}, false
		}
		return form, result{}, true
	default:
		w.Header().Set("Allow", "GET, POST")
		s.errorPage(w, r, snap, http.StatusMethodNotAllowed, "Request not allowed", "This page accepts GET and POST requests only.")
		return nil, result{outcome: "method_not_allowed"}, false
	}
}
