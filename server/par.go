package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// parResponse is RFC 9126 §2.2's answer.
type parResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

// clientAuthParams are the parameters of client authentication (RFC 6749
// §2.3.1, RFC 7523 §2.2): they authenticate the push, and are no part of
// the authorization request it stores.
var clientAuthParams = []string{"client_secret", "client_assertion", "client_assertion_type"}

// handlePAR is the pushed authorization request endpoint (RFC 9126 §2): a
// client, authenticated by its own method as at the token endpoint (a
// public client by its client_id alone), posts the parameters of an
// authorization request and gets a request_uri that stands for them at
// /authorize, once, for spec.pushedAuthorizationRequests.requestURILifetime
// (60 s by default). The request is checked now exactly as /authorize
// would (a signed request object among its parameters included), so a bad
// one is refused here in JSON (§2.3) and never stored; /authorize checks
// it again, against the configuration of that moment.
func (s *Server) handlePAR(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	now := s.now()
	fail := func(e *Error) result {
		writeError(w, e, snap.Issuer)
		return failed(e)
	}
	form, client, e := s.authenticatedForm(w, r, snap, now)
	if e != nil {
		return fail(e)
	}
	for _, k := range clientAuthParams {
		delete(form, k)
	}
	params := form
	switch {
	case form.Has("request_uri"):
		return fail(invalidRequest("request_uri cannot be pushed (RFC 9126 §2.1); push the parameters or a request object"))
	case form.Has("request"):
		if params, e = requestObjectParams(snap, client, form.Get("request"), now); e != nil {
			return fail(e)
		}
	}
	// The pushed request names its client (a Basic-authenticated push
	// need not).
	params.Set("client_id", client.ID)
	if e := checkPushedRequest(snap, client, params, now); e != nil {
		return fail(e)
	}
	value := randomToken(32)
	ttl := snap.PushedRequestLifetime()
	err := s.store.CreatePushedRequest(r.Context(), storage.PushedRequest{
		Hash: storage.HashToken(value), ClientID: client.ID, Params: params.Encode(), Pushed: true, ExpiresAt: now.Add(ttl + ClockSkewLeeway),
	})
	if err != nil {
		return fail(s.storageFailed(r.Context(), "storing a pushed authorization request", err))
	}
	h := w.Header()
	noStore(h)
	h["Content-Type"] = jsonTypeValue
	w.WriteHeader(http.StatusCreated) // RFC 9126 §2.2
	_ = json.NewEncoder(w).Encode(parResponse{RequestURI: requestURIPrefix + value, ExpiresIn: int64(ttl / time.Second)})
	return result{outcome: outcomeSuccess}
}

// checkPushedRequest checks a pushed request's parameters as /authorize
// will: one redirect_uri the client registered, a supported response mode,
// and everything authorizeRequest checks.
func checkPushedRequest(snap *config.Snapshot, client *config.Client, params url.Values, now time.Time) *Error {
	switch ru := params["redirect_uri"]; {
	case len(ru) == 0:
		return invalidRequest("redirect_uri is required")
	case len(ru) > 1:
		return invalidRequest("parameter \"redirect_uri\" is repeated")
	case !client.HasRedirectURI(ru[0]):
		// RFC 9126 §2.4 would allow an unregistered one from an
		// authenticated client; redirect URIs here match exactly, always.
		return invalidRequest("redirect_uri is not one the client registered")
	}
	if _, e := parseResponseMode(params.Get("response_mode"), params.Get("redirect_uri")); e != nil {
		return e
	}
	_, _, e := authorizeRequest(snap, client, params.Get("redirect_uri"), params, now)
	return e
}
