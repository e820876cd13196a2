package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Destinations of the audit stream, as --audit-log takes them; anything
// else is a file path.
const (
	Off    = "off"
	Stdout = "stdout"
	Stderr = "stderr"
)

// DefaultMaxPending is how many bytes of lines may wait for the stream
// before Record makes callers wait: about 4,000 token lines.
const DefaultMaxPending = 2 << 20

// retryWait is how long the writer waits after a failed write before it
// tries the same bytes again.
const retryWait = time.Second

// batchWait is how long the writer lets lines gather after the first one
// wakes it.
const batchWait = time.Millisecond

// Log writes audit lines to one stream, in the order Record was called.
//
// A write to the stream happens on a goroutine of the Log's own, so a
// request pays for formatting its line and a copy, not for a system call:
// under load one write carries the lines of many requests. When the stream
// falls behind (a slow disk, a log pipe nobody reads) and DefaultMaxPending
// bytes wait, Record blocks until they are written: an audit log that
// silently lost lines would be worse than a slower server, and a server
// that cannot write its audit log should not go on issuing tokens
// unrecorded. A failed write is retried, the same bytes, every second, and
// counted; lines are never dropped or reordered. What a hard crash (kill
// -9, out of memory) loses is what had not reached the stream yet, usually
// nothing or the lines of the last millisecond; Close writes everything out.
type Log struct {
	out    io.Writer
	closer io.Closer
	max    int
	onErr  func(error)

	mu      sync.Mutex
	room    sync.Cond // signalled when pending shrinks or lines are written
	pending []byte
	spare   []byte
	// queued and written count lines, for Flush.
	queued, written uint64
	closed          bool
	wake            chan struct{}
	done            chan struct{}

	events      prometheus.Counter
	writeErrors prometheus.Counter
	blocked     prometheus.Counter
}

// Options configure a Log.
type Options struct {
	// MaxPending bytes may wait before Record blocks; DefaultMaxPending
	// when zero.
	MaxPending int
	// OnError is told of each failed write (for the debug log); the write
	// is retried.
	OnError func(error)
}

// Open opens the destination dest (Off, Stdout, Stderr or a file path,
// appended to and created 0600). Off returns nil: a nil *Log records
// nothing.
func Open(dest string, stdout, stderr io.Writer, o Options) (*Log, error) {
	switch dest {
	case Off:
		return nil, nil
	case Stdout, "-":
		return New(stdout, o), nil
	case Stderr:
		return New(stderr, o), nil
	case "":
		return nil, errors.New("the audit log destination is empty: use off, stdout, stderr or a file path")
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	l := New(f, o)
	l.closer = f
	return l, nil
}

// New starts a Log writing to out.
func New(out io.Writer, o Options) *Log {
	l := &Log{out: out, max: o.MaxPending, onErr: o.OnError, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if l.max <= 0 {
		l.max = DefaultMaxPending
	}
	l.room.L = &l.mu
	l.events = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "audit", Name: "events_total",
		Help: "Audit lines recorded.",
	})
	l.writeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "audit", Name: "write_errors_total",
		Help: "Failed writes to the audit stream; each is retried, nothing is dropped.",
	})
	l.blocked = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "audit", Name: "blocked_seconds_total",
		Help: "Time requests and reconciles waited because the audit stream fell behind.",
	})
	go l.run()
	return l
}

// Collectors are the Log's metrics, for a registry.
func (l *Log) Collectors() []prometheus.Collector {
	return []prometheus.Collector{l.events, l.writeErrors, l.blocked}
}

// Register registers the Log's metrics with reg; a nil Log registers
// nothing.
func (l *Log) Register(reg prometheus.Registerer) error {
	if l == nil {
		return nil
	}
	for _, c := range l.Collectors() {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// bufPool holds the buffers lines are formatted in.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Record writes e as one line. It returns once the line is queued,
// waiting while the queue is full. A nil Log records nothing.
func (l *Log) Record(e *Event) {
	if l == nil {
		return
	}
	bp := bufPool.Get().(*[]byte)
	line := e.AppendJSON((*bp)[:0])
	l.enqueue(line)
	*bp = line[:0]
	bufPool.Put(bp)
}

func (l *Log) enqueue(line []byte) {
	l.mu.Lock()
	if len(l.pending) >= l.max && !l.closed {
		start := time.Now()
		for len(l.pending) >= l.max && !l.closed {
			l.room.Wait()
		}
		l.blocked.Add(time.Since(start).Seconds())
	}
	if l.closed {
		// After Close only a straggler gets here: written at once, after
		// everything Close wrote out.
		l.mu.Unlock()
		<-l.done
		l.mu.Lock()
		l.writeAll(line)
		l.mu.Unlock()
		l.events.Inc()
		return
	}
	l.pending = append(l.pending, line...)
	l.queued++
	l.mu.Unlock()
	l.events.Inc()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run writes what is pending whenever there is some, until Close.
func (l *Log) run() {
	defer close(l.done)
	for {
		l.mu.Lock()
		for len(l.pending) == 0 {
			if l.closed {
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
			<-l.wake
			// Let the lines of the next moment join this one's, so that
			// under load a wake-up and a write carry many requests' lines
			// rather than one each (what a hard crash can lose stays
			// "the lines of the last millisecond").
			time.Sleep(batchWait)
			l.mu.Lock()
		}
		buf, upTo := l.pending, l.queued
		l.pending = l.spare[:0]
		l.room.Broadcast()
		l.mu.Unlock()

		l.writeAll(buf)

		l.mu.Lock()
		l.spare = buf[:0]
		l.written = upTo
		l.room.Broadcast()
		l.mu.Unlock()
	}
}

// writeAll writes buf whole, retrying after a failure.
func (l *Log) writeAll(buf []byte) {
	for len(buf) > 0 {
		n, err := l.out.Write(buf)
		buf = buf[n:]
		if err == nil {
			continue
		}
		l.writeErrors.Inc()
		if l.onErr != nil {
			l.onErr(fmt.Errorf("writing the audit log (retrying in %s): %w", retryWait, err))
		}
		time.Sleep(retryWait)
	}
}

// Flush returns once every line recorded before it was called has been
// written to the stream.
func (l *Log) Flush() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	target := l.queued
	for l.written < target && !l.closed {
		l.room.Wait()
	}
}

// Close writes out every line recorded and closes a file the Log opened.
// Lines recorded after Close are written at once.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.room.Broadcast()
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}
