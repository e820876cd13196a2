package main

import (
	"net/url"
	"runtime"
	"sync"
	"time"
)

// A private_key_jwt flow's assertions are signed before its measured time,
// by every core at once, not by the load generator between two requests:
// an RSA-2048 signature costs the generator about a millisecond, which
// would hold the RS256 flow to a few hundred requests a second (its server
// CPU per request then measured at another rate than the baseline's), and
// every signature made during the measurement competes with the server for
// the machine's two cores. Each assertion is still used once.

// poolRefill: a pool older than this was filled for an earlier round.
const poolRefill = 20 * time.Second

// poolMaxFill bounds the signing before one run of a flow; what the run
// needs beyond the pool is signed as it goes (and said).
const poolMaxFill = 30 * time.Second

// poolMinRate is the request rate a first pool is sized for.
const poolMinRate = 4000

type assertionPool struct {
	mu       sync.Mutex
	forms    []url.Values
	filledAt time.Time
	filled   int // assertions in the last fill
	fell     int // assertions signed during the run: the pool ran dry
}

// fillAssertions fills alg's pool for the run about to start, unless it is
// fresh: sized for the rate of the previous run (poolMinRate at first) for
// the warm-up and the measured time, with a fifth to spare.
func (e *env) fillAssertions(alg string) error {
	p := e.secretless.pools[alg]
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.filledAt) < poolRefill {
		return nil
	}
	if p.fell > 0 {
		progress("private_key_jwt %s: the pool of %d ran dry, %d assertions were signed during the run", alg, p.filled, p.fell)
	}
	secs := (e.o.warmup + e.o.duration).Seconds()
	want := max(int(poolMinRate*secs), (p.filled-len(p.forms)+p.fell)*6/5)
	began := time.Now()
	forms := make([]url.Values, 0, want)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Since(began) < poolMaxFill {
				f, err := e.signerForm(alg)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err != nil || len(forms) >= want {
					mu.Unlock()
					return
				}
				forms = append(forms, f)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	p.forms, p.filledAt, p.filled, p.fell = forms, time.Now(), len(forms), 0
	progress("private_key_jwt %s: %d assertions signed ahead in %s", alg, len(forms), time.Since(began).Round(10*time.Millisecond))
	return nil
}

// assertionForm is a token request with an assertion never sent before:
// from the pool, or signed now when it ran dry.
func (e *env) assertionForm(alg string) (url.Values, error) {
	p := e.secretless.pools[alg]
	p.mu.Lock()
	if n := len(p.forms); n > 0 {
		f := p.forms[n-1]
		p.forms = p.forms[:n-1]
		p.mu.Unlock()
		return f, nil
	}
	p.fell++
	p.mu.Unlock()
	return e.signerForm(alg)
}
