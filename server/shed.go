package server

import (
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/admission"
)

// outcomeOverloaded counts a request refused because the server was
// serving as many as it admits at once (admission).
const outcomeOverloaded = "overloaded"

// How long a request may wait for a slot. A token request waits a few of
// its own service times at most: past that, answering 503 at once serves
// the client better than a slow answer. A login waits longer, since one
// bcrypt takes tens of milliseconds and a person is waiting anyway.
const (
	requestMaxWait = 20 * time.Millisecond
	loginMaxWait   = time.Second
)

func newLimiters(requests, logins int) (*admission.Limiter, *admission.Limiter) {
	if requests <= 0 {
		requests = DefaultMaxConcurrentRequests()
	}
	if logins <= 0 {
		logins = DefaultMaxConcurrentLogins()
	}
	// A login admitted waits for at most two others per slot, so that
	// under a flood it takes at most about three times an unloaded one.
	return admission.New(requests, requests, requestMaxWait), admission.New(logins, 2*logins, loginMaxWait)
}

// pageEndpoints answer a browser with pages; the others are OAuth APIs.
var pageEndpoints = map[string]bool{
	"authorize": true, "login": true, "login_upstream": true, "login_callback": true,
	"consent": true, "device": true, "end_session": true,
}

// shed answers a request the server had no room for: 503 with
// Retry-After, a page for a browser, an OAuth error for an API client.
func (s *Server) shed(w http.ResponseWriter, r *http.Request, snap *config.Snapshot, endpoint string) {
	w.Header().Set("Retry-After", retryAfterUnavailable)
	if pageEndpoints[endpoint] {
		s.errorPage(w, r, snap, http.StatusServiceUnavailable, "Busy", "The server is busy right now. Try again in a moment.")
		return
	}
	writeError(w, newError(ErrTemporarilyUnavailable, "the server is busy; try again shortly"), snap.Issuer)
}
