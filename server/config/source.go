package config

import (
	"errors"
	"sync/atomic"
	"time"
)

// Source hands out the current Snapshot. Request paths call Current once
// and use that snapshot for the whole request, so a request never sees half
// of an update.
type Source interface {
	// Current is the latest snapshot, nil before the first one is built.
	Current() *Snapshot
	// Ready reports why the server cannot serve yet, or nil.
	Ready() error
}

// Static is a Source whose snapshot the caller sets: for tests, and for
// anything that builds snapshots itself.
type Static struct{ p atomic.Pointer[Snapshot] }

// NewStatic returns a Source serving s.
func NewStatic(s *Snapshot) *Static {
	st := &Static{}
	st.p.Store(s)
	return st
}

// Set replaces the snapshot atomically.
func (st *Static) Set(s *Snapshot) { st.p.Store(s) }

// Current implements Source.
func (st *Static) Current() *Snapshot { return st.p.Load() }

// Ready implements Source.
func (st *Static) Ready() error { return CheckServable(st.p.Load(), time.Now()) }

// CheckServable reports why a snapshot cannot serve tokens at now: there is
// none yet, or no key signs.
func CheckServable(s *Snapshot, now time.Time) error {
	if s == nil {
		return errors.New("configuration not loaded yet")
	}
	if _, ok := s.SigningKey(now); !ok {
		return errors.New("no usable signing key yet")
	}
	return nil
}
