//go:build unix

package agent

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// The agent runs on the Cloud Proxy (Linux); this file and sys_windows.go
// hold the few calls the package makes of the system, so that the package,
// and the command line that imports it, builds for every workstation.

// oNoFollow makes an open fail on a symlink.
const oNoFollow = syscall.O_NOFOLLOW

// fileIno returns fi's inode, or 0 when the system does not say.
func fileIno(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// tryLock takes an flock on f without waiting, shared or exclusive. held
// says another holder has it; err is any other failure.
func tryLock(f *os.File, exclusive bool) (held bool, err error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

// unlock releases tryLock's lock.
func unlock(f *os.File) { unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as systemd's
// MONOTONIC_USEC wants it.
func monotonicUsec() (int64, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, false
	}
	return ts.Nano() / 1000, true
}
