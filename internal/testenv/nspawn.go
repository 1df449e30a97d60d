package testenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

var partNspawn = part{name: "systemd-nspawn", pkg: "systemd-container", purpose: "the containers that newer engines and a booted systemd run in"}

// EngineSuites are the Debian suites whose Docker Engine StartDocker runs,
// with the release each one ships: the one a test names, checked against
// what the engine says (Info) so that a moved suite shows.
var EngineSuites = map[string]string{
	"trixie": "26.1",
	"sid":    "28.5",
}

// dockerRootfs returns the cached root of suite with the Docker Engine in it,
// and fails t when systemd-nspawn, which runs it, is missing.
func dockerRootfs(t testing.TB, suite string) string {
	t.Helper()
	if _, err := partNspawn.path(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return Rootfs(t, suite, "docker.io", "ca-certificates")
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
