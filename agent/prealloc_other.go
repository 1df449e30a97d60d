//go:build !linux

package agent

import "os"

// preallocate is a no-op where there is no fallocate: the agent runs on
// Linux.
func preallocate(*os.File, int64) {}
