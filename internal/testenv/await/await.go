// Package await bounds a test's wait for something that will happen by the
// test's own deadline, not by a guess of how long it takes: on a busy
// machine under -race a guess fails a test that would have passed.
package await

import (
	"testing"
	"time"
)

// noDeadline is the limit of a test run without a deadline (go test
// -timeout 0).
const noDeadline = 10 * time.Minute

// margin is what Limit keeps back from the test's deadline, so that the
// failure message and the cleanups (stopping engines, killing processes)
// still run before go test panics on its timeout.
const margin = 30 * time.Second

// Limit is how long t may still wait for an event it expects: until the
// test binary's deadline (go test -timeout) less a margin, or 10 minutes
// without one (go test -timeout 0, or a benchmark). A wait that reaches it failed: what it waited for never
// happened.
func Limit(t testing.TB) time.Duration {
	tt, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return noDeadline
	}
	d, ok := tt.Deadline()
	if !ok {
		return noDeadline
	}
	left := time.Until(d)
	if left < 2*margin {
		return max(left/2, 0)
	}
	return left - margin
}

// Until calls cond every interval until it returns true, and reports
// whether it did so within Limit(t). The caller fails the test, naming
// what it waited for, when it did not.
func Until(t testing.TB, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(Limit(t))
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}
