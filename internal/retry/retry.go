// Package retry runs an operation again after transient failures, waiting
// with exponential backoff and jitter, until it succeeds, fails for good, or
// its context ends.
package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential backoff schedule.
type Backoff struct {
	Base time.Duration // the first delay, before jitter
	Max  time.Duration // no delay exceeds this, before jitter
}

// Default is the schedule prepull uses unless told otherwise.
var Default = Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second}

// Delay returns how long to wait after the given failed attempt (1 for the
// first): Base doubled per attempt up to Max, then jittered to between half
// and all of that, so that many waiters do not retry in step.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Do calls fn until it returns nil or an error that retryable rejects, or
// until ctx ends. Before each wait it calls onRetry, if set, with the attempt
// that failed, its error and the delay. When ctx ends during a wait, Do
// returns the last error of fn, noting how many attempts were made.
func Do(ctx context.Context, b Backoff, retryable func(error) bool, onRetry func(attempt int, err error, delay time.Duration), fn func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if !retryable(err) {
			return err
		}
		delay := b.Delay(attempt)
		// The deadline may have passed while fn ran: the same words then as
		// when it would pass during the wait.
		if deadline, ok := ctx.Deadline(); ctx.Err() != nil || ok && time.Until(deadline) <= delay {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		if onRetry != nil {
			onRetry(attempt, err, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		case <-t.C:
		}
	}
}
