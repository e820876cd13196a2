package server

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/throttle"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// devicePollInterval is the interval a device authorization starts with
// (RFC 8628 §3.2: 5 seconds when the response says none).
const devicePollInterval = 5 * time.Second

// userCodeAttempts is how many user codes a device authorization draws
// before giving up: a collision with a live code is rare (1 in 2.56·10^7
// with a thousand live), two in a row rarer still.
const userCodeAttempts = 4

// deviceAuthorizationResponse is RFC 8628 §3.2.
type deviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// handleDeviceAuthorization is the device authorization endpoint (RFC 8628
// §3.1): a client that may use the device grant asks for a device code
// and a user code. It authenticates as at the token endpoint, by its own
// method, so a public client sends its client_id alone. Errors are RFC
// 6749 §5.2's (RFC 8628 §3.2).
func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	now := s.now()
	fail := func(e *Error) result {
		writeError(w, e, snap.Issuer)
		return failed(e)
	}
	form, client, e := s.authenticatedForm(w, r, snap, now)
	if e != nil {
		return fail(e)
	}
	if !client.GrantTypes[oauthv1.GrantDeviceCode] {
		return fail(unauthorizedClient("the client is not allowed the " + string(oauthv1.GrantDeviceCode) + " grant"))
	}
	if e := s.limitDeviceAuthorizations(w, r, client, now); e != nil {
		return fail(e)
	}
	requested, e := parseScope(form.Get("scope"))
	if e != nil {
		return fail(e)
	}
	scopes, e := grantableScopes(snap, client, requested)
	if e != nil {
		return fail(e)
	}
	// RFC 8707, as at /authorize: the resources this grant's tokens may
	// be for, remembered so that no poll or refresh can widen them.
	resources, e := parseResources(form["resource"])
	if e != nil {
		return fail(e)
	}
	targets, e := resolveTargets(snap, client, nil, resources)
	if e != nil {
		return fail(e)
	}
	if e := checkScopesFitTargets(snap, requested, targets); e != nil {
		return fail(e)
	}
	scopes = scopesForTargets(snap, scopes, targets)

	deviceCode := randomToken(32)
	ttl := snap.DeviceCodeLifetime()
	d := storage.DeviceAuthorization{
		Hash: storage.HashToken(deviceCode), ClientID: client.ID, Scopes: scopes, Resources: targets,
		ExpiresAt: now.Add(ttl), Interval: devicePollInterval, Status: storage.DevicePending,
	}
	var userCode string
	err := storage.ErrAlreadyExists
	for range userCodeAttempts {
		userCode = newUserCode()
		d.UserCode = storage.HashToken(userCode)
		if err = s.store.CreateDeviceAuthorization(r.Context(), d, now); !errors.Is(err, storage.ErrAlreadyExists) {
			break
		}
	}
	if err != nil {
		return fail(s.storageFailed(r.Context(), "storing a device authorization", err))
	}
	writeJSON(w, deviceAuthorizationResponse{
		DeviceCode: deviceCode, UserCode: displayUserCode(userCode),
		VerificationURI:         snap.Endpoints.Device,
		VerificationURIComplete: snap.Endpoints.Device + "?" + url.Values{"user_code": {displayUserCode(userCode)}}.Encode(),
		ExpiresIn:               int(ttl / time.Second), Interval: int(devicePollInterval / time.Second),
	})
	return result{outcome: outcomeSuccess}
}

// limitDeviceAuthorizations refuses a device authorization beyond the
// client's or the client address's allowance (throttle.Issuance) with 429
// and Retry-After (RFC 6585 §4). RFC 8628 defines no error for this
// endpoint; slow_down, its error for a device that polls too fast, says
// the same thing, and a client that knows no better still sees the 429.
func (s *Server) limitDeviceAuthorizations(w http.ResponseWriter, r *http.Request, client *config.Client, now time.Time) *Error {
	ok, by, wait := s.deviceLimit.Take(client.ID, s.proxies.ClientAddr(r), now)
	if ok {
		return nil
	}
	ctx := r.Context()
	infoFrom(ctx).securityEvent(ctx, EventDeviceAuthorizationThrottled, slog.String("client_id", client.ID), slog.String("throttled_by", string(by)))
	w.Header().Set("Retry-After", retryAfterSeconds(wait))
	e := newError(ErrSlowDown, "too many device authorizations "+map[throttle.Reason]string{throttle.Client: "for this client", throttle.Address: "from this address"}[by]+
		"; retry after "+retryAfterSeconds(wait)+" s")
	e.Status = http.StatusTooManyRequests
	return e
}

// retryAfterSeconds is a Retry-After value for a wait.
func retryAfterSeconds(wait time.Duration) string {
	return strconv.Itoa(int((wait + time.Second - 1) / time.Second))
}
