// Package queue is the reconcilers' work queue: controller-runtime's
// priority queue with user-made changes ahead of the operator's own
// fan-outs, and an event handler that fans a change out to its dependents.
package queue

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Work-queue priorities. A new or edited object goes ahead of everything
// the operator does on its own account, so that a team creating a client
// during a fan-out of thousands (a Scope edit, a server change, a restart)
// has its credentials within a second or two rather than after the whole
// fan-out.
const (
	// PriorityUser: an object was created, its spec or annotations changed,
	// or it is being deleted: somebody is waiting for the result.
	PriorityUser = 10
	// The echo priority (controller-runtime's default, 0): the watch events of
	// other objects the client depends on, e.g. its Secret.
	// PriorityFanOut (handler.LowPriority): re-checks of many objects after
	// a change elsewhere, the initial list after a restart, resyncs, and
	// the echoes of the operator's own status and finalizer writes.
	PriorityFanOut = handler.LowPriority
)

// New is controller-runtime's priority queue behind a guard against
// its shutdown deadlock in v0.24.1 (fixed upstream in v0.25): ShutDown can
// leave the queue's dispatcher blocked handing an item to a worker that has
// already left, holding the locks that Get and Done need, so that stopping
// the manager with a busy queue hung until the grace period ran out. The
// guard lets workers leave Get and Done once the queue is shut down.
func New(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	inner := priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) { o.RateLimiter = rl })
	return &guardedQueue{PriorityQueue: inner, done: make(chan struct{})}
}

// Timers run a function once a duration has passed on some clock.
type Timers interface {
	AfterFunc(d time.Duration, f func())
}

// NewWithTimers is New with the delayed adds (a reconcile's RequeueAfter)
// held on timers rather than on the wall clock: the tests' fake clock, so
// that a test moving it fires the rechecks that are due, as the passing
// of time would, instead of waiting for them.
func NewWithTimers(timers Timers) func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return func(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		q := New(name, rl).(*guardedQueue)
		q.timers = timers
		return q
	}
}

type guardedQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	done   chan struct{}
	once   sync.Once
	timers Timers // nil: the inner queue's own delays
}

// AddWithOpts adds items, after o.After on the queue's timers if it has
// them.
func (q *guardedQueue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	if q.timers == nil || o.After <= 0 {
		q.PriorityQueue.AddWithOpts(o, items...)
		return
	}
	after := o.After
	o.After = 0
	q.timers.AfterFunc(after, func() {
		select {
		case <-q.done:
		default:
			q.PriorityQueue.AddWithOpts(o, items...)
		}
	})
}

// AddAfter adds item after d, on the queue's timers if it has them.
func (q *guardedQueue) AddAfter(item reconcile.Request, d time.Duration) {
	q.AddWithOpts(priorityqueue.AddOpts{After: d}, item)
}

type gotItem struct {
	req      reconcile.Request
	priority int
	shutdown bool
}

// GetWithPriority returns the next item, or shutdown once the queue is
// shut down, even if the inner queue is stuck.
func (q *guardedQueue) GetWithPriority() (reconcile.Request, int, bool) {
	select {
	case <-q.done:
		return reconcile.Request{}, 0, true
	default:
	}
	got := make(chan gotItem, 1)
	go func() {
		r, p, s := q.PriorityQueue.GetWithPriority()
		got <- gotItem{r, p, s}
	}()
	select {
	case g := <-got:
		return g.req, g.priority, g.shutdown
	case <-q.done:
		return reconcile.Request{}, 0, true
	}
}

func (q *guardedQueue) Get() (reconcile.Request, bool) {
	r, _, s := q.GetWithPriority()
	return r, s
}

// Done releases an item; after shutdown it no longer waits for the inner
// queue.
func (q *guardedQueue) Done(item reconcile.Request) {
	finished := make(chan struct{})
	go func() {
		q.PriorityQueue.Done(item)
		close(finished)
	}()
	select {
	case <-finished:
	case <-q.done:
	}
}

func (q *guardedQueue) ShutDown() {
	q.once.Do(func() { close(q.done) })
	q.PriorityQueue.ShutDown()
}

func (q *guardedQueue) ShutDownWithDrain() { q.ShutDown() }

// Add puts reqs into q at priority (a plain queue ignores it).
func Add(q workqueue.TypedRateLimitingInterface[reconcile.Request], priority int, reqs ...reconcile.Request) {
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: &priority}, reqs...)
		return
	}
	for _, r := range reqs {
		q.Add(r)
	}
}

// FanOut is an event handler that maps an object to the objects depending
// on it and queues them at PriorityFanOut. Changed, for an update, returns
// the requests the change concerns (nil: none; the handler does not map
// the old and new objects itself, so that an edit that changes nothing for
// dependents, such as a Scope's description, costs nothing).
type FanOut[T any] struct {
	MapFn   func(context.Context, T) []reconcile.Request
	Changed func(ctx context.Context, old, new T) []reconcile.Request
}

var _ handler.TypedEventHandler[any, reconcile.Request] = FanOut[any]{}

// Create enqueues the requests MapFn makes of the new object.
func (f FanOut[T]) Create(ctx context.Context, e event.TypedCreateEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	Add(q, PriorityFanOut, f.MapFn(ctx, e.Object)...)
}

// Update enqueues the requests Changed makes of the old and new object.
func (f FanOut[T]) Update(ctx context.Context, e event.TypedUpdateEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	Add(q, PriorityFanOut, f.Changed(ctx, e.ObjectOld, e.ObjectNew)...)
}

// Delete enqueues the requests MapFn makes of the deleted object.
func (f FanOut[T]) Delete(ctx context.Context, e event.TypedDeleteEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	Add(q, PriorityFanOut, f.MapFn(ctx, e.Object)...)
}

// Generic enqueues the requests MapFn makes of the object.
func (f FanOut[T]) Generic(ctx context.Context, e event.TypedGenericEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	Add(q, PriorityFanOut, f.MapFn(ctx, e.Object)...)
}
