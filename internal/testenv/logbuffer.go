package testenv

import (
	"bytes"
	"sync"
)

// LogBuffer collects what concurrent writers (a manager's logger, a child
// process's output) write, so that a test can scan it, e.g. for secrets
// that must never be logged or for RBAC denials.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
