//go:build linux

package agent

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak/paktest"
	"golang.org/x/sys/unix"
)

// readOnlyView bind-mounts src read-only on a new folder and returns it;
// it is unmounted when the test ends.
func readOnlyView(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "inbound")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount %s: %v", src, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dst, unix.MNT_DETACH) })
	if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", dst, err)
	}
	if err := os.WriteFile(filepath.Join(dst, "probe"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("writing into the read-only view: %v, want EROFS", err)
	}
	return dst
}

// snapshot lists the names, sizes, modes and modification times in dir.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Name()+" "+fi.Mode().String()+" "+fi.ModTime().Format(time.RFC3339Nano)+" "+strings.Repeat("#", int(fi.Size()%7)))
	}
	return out
}

// TestAgentConfDirs (issue 14, point 5): a folder of adapter .conf files on
// a read-only bind mount, as VCF Operations' plugin folder would be: the
// image each conf names is kept present; a conf rewritten for a newer
// digest keeps that one (and, with keep_images: 1, the older is removed);
// a conf deleted releases its image; nothing is written in the folder.
func TestAgentConfDirs(t *testing.T) {
	k := newKeepFixture(t, "proj/conf-dir")
	src := filepath.Join(k.Dir, "plugins-inbound")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := func(i int) []byte {
		repo, digest, _ := strings.Cut(strings.TrimPrefix(k.refs[i], k.Reg.Addr), "@")
		return paktest.Pak{Kind: "ConfAdapter", Registry: k.Reg.Addr, Repository: repo, Digest: digest}.Conf()
	}
	path := filepath.Join(src, "ConfAdapter.conf")
	if err := os.WriteFile(path, conf(1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "README.txt"), []byte("not a conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	view := readOnlyView(t, src)
	config, inbox, state := k.AgentConfig("keep_images: 1\nconf_dirs: [" + view + "]\n")
	a := k.StartAgent(config, inbox, state)
	a.WaitStarted()
	confRow := func(ref string) bool {
		for _, p := range a.Status().Paks {
			if p.File == filepath.Join(view, "ConfAdapter.conf") && p.Reference == ref && p.Status == "present" {
				return true
			}
		}
		return false
	}
	a.Eventually("the conf's image is present", func() bool { return confRow(k.refs[1]) })
	if !k.Docker.HasImage(t, k.refs[1]) {
		t.Fatalf("%s is not in the engine", k.refs[1])
	}
	before := snapshot(t, src)
	a.EngineChecks(2) // two rescans
	if got := snapshot(t, src); !slices.Equal(got, before) {
		t.Fatalf("the conf folder changed:\n%v\nwas\n%v", got, before)
	}

	// VCF Operations upgrades the adapter: the conf names a newer digest.
	if err := os.WriteFile(path, conf(2), 0o644); err != nil {
		t.Fatal(err)
	}
	a.Eventually("the rewritten conf's image is present", func() bool { return confRow(k.refs[2]) })
	a.Eventually("the older digest is removed", func() bool { return a.Removal(k.refs[1]) == "removed" })
	if k.Docker.HasImage(t, k.refs[1]) || !k.Docker.HasImage(t, k.refs[2]) {
		t.Fatalf("after the upgrade: older present %v (want false), newer present %v (want true)", k.Docker.HasImage(t, k.refs[1]), k.Docker.HasImage(t, k.refs[2]))
	}

	// The adapter is uninstalled: its conf goes, the image is released.
	before = snapshot(t, src)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	a.Eventually("the deleted conf's image is released", func() bool {
		_, ok := a.Released(k.refs[2])
		return ok && len(a.Status().Paks) == 0
	})
	if !k.Docker.HasImage(t, k.refs[2]) {
		t.Errorf("the newest digest was removed; keep_images: 1 keeps it")
	}
	want := slices.DeleteFunc(before, func(e string) bool { return strings.HasPrefix(e, "ConfAdapter.conf ") })
	if got := snapshot(t, src); !slices.Equal(got, want) {
		t.Errorf("the conf folder holds %v after the conf was deleted, want %v", got, want)
	}
	if n := a.CountLogs("pak names no pullable image", nil); n != 0 {
		t.Errorf("%d files that are not confs were read as confs", n)
	}
}
