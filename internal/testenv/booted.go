//go:build linux

package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var partNsenter = part{name: "nsenter", pkg: "util-linux", purpose: "commands inside a booted container"}

// bootTimeout bounds a boot until systemd reports the system running.
const bootTimeout = 3 * time.Minute

// Booted is a container booted with systemd as its PID 1, from a root made
// by Rootfs. It shares the host's network, so services on 127.0.0.1 (a
// registry of the test) are reachable from inside.
type Booted struct {
	// Root is the container's root as the host sees it: an overlay over
	// the cached root, writable and the test's own.
	Root string

	leader  int    // the host pid of the container's PID 1
	started string // when it started, to tell it from a later process of the same pid
	nsenter string
}

var bootCount atomic.Int32

// Boot boots root (a Rootfs) with systemd-nspawn -b, as a writable overlay
// that leaves the cached root untouched, and waits until systemd reports the
// system running. prepare, when not nil, runs first with the overlay's path,
// to put files in place before anything starts. A Docker Engine in the root
// (docker.io) is configured to leave the host's network alone (no bridge,
// no iptables rules, no IP forwarding: /proc/sys is read-only in the
// container, and a host with forwarding off would stop dockerd) and to use the vfs storage driver, since its data root
// is on overlayfs. The container is shut down when t ends; a failed test
// logs the tail of the container's console and journal first.
func Boot(t testing.TB, root string, prepare func(dir string)) *Booted {
	t.Helper()
	nspawn := partNspawn.mustPath(t)
	dir := filepath.Join(workDir(t), fmt.Sprintf("boot-%d", bootCount.Add(1)))
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "root")
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := mountOverlay(root, upper, work, merged); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		unmountUnder(merged)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	b := &Booted{Root: merged, nsenter: partNsenter.mustPath(t)}
	if isExecutable(b.Path("/usr/sbin/dockerd")) {
		b.WriteFile(t, "/etc/docker/daemon.json", 0o644,
			`{"iptables": false, "ip6tables": false, "ip-forward": false, "bridge": "none", "storage-driver": "vfs"}`+"\n")
	}
	if prepare != nil {
		prepare(merged)
	}

	logPath := filepath.Join(dir, "console.log")
	env := cleanEnv([]string{"SYSTEMD_", "NOTIFY_SOCKET", "LISTEN_"})
	p, err := startProcessWith(sysProcAttrGentle(), "systemd-nspawn", logPath, env, nspawn, "-q", "--register=no", "--keep-unit",
		"--console=passive", "--setenv="+ownerEnv+"="+strconv.Itoa(os.Getpid()), "--machine="+filepath.Base(dir)+"-"+strconv.Itoa(os.Getpid()), "-b", "-D", merged)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := b.Run(t, "journalctl", "--no-pager", "-n", "60")
			t.Logf("testenv: the booted container's journal ends:\n%s", out)
		}
		// SIGTERM makes nspawn shut the container down cleanly.
		if err := p.stop(time.Minute, nil); err != nil {
			t.Errorf("testenv: %v", err)
		}
		// Should nspawn have died first, its container lives on: killing
		// its PID 1 ends every process in it.
		if b.leader > 1 && isContainerInit(b.leader) && procStart(b.leader) == b.started {
			_ = syscall.Kill(b.leader, syscall.SIGKILL)
		}
	})

	b.waitRunning(t, p, logPath)
	return b
}

// waitRunning waits for the container's init under nspawn p, then until
// its systemd reports the system running, and fails t when it does not
// within bootTimeout, with the last lines of the console log logPath.
func (b *Booted) waitRunning(t testing.TB, p *process, logPath string) {
	t.Helper()
	deadline := time.Now().Add(bootTimeout)
	for b.leader == 0 {
		if p.exited() {
			t.Fatalf("testenv: systemd-nspawn exited (%v); last lines of %s:\n%s", p.waitErr, logPath, logTail(logPath, 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: no container init under systemd-nspawn after %v; last lines of %s:\n%s", bootTimeout, logPath, logTail(logPath, 30))
		}
		b.leader = containerInit(p.cmd.Process.Pid)
		b.started = procStart(b.leader)
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var state string
	var err error
	for {
		// No answer, or "offline", until systemd listens on its socket.
		var out string
		out, err = b.run(ctx, "systemctl", "is-system-running", "--wait")
		state = strings.TrimSpace(out)
		if (state != "" && state != "offline") || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if state != "running" {
		failed, _ := b.Run(t, "systemctl", "--no-pager", "--failed")
		t.Fatalf("testenv: the booted container is %q, not running (%v); failed units:\n%s\nlast lines of %s:\n%s",
			state, err, failed, logPath, logTail(logPath, 30))
	}
}

// containerInit returns the host pid of the first descendant of pid that is
// in another pid namespace: the container's PID 1. It returns 0 while there
// is none yet.
func containerInit(pid int) int {
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if otherPidNamespace(p) {
			// Until it executes systemd, it is nspawn's own child.
			if isContainerInit(p) {
				return p
			}
			return 0
		}
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, task := range tasks {
			data, _ := os.ReadFile(task)
			for _, f := range strings.Fields(string(data)) {
				if c, err := strconv.Atoi(f); err == nil {
					queue = append(queue, c)
				}
			}
		}
	}
	return 0
}

// otherPidNamespace reports whether pid lives in a pid namespace other than
// the test's.
func otherPidNamespace(pid int) bool {
	own, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return false
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	return err == nil && ns != own
}

// isContainerInit reports whether pid is systemd in a pid namespace of its
// own: a booted container's PID 1.
func isContainerInit(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(comm)) == "systemd" && otherPidNamespace(pid)
}

// procStart returns the start time of pid (field 22 of /proc/PID/stat), or
// "" when it cannot be read.
func procStart(pid int) string {
	if f := statFields(pid); len(f) >= 20 {
		return f[19]
	}
	return ""
}

// statFields returns the fields of /proc/PID/stat after the command name
// (state, ppid, ...), or nil when it cannot be read.
func statFields(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(data[i+1:]))
}

// Path returns the host path of path inside the container.
func (b *Booted) Path(path string) string {
	return filepath.Join(b.Root, path)
}

// WriteFile writes a file inside the container, making its folders (mode
// 0755), and fails t on error.
func (b *Booted) WriteFile(t testing.TB, path string, mode os.FileMode, data string) {
	t.Helper()
	p := b.Path(path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// commandTimeout bounds one command run inside the container.
const commandTimeout = 2 * time.Minute

// Run runs argv inside the container (its mount, UTS, IPC, network and pid
// namespaces, as root, with a clean environment) and returns its standard
// output. The error says how it ended and holds its standard error.
func (b *Booted) Run(t testing.TB, argv ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return b.run(ctx, argv...)
}

// MustRun is Run that fails t when the command fails.
func (b *Booted) MustRun(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := b.Run(t, argv...)
	if err != nil {
		t.Fatalf("testenv: in the booted container: %s: %v", strings.Join(argv, " "), err)
	}
	return out
}

func (b *Booted) run(ctx context.Context, argv ...string) (string, error) {
	args := append([]string{"-t", strconv.Itoa(b.leader), "-m", "-u", "-i", "-n", "-p", "--"}, argv...)
	cmd := exec.CommandContext(ctx, b.nsenter, args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
		"TERM=dumb", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	// Its own process group: the entered commands must never share the
	// test's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("exit status %d", exit.ExitCode())
		}
		err = fmt.Errorf("%w; stderr: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), err
}
