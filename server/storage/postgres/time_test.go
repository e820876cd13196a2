package postgres_test

import "time"

// t0 is a fixed future instant the tests use as an expiry.
func t0() time.Time { return time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC) }
