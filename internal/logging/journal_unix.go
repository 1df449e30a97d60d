//go:build unix

package logging

import (
	"fmt"
	"os"
	"syscall"
)

// isJournal reports whether f is the stream systemd connected to the
// journal, as $JOURNAL_STREAM ("device:inode") names it.
func isJournal(f *os.File) bool {
	js := os.Getenv("JOURNAL_STREAM")
	if js == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
