//go:build linux

package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// sysProcAttr puts a helper in its own process group and has the kernel kill
// it when the thread that started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// sysProcAttrGentle is sysProcAttr for a helper that must get the chance to
// take its own children down: the kernel sends it SIGTERM, not SIGKILL.
// systemd-nspawn killed outright leaves its container running.
func sysProcAttrGentle() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// spawnRequest asks the spawner thread to start a command.
type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

var (
	spawnOnce sync.Once
	spawnc    = make(chan spawnRequest)
)

// startCmd starts cmd from one OS thread that lives as long as the test
// binary. Pdeathsig fires when the starting thread exits, not the process, so
// starting from an ordinary goroutine could kill a helper early should the Go
// runtime retire that thread.
func startCmd(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked, so the thread never exits
			for req := range spawnc {
				req.errc <- req.cmd.Start()
			}
		}()
	})
	req := spawnRequest{cmd: cmd, errc: make(chan error, 1)}
	spawnc <- req
	return <-req.errc
}

// unmountUnder detaches every mount at or below dir, deepest first. dockerd
// bind-mounts its data root onto itself and leaves that mount behind when it
// is killed.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, mp := range mounts {
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
	}
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountTmpfs makes dir and mounts a tmpfs of size bytes on it.
func mountTmpfs(dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return fmt.Errorf("mount a tmpfs of %d bytes on %s: %w", size, dir, err)
	}
	return nil
}

// onlyChild returns the pid of the one child of process pid, from
// /proc/PID/task/PID/children (a process's children are those of its
// threads; the main thread's are enough for systemd-nspawn and its stub
// init, which start one child each).
func onlyChild(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) != 1 {
		return 0, fmt.Errorf("process %d has %d children, want 1", pid, len(f))
	}
	return strconv.Atoi(f[0])
}

// mountOverlay mounts an overlay of lower, with upper and work, on merged.
func mountOverlay(lower, upper, work, merged string) error {
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount an overlay over %s on %s: %w", lower, merged, err)
	}
	return nil
}
