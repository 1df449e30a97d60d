//go:build linux

package testenv_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv"
)

// TestStartDockerSuite runs trixie's Docker Engine with each image store in
// systemd-nspawn: it answers as testenv.Engines says, keeps an image across a
// restart, stops cleanly, and leaves the cached root as it was.
func TestStartDockerSuite(t *testing.T) {
	for _, e := range testenv.Engines {
		if e.Suite != "trixie" {
			continue
		}
		t.Run(e.Store, func(t *testing.T) {
			root := testenv.Rootfs(t, e.Suite, "docker.io", "ca-certificates")
			marker := filepath.Join(root, "etc/prepull-rootfs")
			before, err := os.Stat(root)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			d := e.Start(t)
			t.Logf("started in %v", time.Since(start))

			reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
			digest := testenv.Docker(t).PushImage(t, reg, "proj/suite", testenv.ImageOptions{})
			ref := reg.Addr + "/proj/suite@" + digest
			d.Run(t, "pull", ref)
			start = time.Now()
			d.Restart(t)
			t.Logf("restarted in %v", time.Since(start))
			if !d.HasImage(t, ref) {
				t.Fatalf("%s is gone after a restart", ref)
			}
			start = time.Now()
			d.Stop(t)
			t.Logf("stopped in %v", time.Since(start))
			if log, _ := os.ReadFile(filepath.Join(d.Dir, "dockerd.log")); !strings.Contains(string(log), "Daemon shutdown complete") {
				t.Errorf("dockerd did not shut down cleanly:\n%s", log)
			}

			after, err := os.Stat(root)
			if err != nil {
				t.Fatal(err)
			}
			if !after.ModTime().Equal(before.ModTime()) {
				t.Errorf("the cached root's / changed (modified %v, was %v)", after.ModTime(), before.ModTime())
			}
			if _, err := os.Stat(marker); err != nil {
				t.Error(err)
			}
			if _, err := os.Stat(filepath.Join(root, "var/lib/docker/image")); err == nil {
				t.Error("the engine wrote into the cached root's /var/lib/docker")
			}
		})
	}
}
