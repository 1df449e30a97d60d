//go:build linux

package testenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Engine is one Docker Engine release and image store that the tests run
// against.
type Engine struct {
	// Version is the release, major.minor, that the engine must say it is:
	// a stable suite's (or the host's) is pinned. Empty for a suite that
	// moves (sid): the tests run whatever release it ships, and
	// docs/compatibility.md records it.
	Version string
	// Store is the image store: "classic" (a graph driver, vfs here) or
	// "containerd" (the containerd image store).
	Store string
	// Suite is the Debian suite that ships the release; empty for the
	// host's own Docker Engine.
	Suite string
}

// Engines are the Docker Engines of the compatibility matrix: the host's
// (Debian bookworm), trixie's and sid's, with each image store they have.
var Engines = []Engine{
	{Version: "20.10", Store: "classic"},
	{Version: "26.1", Store: "classic", Suite: "trixie"},
	{Version: "26.1", Store: "containerd", Suite: "trixie"},
	{Store: "classic", Suite: "sid"},
	{Store: "containerd", Suite: "sid"},
}

// Name is what subtests of e are named by: its pinned release, or the
// suite that moves.
func (e Engine) Name() string {
	if e.Version == "" {
		return e.Suite
	}
	return e.Version
}

// Start starts the engine for t, as StartDocker does, and fails t unless it
// says it is this release (when pinned) with this store: a stable suite
// that moved on to another release must show, not silently test something
// else under the old name.
func (e Engine) Start(t testing.TB) *DockerEngine {
	t.Helper()
	d := StartDocker(t, DockerOptions{Suite: e.Suite, ContainerdStore: e.Store == "containerd"})
	info := d.Info(t)
	release := e.Version == "" || strings.HasPrefix(info.Version, e.Version+".")
	if !release || info.ContainerdStore != (e.Store == "containerd") {
		where := "the host"
		if e.Suite != "" {
			where = "Debian " + e.Suite
		}
		t.Fatalf("testenv: %s runs Docker %s (containerd image store: %v), want %s with the %s store: update testenv.Engines, the tests' names and docs/compatibility.md",
			where, info.Version, info.ContainerdStore, e.Name(), e.Store)
	}
	return d
}

// ForEachEngine runs fn in a subtest NAME/STORE of t for each of Engines,
// each with an engine of its own, stopped when fn returns. The releases run
// one after the other; the stores of one release run side by side (parallel
// subtests, so -parallel bounds them), which keeps at most two engines
// running and the matrix's time near that of three engines.
func ForEachEngine(t *testing.T, fn func(t *testing.T, d *DockerEngine)) {
	t.Helper()
	var names []string
	for _, e := range Engines {
		if !slices.Contains(names, e.Name()) {
			names = append(names, e.Name())
		}
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			for _, e := range Engines {
				if e.Name() == n {
					t.Run(e.Store, func(t *testing.T) {
						t.Parallel()
						fn(t, e.Start(t))
					})
				}
			}
		})
	}
}

var partNspawn = part{name: "systemd-nspawn", pkg: "systemd-container", purpose: "the containers that newer engines and a booted systemd run in"}

// dockerRootfs returns the cached root of suite with the Docker Engine in it,
// and fails t when systemd-nspawn, which runs it, is missing.
func dockerRootfs(t testing.TB, suite string) string {
	t.Helper()
	if _, err := partNspawn.path(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return Rootfs(t, suite, dockerPackages...)
}

// nspawnDockerd returns the command line that runs the dockerd of root in
// systemd-nspawn for d, with flags, and makes d's signals go to that dockerd.
//
// The container shares the host's network, so it reaches registries on
// 127.0.0.1. Its root is an overlay on a tmpfs (--volatile=overlay), so
// nothing it writes reaches the cached root; d.Dir is bound to /run/x (the
// socket and daemon.json), d's data root to /var/lib/docker, so images stay
// across a restart. --register=no --keep-unit keep it out of machined and
// in the test's own cgroup.
func nspawnDockerd(d *DockerEngine, root string, flags []string) ([]string, error) {
	nspawn, err := partNspawn.path()
	if err != nil {
		return nil, err
	}
	const inside = "/run/x"
	argv := []string{nspawn,
		"--quiet", "--register=no", "--keep-unit",
		// Unique per engine: two engines may run from one root at once.
		"--machine=" + fmt.Sprintf("pp%d-%s", os.Getpid(), filepath.Base(d.Dir)),
		"--console=pipe", // no pseudo-terminal: plain logs, no colours
		"--volatile=overlay",
		"--directory=" + root,
		"--bind=" + d.Dir + ":" + inside,
		"--bind=" + d.dataRoot + ":/var/lib/docker",
		"--setenv=" + ownerEnv + "=" + strconv.Itoa(os.Getpid()),
		"--as-pid2",
		"/usr/sbin/dockerd",
		"--config-file", inside + "/daemon.json",
		"-H", "unix://" + inside + "/" + filepath.Base(d.sock),
	}
	// systemd-nspawn's stub init ignores SIGTERM and the kill signal it
	// sends for one is SIGKILL: signals go to dockerd itself, the stub's
	// one child, and the container ends when dockerd does.
	d.target = func(leader int) (int, error) {
		stub, err := onlyChild(leader)
		if err != nil {
			return 0, fmt.Errorf("find the container of systemd-nspawn (pid %d): %w", leader, err)
		}
		pid, err := onlyChild(stub)
		if err != nil {
			return 0, fmt.Errorf("find dockerd in the container (stub init pid %d): %w", stub, err)
		}
		return pid, nil
	}
	return append(argv, flags...), nil
}

// EngineInfo is what an engine says of itself.
type EngineInfo struct {
	// Version is the engine's release, as "26.1.5+dfsg1".
	Version string
	// ContainerdStore tells whether images live in the containerd image
	// store rather than a classic graph driver.
	ContainerdStore bool
}

// Info asks the engine what it is.
func (d *DockerEngine) Info(t testing.TB) EngineInfo {
	t.Helper()
	body, err := d.apiGet("/info")
	if err != nil {
		t.Fatalf("testenv: ask the engine for /info: %v", err)
	}
	var info struct {
		ServerVersion string
		DriverStatus  [][2]string
	}
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("testenv: the engine's /info: %v", err)
	}
	ei := EngineInfo{Version: info.ServerVersion}
	for _, kv := range info.DriverStatus {
		if kv[0] == "driver-type" && strings.Contains(kv[1], "snapshotter") {
			ei.ContainerdStore = true
		}
	}
	return ei
}

// ownerEnv, in the environment of a dockerd in systemd-nspawn, holds the pid
// of the test binary that started it.
const ownerEnv = "PREPULL_TESTENV_OWNER"

// reapStaleContainers kills the systemd-nspawn containers of test binaries
// that died without Main's cleanup. Pdeathsig kills systemd-nspawn with its
// test binary, but the container (the stub init and dockerd) outlives
// systemd-nspawn: killing the stub init, the container's pid 1, ends it all.
func reapStaleContainers() {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, path := range procs {
		env, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		owner := -1
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte(ownerEnv+"=")); ok {
				owner, _ = strconv.Atoi(string(v))
			}
		}
		if owner <= 0 || !errors.Is(syscall.Kill(owner, 0), syscall.ESRCH) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			continue
		}
		if ppid := parentPID(pid); ppid > 1 {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid)); strings.Contains(string(comm), "stubinit") {
				_ = syscall.Kill(ppid, syscall.SIGKILL)
			}
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// parentPID returns the parent of process pid, or 0 when it cannot tell.
func parentPID(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
