package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The device authorization grant (RFC 8628): a device asks for a device
// code and a user code (§3.1), the person enters the user code in a
// browser and approves or denies (§3.3), and the device polls the token
// endpoint with the device code until the answer is there (§3.4, §3.5).

// DeviceStatus is where a device authorization stands.
type DeviceStatus string

// A device authorization is pending until the person approves or denies
// it on the verification page.
const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
)

// DeviceSlowDownStep is what a poll that came sooner than the interval
// adds to the interval, for it and every later poll (RFC 8628 §3.5).
const DeviceSlowDownStep = 5 * time.Second

// DevicePollLeeway is how much sooner than the interval a poll may come
// and still count as on time. A client that waits the interval between
// sending its polls (a ticker, as golang.org/x/oauth2 does) has them
// arrive a little sooner whenever one travels faster than the last, and
// replicas' clocks differ a little: neither should earn a slow_down.
const DevicePollLeeway = time.Second

// DeviceExpiredRetention is how long a store keeps a device authorization
// after it expired, so that a device polling late is told expired_token
// (RFC 8628 §3.5) rather than that its code is unknown.
const DeviceExpiredRetention = 10 * time.Minute

// The outcomes of a poll (PollDeviceAuthorization) other than success, and
// of a decision (DecideDeviceAuthorization).
var (
	// ErrDevicePending: the person has not decided yet
	// (authorization_pending).
	ErrDevicePending = errors.New("device authorization pending")
	// ErrDeviceSlowDown: still pending, and the poll came sooner than the
	// interval, which is now DeviceSlowDownStep longer (slow_down).
	ErrDeviceSlowDown = errors.New("device polled sooner than its interval")
	// ErrDeviceDenied: the person denied the request (access_denied).
	ErrDeviceDenied = errors.New("device authorization denied")
	// ErrDeviceExpired: the device code expired before it was redeemed
	// (expired_token).
	ErrDeviceExpired = errors.New("device authorization expired")
	// ErrDeviceCodeRedeemed: the device code was redeemed before. The
	// store returns the authorization with what the first redemption
	// issued, so the caller can revoke it.
	ErrDeviceCodeRedeemed = errors.New("device code already redeemed")
	// ErrDeviceDecided: the person's decision was recorded before; a
	// second one changes nothing.
	ErrDeviceDecided = errors.New("device authorization already decided")
)

// DeviceAuthorization is one device authorization request (RFC 8628 §3.2),
// stored under HashToken(device_code) and findable by HashToken of its
// normalized user code.
type DeviceAuthorization struct {
	Hash string
	// UserCode is HashToken of the normalized user code; unique among the
	// live authorizations.
	UserCode string
	ClientID string
	Scopes   []string
	// Resources are the RFC 8707 resource indicators the device asked
	// for: its tokens may be for these and no other.
	Resources []string
	ExpiresAt time.Time
	// Interval is the least time between two polls (§3.2 interval); a poll
	// sooner than that adds DeviceSlowDownStep to it.
	Interval time.Duration
	// LastPolledAt is when the device last polled; zero before it did.
	LastPolledAt time.Time
	Status       DeviceStatus

	// Set by an approval: who approved, when they logged in, and the sid
	// of the browser session they approved in (a record of where the
	// approval came from; the device's tokens are not in that session).
	Subject   string
	AuthTime  time.Time
	SessionID string

	// Set by the redemption: what it issued.
	RedeemedAt *time.Time
	Issued     Issued
}

// DeviceDecision is what the person decided on the page.
type DeviceDecision struct {
	Approved  bool
	Subject   string
	AuthTime  time.Time
	SessionID string
}

// DeviceStore keeps device authorizations. Every Store is one.
type DeviceStore interface {
	// CreateDeviceAuthorization stores a new pending authorization. It is
	// ErrAlreadyExists when its Hash exists, or its UserCode is an
	// authorization's that is live at now: the caller draws another user
	// code. An expired one gives its user code up.
	CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization, now time.Time) error
	// GetDeviceAuthorizationByUserCode returns the live authorization whose
	// UserCode is userCode; ErrNotFound if none, or it expired.
	GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string, now time.Time) (DeviceAuthorization, error)
	// DecideDeviceAuthorization records the person's decision on the
	// pending authorization under hash (see DeviceAuthorization.Decide):
	// ErrNotFound if it is unknown or expired, ErrDeviceDecided if it was
	// decided before. An approval needs a Subject (ErrInvalid).
	DecideDeviceAuthorization(ctx context.Context, hash string, d DeviceDecision, now time.Time) error
	// PollDeviceAuthorization is one poll by clientID with the device
	// code under hash (see DeviceAuthorization.Poll), atomically: of
	// concurrent polls of an approved authorization, even on replicas
	// sharing one database, exactly one redeems it. It returns the
	// authorization as the poll left it, with the poll's outcome, except
	// for ErrNotFound. issued needs an AccessTokenID (ErrInvalid).
	PollDeviceAuthorization(ctx context.Context, hash, clientID string, issued Issued, now time.Time) (DeviceAuthorization, error)
}

// Validate checks a decision before a store looks anything up.
func (dec DeviceDecision) Validate() error {
	if dec.Approved && dec.Subject == "" {
		return fmt.Errorf("an approval needs the subject who approved: %w", ErrInvalid)
	}
	return nil
}

// ValidRedemption checks what a poll would record as issued before a
// store looks anything up.
func ValidRedemption(issued Issued) error {
	if issued.AccessTokenID == "" {
		return fmt.Errorf("a device code's redemption needs the access token's ID: %w", ErrInvalid)
	}
	return nil
}

// Validate is what a store checks before storing a new authorization.
func (d *DeviceAuthorization) Validate() error {
	switch {
	case d.Hash == "" || d.UserCode == "" || d.ClientID == "":
		return fmt.Errorf("device authorization needs a hash, a user code and a client: %w", ErrInvalid)
	case d.ExpiresAt.IsZero() || d.Interval <= 0:
		return fmt.Errorf("device authorization needs an expiry and a positive interval: %w", ErrInvalid)
	case d.Status != DevicePending || d.RedeemedAt != nil || !d.LastPolledAt.IsZero():
		return fmt.Errorf("a new device authorization must be pending, never polled: %w", ErrInvalid)
	}
	return nil
}

// Decide applies the person's decision to d at now, or says why not.
// Drivers call it on the stored value under their lock or row lock, so
// that every driver decides alike.
func (d *DeviceAuthorization) Decide(dec DeviceDecision, now time.Time) error {
	if err := dec.Validate(); err != nil {
		return err
	}
	switch {
	case !now.Before(d.ExpiresAt):
		return ErrNotFound
	case d.Status != DevicePending:
		return ErrDeviceDecided
	}
	if !dec.Approved {
		d.Status = DeviceDenied
		return nil
	}
	d.Status, d.Subject, d.AuthTime, d.SessionID = DeviceApproved, dec.Subject, dec.AuthTime, dec.SessionID
	return nil
}

// Poll applies one poll by clientID at now to d (RFC 8628 §3.5), in this
// order, and reports whether d changed (and must be written back):
//
//  1. another client's device code is ErrNotFound, and nothing changes:
//     a poll with a stolen code must not disturb its owner's;
//  2. a device code redeemed before is ErrDeviceCodeRedeemed;
//  3. an expired one is ErrDeviceExpired; a denied one ErrDeviceDenied;
//  4. a pending one records the poll and is ErrDevicePending, or, when it
//     came sooner than Interval (less DevicePollLeeway) after the previous
//     poll, ErrDeviceSlowDown with Interval DeviceSlowDownStep longer;
//  5. an approved one is redeemed: RedeemedAt and Issued are set, and the
//     poll succeeds.
//
// Only pending polls count against the interval: once the person
// decided, the next poll ends the flow either way.
func (d *DeviceAuthorization) Poll(clientID string, issued Issued, now time.Time) (changed bool, err error) {
	if err := ValidRedemption(issued); err != nil {
		return false, err
	}
	switch {
	case d.ClientID != clientID:
		return false, ErrNotFound
	case d.RedeemedAt != nil:
		return false, ErrDeviceCodeRedeemed
	case !now.Before(d.ExpiresAt):
		return false, ErrDeviceExpired
	case d.Status == DeviceDenied:
		return false, ErrDeviceDenied
	case d.Status == DevicePending:
		tooSoon := !d.LastPolledAt.IsZero() && now.Before(d.LastPolledAt.Add(d.Interval-DevicePollLeeway))
		d.LastPolledAt = now
		if tooSoon {
			d.Interval += DeviceSlowDownStep
			return true, ErrDeviceSlowDown
		}
		return true, ErrDevicePending
	}
	at := now
	d.LastPolledAt, d.RedeemedAt, d.Issued = now, &at, issued
	return true, nil
}

// Clone is a copy of d that shares no slice or pointer with it.
func (d DeviceAuthorization) Clone() DeviceAuthorization {
	d.Scopes = slices.Clone(d.Scopes)
	d.Resources = slices.Clone(d.Resources)
	if d.RedeemedAt != nil {
		at := *d.RedeemedAt
		d.RedeemedAt = &at
	}
	return d
}
