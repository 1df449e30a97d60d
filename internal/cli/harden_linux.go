//go:build linux

package cli

import "golang.org/x/sys/unix"

// harden makes this process non-dumpable: no core dump, and no other
// process of the same user may ptrace it or read its /proc files (memory,
// environment). Every command may hold a secret (a password from standard
// input, a password file, a helper's answer), so all of them do it first.
func harden() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
