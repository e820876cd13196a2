package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// The token endpoint's answers to a device that polls too early or in
// vain (RFC 8628 §3.5).
const (
	ErrAuthorizationPending = "authorization_pending"
	ErrSlowDown             = "slow_down"
	ErrExpiredToken         = "expired_token"
)

// grantDeviceCode is RFC 8628 §3.4–3.5: the device polls with its device
// code until the person has decided on the /device page.
//
// The store decides each poll atomically (storage.DeviceAuthorization.Poll):
// pending, too soon (slow_down, the interval 5 s longer from then on),
// denied, expired, or approved, when this poll redeems the code. A code is
// redeemed once; presenting it again is a replay, like an authorization
// code's, and revokes what the first redemption issued (RFC 9700 §4.5's
// reasoning: either the device or a thief holds a copy). The tokens are
// the authorization code flow's: an access token, a refresh token when the
// client may refresh (with openid, only with offline_access), and with
// openid an ID token.
//
// None of them is in the approving browser's session: the device is
// another user agent (OpenID Connect Core §1.2), which that session's
// cookie never reached. So the ID token has no sid and the refresh-token
// family no SessionID: signing out in the browser (or an app's
// end_session for that sid) leaves the device signed in, and the
// device's ID token as an id_token_hint cannot end the browser's session.
// What ends a person everywhere (SessionRevocation, removal from the
// users Secret or a provider, a failed upstream re-check) still revokes
// the device's grant and tells the device's client by sub.
func (s *Server) grantDeviceCode(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	deviceCode := req.Form.Get("device_code")
	if deviceCode == "" {
		return nil, invalidRequest("device_code is required")
	}
	// §3.4 has no scope parameter, so one sent anyway is ignored (RFC
	// 6749 §3.2): the scope is what the person approved.
	issued := storage.Issued{AccessTokenID: newID(), AccessTokenExpiresAt: req.Now.Add(req.Snap.Lifetimes(req.Client).AccessToken)}
	mayRefresh := req.Client.GrantTypes[oauthv1.GrantRefreshToken]
	if mayRefresh {
		issued.RefreshFamilyID = newID()
	}
	d, err := s.store.PollDeviceAuthorization(ctx, storage.HashToken(deviceCode), req.Client.ID, issued, req.Now)
	if e := s.devicePollError(ctx, req, d, err); e != nil {
		return nil, e
	}

	// RFC 8707 §2.2: resource here picks among the device's resources;
	// the refresh token keeps them all.
	targets, e := resolveTargets(req.Snap, req.Client, d.Resources, req.Resources)
	if e != nil {
		return nil, e
	}
	granted := usableScopes(req.Snap, req.Client, d.Scopes)
	g := tokenGrant{Client: req.Client, Subject: d.Subject, AuthTime: d.AuthTime, Resources: targets,
		Scopes: scopesForTargets(req.Snap, granted, targets)}
	openID := isOpenIDRequest(g.Scopes)
	rt := ""
	if mayRefresh && (!openID || slices.Contains(g.Scopes, oidc.ScopeOfflineAccess)) {
		g.GrantID, rt = issued.RefreshFamilyID, randomToken(32)
		err := s.store.CreateRefreshToken(ctx, storage.RefreshToken{
			Hash: storage.HashToken(rt), FamilyID: g.GrantID, ClientID: req.Client.ID, Subject: d.Subject,
			Scopes: granted, Resources: d.Resources, AuthTime: d.AuthTime, IssuedAt: req.Now, ExpiresAt: refreshExpiry(req, d.AuthTime),
		})
		switch {
		case errors.Is(err, storage.ErrRevoked):
			// A replay of the device code revoked the family between the
			// redemption and now: the code was copied, nothing is issued.
			return nil, invalidGrant("the device code was used more than once")
		case err != nil:
			return nil, s.storageFailed(ctx, "storing a refresh token", err)
		}
	}
	g = s.withPerson(req.Snap, g)
	at, e := s.signAccessToken(req.Snap, g, issued.AccessTokenID, req.Now)
	if e != nil {
		return nil, e
	}
	resp := newTokenResponse(at, rt, g.Scopes, req.Now)
	if openID {
		if resp.IDToken, e = s.signIDToken(req.Snap, idTokenGrant{tokenGrant: g}, at.JWT, req.Now); e != nil {
			return nil, e
		}
	}
	return resp, nil
}

// devicePollError maps a poll's outcome to RFC 8628 §3.5's answer; nil
// when the poll redeemed the code.
func (s *Server) devicePollError(ctx context.Context, req *tokenRequest, d storage.DeviceAuthorization, err error) *Error {
	switch {
	case err == nil:
		// The person approved; are they still someone? An approval is
		// recent, but the users Secret may have changed since.
		if req.Snap.Subject(d.Subject) == config.SubjectRemoved {
			return newError(ErrAccessDenied, "the user who approved the request can no longer sign in")
		}
		return nil
	case errors.Is(err, storage.ErrDevicePending):
		return newError(ErrAuthorizationPending, "the user has not yet entered the code and approved the request")
	case errors.Is(err, storage.ErrDeviceSlowDown):
		return newError(ErrSlowDown, "polling too often: wait at least "+retryAfterSeconds(d.Interval)+" s between requests from now on")
	case errors.Is(err, storage.ErrDeviceDenied):
		return newError(ErrAccessDenied, "the user denied the request")
	case errors.Is(err, storage.ErrDeviceExpired):
		return newError(ErrExpiredToken, "the device code has expired; start a new device authorization")
	case errors.Is(err, storage.ErrNotFound):
		return invalidGrant("the device code is invalid, expired long ago, or was issued to another client")
	case errors.Is(err, storage.ErrDeviceCodeRedeemed):
		s.revokeIssued(ctx, d.Issued)
		infoFrom(ctx).securityEvent(ctx, EventDeviceCodeReplay, slog.String("client_id", req.Client.ID), slog.String("sub", d.Subject),
			slog.String("revoked_jti", d.Issued.AccessTokenID), slog.String("revoked_grant_id", d.Issued.RefreshFamilyID))
		return invalidGrant("the device code has already been used; the tokens issued for it are revoked")
	default:
		return s.storageFailed(ctx, "polling a device authorization", err)
	}
}
