//go:build linux

package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// tmpfsCount numbers the folders Tmpfs made.
var tmpfsCount atomic.Int32

// Tmpfs mounts a tmpfs of size bytes (mode 0700) on a new folder of the
// test's own, for a small disk that a test can fill, and unmounts it when t
// ends. It calls Require.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	Require(t)
	dir := filepath.Join(workDir(t), fmt.Sprintf("tmpfs-%d", tmpfsCount.Add(1)))
	if err := mountTmpfs(dir, size); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		unmountUnder(dir)
		_ = os.RemoveAll(dir)
	})
	return dir
}
