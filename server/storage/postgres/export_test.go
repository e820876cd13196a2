package postgres

import "time"

// SetListenerHeartbeat shortens the listener's quiet time for a test.
func SetListenerHeartbeat(d time.Duration) (restore func()) {
	old := listenerHeartbeat
	listenerHeartbeat = d
	return func() { listenerHeartbeat = old }
}
