package agent

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves size bytes of disk for f, so that a full disk later
// cannot stop a write within them. A failure only means less to say later.
func preallocate(f *os.File, size int64) { _ = unix.Fallocate(int(f.Fd()), 0, 0, size) }
