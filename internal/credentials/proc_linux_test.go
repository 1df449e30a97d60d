package credentials

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRunCommandTimeoutEndsChildren runs a command that starts a child in
// the background and hangs: when the timeout ends it, no process it
// started may remain.
func TestRunCommandTimeoutEndsChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	_, err := runCommand(nil, 300*time.Millisecond, []string{"sh", "-c", "sleep 300 & echo $! > " + pidFile + "; sleep 300"}, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error = %v, want a timeout", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if alive(t, pid) {
		t.Fatalf("the command's child %d still runs after the timeout", pid)
	}
}

// alive reports whether process pid still runs after its end was asked
// for: it waits for the exit on a pidfd, up to ten seconds (a bound for
// the failure only; a killed process exits at once).
func alive(t *testing.T, pid int) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return n == 0
}
