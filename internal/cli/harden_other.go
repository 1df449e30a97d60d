//go:build !linux

package cli

// harden does nothing outside Linux: macOS and Windows have no
// PR_SET_DUMPABLE (see docs/security.md).
func harden() error { return nil }
