//go:build race

package audit

// raceEnabled: the race detector instruments memory accesses and makes
// allocations of its own, so allocation counts mean nothing under it.
const raceEnabled = true
