package testenv

import (
	"testing"
	"time"
)

// Eventually retries check until it returns nil, failing the test with the
// last error once timeout has passed. For state that controllers and
// informers reach asynchronously; never a way to measure speed.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
