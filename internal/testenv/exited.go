//go:build linux

package testenv

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/prepull/prepull/internal/testenv/await"
)

// Exited reports whether process pid has exited after its end was asked
// for. It waits for the exit on a pidfd, which a process that ended is
// readable on, up to the test's own deadline (await.Limit): a bound for the
// failure only, since a killed process exits at once. A pid that no longer
// exists has exited.
func Exited(t *testing.T, pid int) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(await.Limit(t).Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue // a signal to the test binary, not the process's end
		}
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
}
