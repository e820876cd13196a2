// Package testnode reads the answers of the Node.js harnesses the tests
// drive (test/e2e/openid-client): one JSON object per line on stdout.
package testnode

import (
	"bufio"
	"encoding/json"
	"testing"
	"time"
)

// Next returns the harness's next line as a JSON object, failing the test
// when the harness ends, prints something else, or says nothing within
// timeout.
func Next(t testing.TB, lines *bufio.Scanner, timeout time.Duration) map[string]any {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		if lines.Scan() {
			line <- lines.Text()
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			t.Fatal("openid-client's harness ended without an answer")
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("openid-client's harness printed %q: %v", l, err)
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("openid-client's harness printed nothing for %s", timeout)
		return nil
	}
}
