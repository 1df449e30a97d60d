package retry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var errTransient = errors.New("transient")

func TestDelayBounds(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{10, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		for range 100 {
			if d := b.Delay(tt.attempt); d < tt.min || d > tt.max {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tt.attempt, d, tt.min, tt.max)
			}
		}
	}
}

func TestDo(t *testing.T) {
	fast := Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}
	isTransient := func(err error) bool { return errors.Is(err, errTransient) }
	tests := []struct {
		name      string
		failures  int   // transient failures before the outcome
		final     error // what fn returns after the failures
		timeout   time.Duration
		wantCalls int
		wantErr   string
	}{
		{name: "first try", wantCalls: 1},
		{name: "after transient failures", failures: 3, wantCalls: 4},
		{name: "permanent error is not retried", final: errors.New("denied"), wantCalls: 1, wantErr: "denied"},
		{name: "gives up at the deadline", failures: 1 << 30, timeout: 50 * time.Millisecond, wantErr: "transient (gave up after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			calls, retries := 0, 0
			err := Do(ctx, fast, isTransient, func(int, error, time.Duration) { retries++ }, func(context.Context) error {
				calls++
				if calls <= tt.failures {
					return errTransient
				}
				return tt.final
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Do() = %v, want error containing %q", err, tt.wantErr)
			}
			if tt.wantCalls > 0 && calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if retries != calls-1 && tt.timeout == 0 && tt.final == nil {
				t.Errorf("onRetry called %d times for %d calls", retries, calls)
			}
		})
	}
}
