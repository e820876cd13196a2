// Package cors opens an endpoint to the browsers of allowed origins
// (Fetch Standard's CORS protocol): the Access-Control-* headers, and
// preflight requests answered without reaching the endpoint.
package cors

import "net/http"

// Apply adds CORS headers for an allowed Origin and answers preflight
// requests. It reports whether the request has been answered. methods is
// what the endpoint accepts, for Access-Control-Allow-Methods.
func Apply(w http.ResponseWriter, r *http.Request, allowed func(origin string) bool, methods string) bool {
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
