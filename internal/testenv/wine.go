//go:build linux

package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// RootWine is the root that Windows binaries run in: Debian trixie's Wine 10
// (bookworm's Wine 8 cannot start Go 1.24+ binaries). debootstrap follows
// Depends, not Recommends, so the root holds wine64 as apt-get install
// --no-install-recommends would: about 1.4 GB.
var RootWine = Root{Suite: "trixie", Packages: []string{"wine64"}}

// WineRoot returns the cached root of RootWine, and fails t when
// systemd-nspawn, which runs it, is missing.
func WineRoot(t testing.TB) string {
	t.Helper()
	if _, err := partNspawn.path(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return Rootfs(t, RootWine.Suite, RootWine.Packages...)
}

// WineWork is where Wine.Command binds the caller's work folder, as a
// Windows program sees it: Wine maps drive Z: to the container's root.
const WineWork = `Z:\w`

// Wine runs Windows programs in RootWine with systemd-nspawn, on the host's
// network, each command in a container of its own whose root is a throwaway
// overlay on the cached root, with one Wine prefix of the test binary's.
type Wine struct {
	root   string
	prefix string // the host folder bound at /root/pfx
}

var (
	wineOnce sync.Once
	theWine  *Wine
	wineErr  error
	// wineRuns names each container uniquely (with the test binary's pid).
	wineRuns atomic.Int32
)

// StartWine returns the test binary's Wine. Its prefix (C:, the registry)
// is made once, on first use, in the test binary's work folder on the host
// (never the container's /tmp, a fresh tmpfs each time), which Main
// removes: wineboot takes about ten seconds and writes 750 MB.
func StartWine(t testing.TB) *Wine {
	t.Helper()
	root := WineRoot(t)
	dir := workDir(t)
	wineOnce.Do(func() {
		w := &Wine{root: root, prefix: filepath.Join(dir, "wineprefix")}
		if wineErr = os.Mkdir(w.prefix, 0o755); wineErr != nil {
			return
		}
		// wineserver --wait: the registry is on disk before the container,
		// and wineserver with it, ends.
		cmd := w.command(dir, "/bin/sh", "-c", "/usr/lib/wine/wine64 wineboot --init && /usr/lib/wine/wineserver --wait")
		if out, err := cmd.CombinedOutput(); err != nil {
			wineErr = fmt.Errorf("make the Wine prefix (wineboot --init): %w\n%s", err, out)
			return
		}
		theWine = w
	})
	if wineErr != nil {
		t.Fatalf("testenv: %v", wineErr)
	}
	return theWine
}

// Command returns the command that runs the Windows program exe (a host
// path) with args under Wine, with the host folder work bound at /w
// (WineWork to the program) and exe's folder bound read-only at /x. Its exit
// code is the program's; stderr also carries Wine's own diagnostics. Commands
// of one Wine may run one after the other, not at once: each container has a
// wineserver of its own on the shared prefix.
func (w *Wine) Command(work, exe string, args ...string) *exec.Cmd {
	argv := append([]string{"/usr/lib/wine/wine64", `Z:\x\` + filepath.Base(exe)}, args...)
	return w.command(work, append([]string{"--bind-ro=" + filepath.Dir(exe) + ":/x"}, argv...)...)
}

// command returns the systemd-nspawn command that runs argv (after any
// nspawn options it starts with) in w's root with work bound at /w.
func (w *Wine) command(work string, argv ...string) *exec.Cmd {
	nspawn, _ := partNspawn.path() // WineRoot checked it
	opts := []string{
		"--quiet", "--register=no", "--keep-unit", "--console=pipe", "--as-pid2",
		"--machine=" + fmt.Sprintf("pp%d-wine%d", os.Getpid(), wineRuns.Add(1)),
		// The cached root stays as built: what Wine writes outside the
		// prefix (menus under ~/.local) lands in a tmpfs.
		"--volatile=overlay",
		"--directory=" + w.root,
		"--bind=" + w.prefix + ":/root/pfx",
		"--bind=" + work + ":/w",
		"--setenv=WINEPREFIX=/root/pfx",
		// No fixme: lines, no desktop menus, no prompt for Gecko or Mono.
		"--setenv=WINEDEBUG=fixme-all",
		"--setenv=WINEDLLOVERRIDES=winemenubuilder.exe,mscoree,mshtml=d",
		"--setenv=" + ownerEnv + "=" + strconv.Itoa(os.Getpid()),
	}
	for len(argv) > 0 && strings.HasPrefix(argv[0], "--") {
		opts, argv = append(opts, argv[0]), argv[1:]
	}
	cmd := exec.Command(nspawn, append(opts, argv...)...)
	cmd.SysProcAttr = sysProcAttrGentle()
	return cmd
}
