package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// interruption is the cause of a context canceled by a signal.
type interruption struct{ sig os.Signal }

func (i interruption) Error() string {
	return i.text(runtime.GOOS)
}

// text is the interruption's error as a user of goos knows what sent it.
// Windows has no signals: Go's runtime delivers os.Interrupt for Ctrl-C
// and Ctrl-Break, and SIGTERM for the console window closed, a log-off or
// a shutdown.
func (i interruption) text(goos string) string {
	switch {
	case i.sig == syscall.SIGTERM && goos == "windows":
		return "terminated (console closed, log-off or shutdown)"
	case i.sig == syscall.SIGTERM:
		return "terminated (SIGTERM)"
	case goos == "windows":
		return "interrupted (Ctrl-C)"
	}
	return "interrupted (Ctrl-C, SIGINT)"
}

// code is the exit code of a run the signal ended.
func (i interruption) code() ExitCode {
	if i.sig == syscall.SIGTERM {
		return ExitTerminated
	}
	return ExitInterrupted
}

// interrupted returns the interruption that canceled ctx, if a signal did.
func interrupted(ctx context.Context) (interruption, bool) {
	var i interruption
	ok := ctx.Err() != nil && errors.As(context.Cause(ctx), &i)
	return i, ok
}

// signalContext returns a context canceled, with an interruption as its
// cause, by the first SIGINT or SIGTERM. After that first signal the
// default handling is back: a second Ctrl-C ends prepull at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			cancel(interruption{s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel(nil)
	}
}
