//go:build !unix

package logging

import "os"

// isJournal is false where there is no systemd journal.
func isJournal(*os.File) bool { return false }
