package testenv_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prepull/prepull/internal/testenv"
)

// TestRootfs builds (or finds cached) the trixie root that the Docker 26.1
// engine runs from, and checks that a second call finds the same root.
func TestRootfs(t *testing.T) {
	root := testenv.Rootfs(t, "trixie", "docker.io", "ca-certificates")
	for _, path := range []string{"usr/sbin/dockerd", "usr/bin/containerd", "etc/ssl/certs/ca-certificates.crt"} {
		if _, err := os.Stat(filepath.Join(root, path)); err != nil {
			t.Errorf("the root lacks %s: %v", path, err)
		}
	}
	if again := testenv.Rootfs(t, "trixie", "ca-certificates", "docker.io"); again != root {
		t.Errorf("the same packages in another order give %s, want %s", again, root)
	}
}
