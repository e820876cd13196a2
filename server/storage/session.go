package storage

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"
)

// Sessions are first-class objects: a logged-in browser is stored under
// the HashToken of its cookie, and is also findable by its sid (the
// session ID of OpenID Connect Back-Channel Logout 1.0, which relying
// parties see in ID tokens) and by its subject. Each session records the
// clients that got tokens in it, so that ending it can tell each of them
// (back-channel logout).

// Session is a logged-in browser.
type Session struct {
	// Hash is HashToken of the session cookie: only the browser can
	// present the session.
	Hash string
	// ID is the session's sid: public (it is in ID tokens), unique,
	// derived one-way from Hash by the caller so that it reveals nothing
	// that could be replayed as the cookie.
	ID        string
	Subject   string
	AuthTime  time.Time
	ExpiresAt time.Time
}

// SessionSelector picks the sessions EndSessions ends. Exactly one field
// is set.
type SessionSelector struct {
	// Hash: the browser's own session (HashToken of its cookie).
	Hash string
	// ID: the session with this sid (an id_token_hint's).
	ID string
	// Subject: every session of one person.
	Subject string
	// SubjectPrefix: every session of every subject that starts with it,
	// such as "idp:corp:" for the people of a removed identity provider.
	SubjectPrefix string
}

// valid reports whether exactly one field is set.
func (sel SessionSelector) valid() bool {
	n := 0
	for _, v := range []string{sel.Hash, sel.ID, sel.Subject, sel.SubjectPrefix} {
		if v != "" {
			n++
		}
	}
	return n == 1
}

// EndOptions say what else ending sessions does.
type EndOptions struct {
	// RevokeGrants also revokes every refresh-token family of the
	// selected person (Subject or SubjectPrefix, whether or not it began
	// in a session) and deletes their consents: an administrator ending
	// everything a person has. Without it only the families that began in
	// an ended session and lack OfflineScope are revoked (OpenID Connect
	// Back-Channel Logout 1.0 §2.7: refresh tokens without offline access
	// end with the session; offline ones outlive it by design).
	RevokeGrants bool
	// OfflineScope is the scope that lets a family outlive its session
	// ("offline_access"); empty: every family of an ended session is
	// revoked.
	OfflineScope string
	// Notify says which clients get a logout token: those with a
	// back-channel logout URI. Nil: none. For every ended session, each
	// client that got tokens in it and that Notify accepts gets a
	// LogoutDelivery with the session's sid and subject; with
	// RevokeGrants, each client Notify accepts that holds a live
	// refresh-token family of the person but was in none of the ended
	// sessions gets one with the subject alone.
	Notify func(clientID string) bool
	// Except is the client that asked for the logout; it is not notified.
	Except string
	// DeliverUntil bounds the deliveries' retries: after it they are
	// abandoned (LogoutDelivery.ExpiresAt). Required with Notify.
	DeliverUntil time.Time
}

// EndedSession is a session that EndSessions ended, with the clients that
// got tokens in it.
type EndedSession struct {
	Session
	Clients []string
}

// Ended is what EndSessions did.
type Ended struct {
	Sessions []EndedSession
	// FamiliesRevoked counts refresh-token families revoked now (not
	// those revoked before).
	FamiliesRevoked int
	// ConsentsDeleted counts remembered consents deleted (RevokeGrants).
	ConsentsDeleted int
	// Deliveries are the logout deliveries queued.
	Deliveries []LogoutDelivery
}

// LogoutDelivery is a logout token (OpenID Connect Back-Channel Logout
// 1.0 §2.4) owed to a client, kept until it is delivered or abandoned:
// the outbox that makes delivery survive a replica's restart.
type LogoutDelivery struct {
	// ID is the logout token's jti: one per event and client, the same
	// on every attempt, so a relying party that got it twice can tell.
	ID       string
	ClientID string
	Subject  string
	// SessionID is the sid; empty for a logout of the person as a whole
	// (an administrator's, outside any session).
	SessionID string
	CreatedAt time.Time
	// Attempts made so far.
	Attempts int
	// NextAttemptAt: not claimed before it.
	NextAttemptAt time.Time
	// ExpiresAt: abandoned after it, and deleted by DeleteExpired.
	ExpiresAt time.Time
	// LastError says why the last attempt failed.
	LastError string
}

// SessionStore keeps sessions, the clients of each, and the logout
// deliveries owed when they end. Every Store is one.
type SessionStore interface {
	// CreateSession stores a new session; it needs a Hash, an ID and an
	// expiry (ErrInvalid). Either key in use is ErrAlreadyExists.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session under hash; ErrNotFound if unknown
	// or expired.
	GetSession(ctx context.Context, hash string, now time.Time) (Session, error)
	// GetSessionByID returns the session whose sid is id, with the clients
	// that got tokens in it; ErrNotFound if unknown or expired.
	GetSessionByID(ctx context.Context, id string, now time.Time) (EndedSession, error)
	// GetSessionConsent is GetSession and, for the session's subject,
	// GetConsent of clientID, in one round trip: the single-sign-on path
	// (/authorize with a live session and a remembered consent) needs
	// both. The consent is nil when there is none (or it expired); a
	// missing session is ErrNotFound.
	GetSessionConsent(ctx context.Context, hash, clientID string, now time.Time) (Session, *Consent, error)
	// DeleteSession removes a session without ending it: no families are
	// revoked, no client is told (a session replaced by a new login in
	// the same browser).
	DeleteSession(ctx context.Context, hash string) error
	// AddSessionClient records that clientID got tokens in the live
	// session id; an unknown or expired session is ErrNotFound. Recording
	// a client twice is not an error. RedeemCode records the code's
	// client in the code's session itself.
	AddSessionClient(ctx context.Context, id, clientID string, now time.Time) error

	// EndSessions ends the sessions sel selects, and what opts says, as
	// one atomic step: of two concurrent calls for one session, one ends
	// it and queues its deliveries; the other finds nothing. An invalid
	// selector, or Notify without DeliverUntil, is ErrInvalid.
	EndSessions(ctx context.Context, sel SessionSelector, opts EndOptions, now time.Time) (Ended, error)

	// ClaimLogoutDeliveries returns up to limit deliveries due at now
	// (NextAttemptAt reached, not expired, not claimed by someone else),
	// at most perClient of any one client and none of the clients in
	// busy, oldest due first, and marks them claimed until now+lease, so
	// that no other caller (replica) gets them meanwhile. A claim that is
	// neither finished nor retried by then (a replica that died) lapses,
	// and the delivery is due again. The per-client bound keeps one
	// client's backlog from taking every worker.
	ClaimLogoutDeliveries(ctx context.Context, limit, perClient int, busy []string, lease time.Duration, now time.Time) ([]LogoutDelivery, error)
	// RetryLogoutDelivery records a failed attempt: the delivery's
	// Attempts, LastError and NextAttemptAt, and releases the claim.
	// Unknown is ErrNotFound.
	RetryLogoutDelivery(ctx context.Context, d LogoutDelivery) error
	// FinishLogoutDelivery removes a delivery that was delivered or
	// abandoned. Unknown is not an error.
	FinishLogoutDelivery(ctx context.Context, id string) error
}

// Holder is a client holding a live refresh-token family of a person.
type Holder struct{ Subject, ClientID string }

// Deliveries builds the LogoutDeliveries opts asks for when the sessions
// in ended end, and, with RevokeGrants, for the holders of the person's
// refresh-token families that were in none of them; each gets a new ID.
// Drivers that decide in Go share it.
func (opts EndOptions) Deliveries(ended []EndedSession, holders []Holder, now time.Time) []LogoutDelivery {
	if opts.Notify == nil {
		return nil
	}
	var out []LogoutDelivery
	notified := map[Holder]bool{}
	add := func(client, sub, sid string) {
		if client == opts.Except || !opts.Notify(client) {
			return
		}
		out = append(out, LogoutDelivery{
			ID: newDeliveryID(), ClientID: client, Subject: sub, SessionID: sid,
			CreatedAt: now, NextAttemptAt: now, ExpiresAt: opts.DeliverUntil,
		})
	}
	for _, s := range ended {
		for _, c := range s.Clients {
			notified[Holder{s.Subject, c}] = true
			add(c, s.Subject, s.ID)
		}
	}
	if opts.RevokeGrants {
		for _, h := range holders {
			if !notified[h] {
				notified[h] = true
				add(h.ClientID, h.Subject, "")
			}
		}
	}
	return out
}

// Validate is EndSessions' ErrInvalid check.
func (opts EndOptions) Validate(sel SessionSelector) bool {
	return sel.valid() && (opts.Notify == nil || !opts.DeliverUntil.IsZero()) &&
		(!opts.RevokeGrants || sel.Subject != "" || sel.SubjectPrefix != "")
}

func newDeliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
