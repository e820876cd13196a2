package server

import (
	"net/http"
)

// corsMethods are the endpoints open to browsers, with their methods: a
// single-page app redeems, refreshes and revokes, and reads userinfo
// (OpenID Connect Core §5.3), from the browser.
var corsMethods = map[string]string{"token": "POST", "revoke": "POST", "userinfo": "GET, POST"}

// cors adds CORS headers for an allowed Origin and answers preflight
// requests. It reports whether the request has been answered. The origins
// allowed are those of public clients' redirect URIs
// (config.ClientMap.AllowsOrigin): a single-page app (a public client)
// needs CORS there; confidential clients call from back ends and need none.
// Introspection is never open to browsers.
func cors(w http.ResponseWriter, r *http.Request, allowed func(origin string) bool, methods string) bool {
	h := w.Header()
	origin := r.Header.Get("Origin")
	h.Add("Vary", "Origin")
	if origin == "" || !allowed(origin) {
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
