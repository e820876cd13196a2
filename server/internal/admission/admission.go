// Package admission sheds load: it admits a bounded number of requests of
// one kind at a time and lets a bounded number wait a short while for a
// slot; the rest are refused at once, so the server answers 503 with
// Retry-After instead of queueing until memory or every client's patience
// runs out. Requests admitted keep a latency close to the unloaded one,
// since no more of them compete for the CPU than it can serve.
package admission

import (
	"context"
	"sync/atomic"
	"time"
)

// Limiter admits up to Limit requests at once; up to Queue more may wait
// up to MaxWait for a slot.
type Limiter struct {
	slots   chan struct{}
	waiting atomic.Int64
	queue   int64
	maxWait time.Duration
	shed    atomic.Int64
}

// New makes a Limiter. limit is at least 1; queue and maxWait may be 0
// (refuse whatever finds every slot taken).
func New(limit, queue int, maxWait time.Duration) *Limiter {
	return &Limiter{slots: make(chan struct{}, max(1, limit)), queue: int64(max(0, queue)), maxWait: maxWait}
}

// Acquire admits the caller, who must call Release, or reports false when
// every slot is taken and the queue is full, or no slot freed up within
// MaxWait, or ctx ended.
func (l *Limiter) Acquire(ctx context.Context) bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	if l.waiting.Add(1) > l.queue || l.maxWait <= 0 {
		l.waiting.Add(-1)
		l.shed.Add(1)
		return false
	}
	defer l.waiting.Add(-1)
	t := time.NewTimer(l.maxWait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	l.shed.Add(1)
	return false
}

// Release frees the slot Acquire took.
func (l *Limiter) Release() { <-l.slots }

// InFlight is how many requests hold a slot now.
func (l *Limiter) InFlight() int { return len(l.slots) }

// Limit is how many requests may hold a slot at once.
func (l *Limiter) Limit() int { return cap(l.slots) }

// Shed is how many requests were refused so far.
func (l *Limiter) Shed() int64 { return l.shed.Load() }
