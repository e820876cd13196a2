// Package acked is the fault tests' acknowledged-items checker. During a
// fault run the load generator records every credential the server handed
// out in a 2xx answer (Ack) and every one the client deliberately gave up
// (Revoked); afterwards Verify asks the server about each and reports
// "acknowledged N, usable U, revoked R, lost L". A lost item is one the
// server acknowledged and the client never revoked, which no longer works:
// the failure the fault tests exist to catch.
package acked

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Kind is what an item is; the verifier checks each kind its own way.
type Kind string

// The kinds the token server acknowledges.
const (
	// RefreshToken is a refresh-token family: each acknowledged rotation
	// replaces the token the client must be able to use next.
	RefreshToken Kind = "refresh_token"
	// AccessToken is an access token, usable until it expires.
	AccessToken Kind = "access_token"
)

// State is what the server says about an item now.
type State int

// The states Verify tells apart.
const (
	Usable State = iota + 1
	Inactive
)

// Ledger records acknowledged items. It is safe for concurrent use; one
// item (one refresh family) is used by one goroutine at a time.
type Ledger struct {
	mu       sync.Mutex
	items    map[string]*item
	order    []string
	acks     int
	replaced int
}

type item struct {
	kind    Kind
	group   string
	token   string
	revoked bool
}

// New makes an empty Ledger.
func New() *Ledger { return &Ledger{items: map[string]*item{}} }

// Ack records that the server returned token in a 2xx answer, as part of
// group: a grant (a refresh-token family and the access tokens issued
// under it), or a group of its own. A group has one refresh-token item: a
// later refresh token of the same group (rotated by an acknowledged
// request) replaces the one the client holds. Each access token is an
// item.
func (l *Ledger) Ack(kind Kind, group, token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acks++
	id := group
	if kind == AccessToken {
		id = fmt.Sprintf("%s/access-token-%d", group, l.acks)
	}
	if it, ok := l.items[id]; ok {
		it.token = token
		l.replaced++
		return
	}
	l.items[id] = &item{kind: kind, group: group, token: token}
	l.order = append(l.order, id)
}

// Revoked records that the client revoked group (RFC 7009: revoking a
// refresh token revokes its grant's access tokens too) and the server
// acknowledged it.
func (l *Ledger) Revoked(group string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, it := range l.items {
		if it.group == group {
			it.revoked = true
		}
	}
}

// Report is what Verify found.
type Report struct {
	// Acknowledged counts the items: refresh families and access tokens.
	Acknowledged int
	// Usable and Revoked are the items that work, and the deliberately
	// revoked ones that no longer do.
	Usable, Revoked int
	// Lost are acknowledged, unrevoked items that no longer work.
	Lost []string
	// StillActive are revoked items the server still honours.
	StillActive []string
	// Answers counts every acknowledged answer; Rotations the refresh
	// tokens that an acknowledged rotation replaced.
	Answers, Rotations int
}

func (r Report) String() string {
	return fmt.Sprintf("acknowledged %d, usable %d, revoked %d, lost %d (%d acknowledged answers, %d refresh tokens replaced by acknowledged rotations)",
		r.Acknowledged, r.Usable, r.Revoked, len(r.Lost), r.Answers, r.Rotations)
}

// OK reports whether nothing was lost and every revocation held.
func (r Report) OK() bool { return len(r.Lost) == 0 && len(r.StillActive) == 0 }

// Verify asks check about every item and sorts them. check must not give
// up an item that is usable (a refresh grant rotating a refresh token is
// fine: the family stays usable). An error from check ends Verify.
func (l *Ledger) Verify(ctx context.Context, check func(ctx context.Context, kind Kind, token string) (State, error)) (Report, error) {
	return l.VerifyConcurrently(ctx, 1, check)
}

// VerifyConcurrently is Verify with up to workers calls of check at once,
// so check must be safe for concurrent use. A ledger of tens of thousands
// of access tokens (an overload run's) is checked in seconds rather than
// in a minute of round trips one after the other. Items of one group are
// still checked in the order they were acknowledged by one worker, so a
// refresh family's rotation never races its own access tokens' checks.
func (l *Ledger) VerifyConcurrently(ctx context.Context, workers int, check func(ctx context.Context, kind Kind, token string) (State, error)) (Report, error) {
	l.mu.Lock()
	ids := slices.Clone(l.order)
	items := make([]item, len(ids))
	for i, id := range ids {
		items[i] = *l.items[id]
	}
	r := Report{Acknowledged: len(ids), Answers: l.acks, Rotations: l.replaced}
	l.mu.Unlock()
	// Each group goes to one worker, in order.
	byGroup := map[string][]int{}
	var groups []string
	for i, it := range items {
		if _, ok := byGroup[it.group]; !ok {
			groups = append(groups, it.group)
		}
		byGroup[it.group] = append(byGroup[it.group], i)
	}
	states := make([]State, len(items))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan []int)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(func() {
			for idx := range next {
				for _, i := range idx {
					st, err := check(ctx, items[i].kind, items[i].token)
					if err != nil {
						cancel(fmt.Errorf("checking %s %s: %w", items[i].kind, ids[i], err))
						return
					}
					states[i] = st
				}
			}
		})
	}
feed:
	for _, g := range groups {
		select {
		case next <- byGroup[g]:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return r, err
	}
	for i, it := range items {
		switch st := states[i]; {
		case it.revoked && st == Inactive:
			r.Revoked++
		case it.revoked:
			r.StillActive = append(r.StillActive, ids[i])
		case st == Usable:
			r.Usable++
		default:
			r.Lost = append(r.Lost, ids[i])
		}
	}
	return r, nil
}
