package server

import (
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/server/config"
)

// corsOrigins are the browser origins allowed to call the token and
// revocation endpoints: those of public clients' redirect URIs. A
// single-page app (a public client) redeems its code and refreshes from
// the browser, so it needs CORS there; confidential clients call from back
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
func cors(w http.ResponseWriter, r *http.Request, allowed map[string]bool) bool {
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
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}
