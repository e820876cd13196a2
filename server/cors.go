package server

import (
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/server/config"
)

// corsMethods are the endpoints open to browsers, with their methods: a
// single-page app redeems, refreshes and revokes, and reads userinfo
// (OpenID Connect Core §5.3), from the browser.
var corsMethods = map[string]string{"token": "POST", "revoke": "POST", "userinfo": "GET, POST"}

// corsOrigins are the browser origins allowed to call the corsMethods
// endpoints: those of public clients' redirect URIs. A single-page app (a
// public client) needs CORS there; confidential clients call from back
// ends and need none. Introspection is never open to browsers.
func corsOrigins(snap *config.Snapshot) map[string]bool {
	origins := map[string]bool{}
	for _, c := range snap.Clients {
		if !c.Public {
			continue
		}
		for _, r := range c.RedirectURIs {
			u, err := url.Parse(r)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				continue
			}
			origins[u.Scheme+"://"+u.Host] = true
		}
	}
	return origins
}

// cors adds CORS headers for an allowed Origin and answers preflight
// requests. It reports whether the request has been answered.
func cors(w http.ResponseWriter, r *http.Request, allowed map[string]bool, methods string) bool {
	h := w.Header()
	origin := r.Header.Get("Origin")
	h.Add("Vary", "Origin")
	if origin == "" || !allowed[origin] {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}
