package storage

import (
	"context"
	"time"
)

// PushedRequest is an authorization request whose parameters came before
// the browser did, referenced at /authorize by a request_uri
// (urn:ietf:params:oauth:request_uri:<value>) and stored under
// HashToken(value): a pushed authorization request (RFC 9126), or a POST to
// /authorize held while the browser comes back with a GET that carries its
// cookies.
type PushedRequest struct {
	Hash     string
	ClientID string
	// Params are the request's parameters, form-encoded, as the client
	// sent them (after the server checked them once).
	Params string
	// Pushed: the client pushed the request to /par, authenticating
	// itself (RFC 9126 §2.1). A client that must use PAR is refused
	// anything else.
	Pushed    bool
	ExpiresAt time.Time
}

// PushedRequestStore keeps pushed authorization requests until their one
// use. Every Store is one.
type PushedRequestStore interface {
	// CreatePushedRequest stores r. An empty Hash or ClientID or a zero
	// ExpiresAt is ErrInvalid; one with that Hash is
	// ErrAlreadyExists.
	CreatePushedRequest(ctx context.Context, r PushedRequest) error
	// ConsumePushedRequest returns the request under hash and deletes it,
	// in one atomic step: of concurrent calls, also on replicas sharing
	// one database, exactly one gets it (RFC 9126 §4: one-time use). An
	// unknown, used or expired request is ErrNotFound.
	ConsumePushedRequest(ctx context.Context, hash string, now time.Time) (PushedRequest, error)
}
