//go:build linux

package testenv

import (
	"os"
	"strconv"
	"testing"
)

// The /proc readers that find and check a booted container's init, on the
// test process itself: it is in the host's pid namespace and not systemd.
func TestBootedProcReaders(t *testing.T) {
	f := statFields(os.Getpid())
	if len(f) < 20 || f[1] != strconv.Itoa(os.Getppid()) {
		t.Fatalf("statFields(self) = %q, want the parent pid %d second", f, os.Getppid())
	}
	if first := procStart(os.Getpid()); first == "" || procStart(os.Getpid()) != first {
		t.Fatal("procStart(self) is empty or changes")
	}
	if statFields(-1) != nil || procStart(-1) != "" {
		t.Fatal("a pid that does not exist has stat fields")
	}
	if otherPidNamespace(os.Getpid()) || isContainerInit(os.Getpid()) {
		t.Fatal("the test process is taken for a container init")
	}
	if pid := containerInit(os.Getpid()); pid != 0 {
		t.Fatalf("containerInit(self) = %d, want 0: no child in another pid namespace", pid)
	}
}
