package admission

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Never more than Limit requests hold a slot, however many arrive; the
// rest wait in a bounded queue or are refused, and every request is
// either admitted or refused, none lost.
func TestLimiterBoundsConcurrency(t *testing.T) {
	l := New(3, 2, 50*time.Millisecond)
	var mu sync.Mutex
	inFlight, peak, admitted, refused := 0, 0, 0, 0
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !l.Acquire(context.Background()) {
				mu.Lock()
				refused++
				mu.Unlock()
				return
			}
			mu.Lock()
			admitted++
			inFlight++
			peak = max(peak, inFlight)
			mu.Unlock()
			<-release
			mu.Lock()
			inFlight--
			mu.Unlock()
			l.Release()
		}()
	}
	// Let every goroutine either take a slot or give up waiting: the slots
	// stay taken until release, so the queue's waiters are refused after
	// MaxWait.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		decided := admitted + refused
		mu.Unlock()
		if decided == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 20 requests admitted or refused after 10 s", decided)
		}
	}
	close(release)
	wg.Wait()
	if peak > 3 {
		t.Errorf("%d requests held a slot at once, limit 3", peak)
	}
	if admitted+refused != 20 || admitted < 3 || refused == 0 {
		t.Errorf("admitted %d, refused %d of 20; want 3 or more admitted and some refused", admitted, refused)
	}
	if l.Shed() != int64(refused) {
		t.Errorf("Shed() = %d, refused %d", l.Shed(), refused)
	}
	if l.InFlight() != 0 {
		t.Errorf("InFlight() = %d after all released", l.InFlight())
	}
}

// A request that waits gets the slot a finishing one frees.
func TestLimiterQueueHandsOverSlots(t *testing.T) {
	l := New(1, 1, time.Minute)
	if !l.Acquire(context.Background()) {
		t.Fatal("first request refused")
	}
	got := make(chan bool)
	go func() { got <- l.Acquire(context.Background()) }()
	// The second request is in the queue before the third arrives.
	for deadline := time.Now().Add(10 * time.Second); l.waiting.Load() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second request never queued")
		}
	}
	if l.Acquire(context.Background()) {
		t.Fatal("a third request was admitted past a full slot and a full queue")
	}
	l.Release()
	if !<-got {
		t.Fatal("the waiting request was refused although a slot was freed")
	}
	l.Release()
}

// Without a queue a request that finds every slot taken is refused at once.
func TestLimiterWithoutQueue(t *testing.T) {
	l := New(1, 0, 0)
	if !l.Acquire(context.Background()) {
		t.Fatal("first request refused")
	}
	if l.Acquire(context.Background()) {
		t.Fatal("second request admitted")
	}
	l.Release()
	if !l.Acquire(context.Background()) {
		t.Fatal("a request after the release was refused")
	}
}

// A waiting request whose client has gone gives up its place.
func TestLimiterWaitEndsWithContext(t *testing.T) {
	l := New(1, 1, time.Hour)
	l.Acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- l.Acquire(ctx) }()
	cancel()
	if <-done {
		t.Fatal("admitted after the context ended")
	}
}
