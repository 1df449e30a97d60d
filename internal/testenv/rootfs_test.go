//go:build linux

package testenv_test

import (
	"os"
	"path/filepath"
	"slices"
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

// TestBuildRoots builds every root of testenv.Roots (or finds it cached),
// two at a time: scripts/test.sh runs it alone before the other tests.
func TestBuildRoots(t *testing.T) {
	for _, r := range testenv.Roots {
		t.Run(r.String(), func(t *testing.T) {
			t.Parallel()
			testenv.Rootfs(t, r.Suite, r.Packages...)
		})
	}
}

// TestRootsListEngines checks that Roots lists the root of every engine of
// Engines that runs from a Debian suite.
func TestRootsListEngines(t *testing.T) {
	for _, e := range testenv.Engines {
		if e.Suite == "" {
			continue
		}
		if !slices.ContainsFunc(testenv.Roots, func(r testenv.Root) bool {
			return r.Suite == e.Suite && slices.Contains(r.Packages, "docker.io")
		}) {
			t.Errorf("testenv.Roots lacks the %s root that Docker %s runs from", e.Suite, e.Name())
		}
	}
}
