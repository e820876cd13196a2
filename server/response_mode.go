package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/formparse"
	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// responseModeFormPost is the OAuth 2.0 Form Post Response Mode: the
// response's parameters are posted to the redirect URI by a page that
// submits itself, so that they reach the client's back end in a body,
// never in a URL that browsers, proxies and logs keep.
const responseModeFormPost = "form_post"

// responseModesSupported are the response modes of response_type=code.
// fragment is not one: a code in a fragment reaches only the browser.
var responseModesSupported = []string{"query", responseModeFormPost}

// responseTarget is where, and how, an authorization response goes back
// to the client: its verified redirect URI, the request's state and the
// response mode ("" for the query).
type responseTarget struct {
	redirectURI, state, mode string
	// uiLocales is the request's ui_locales, for the form_post page.
	uiLocales string
}

func responseTo(ar storage.AuthRequest) responseTarget {
	return responseTarget{redirectURI: ar.RedirectURI, state: ar.State, mode: ar.ResponseMode, uiLocales: ar.UILocales}
}

// parseResponseMode reads response_mode (OAuth 2.0 Multiple Response Type
// Encoding Practices §2.1). form_post needs an http(s) redirect URI: a
// native app's private-use scheme is not something a page can post to.
func parseResponseMode(v, redirectURI string) (string, *Error) {
	switch v {
	case "", "query":
		return "", nil
	case responseModeFormPost:
		if !strings.HasPrefix(redirectURI, "https://") && !strings.HasPrefix(redirectURI, "http://") {
			return "", invalidRequest("response_mode=form_post needs an http or https redirect_uri")
		}
		return responseModeFormPost, nil
	}
	return "", invalidRequest("response_mode " + formparse.SafeName(v) + " is not supported; use query or form_post")
}

// authorizationResponse sends params (with state and iss, RFC 9207) back
// to the client as its response mode says: a redirect with them in the
// query (303 after a POST, see redirectStatus), or the form_post page.
func (s *Server) authorizationResponse(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, to responseTarget, params url.Values) {
	params.Set("state", to.state)
	params.Set("iss", snap.Issuer)
	if to.mode != responseModeFormPost {
		http.Redirect(w, r, redirectURL(to.redirectURI, params), redirectStatus(r))
		return
	}
	fields := make([]pages.HiddenField, 0, len(params))
	for _, k := range []string{"code", "error", "error_description", "state", "iss"} {
		if v := params.Get(k); v != "" {
			fields = append(fields, pages.HiddenField{Name: k, Value: v})
		}
	}
	s.pages.RenderFormPost(w, to.redirectURI, fields, s.page(r, snap, to.uiLocales, pages.Data{}))
}

// authorizationError sends an RFC 6749 §4.1.2.1 error back to the client
// in its response mode. Only call it once client_id and redirect_uri have
// been verified.
func (s *Server) authorizationError(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, to responseTarget, e *Error) {
	s.authorizationResponse(w, r, snap, to, url.Values{"error": {e.Code}, "error_description": {e.Description}})
}
