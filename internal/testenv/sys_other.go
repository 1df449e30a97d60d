//go:build !linux

package testenv

import (
	"errors"
	"os/exec"
	"syscall"
)

// sysProcAttr puts a helper in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// sysProcAttrGentle is sysProcAttr.
func sysProcAttrGentle() *syscall.SysProcAttr { return sysProcAttr() }

// startCmd starts cmd.
func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// unmountUnder does nothing where dockerd does not bind-mount its data root.
func unmountUnder(string) {}

// mountTmpfs fails: only Linux tests get a small disk.
func mountTmpfs(string, int64) error { return errors.New("a tmpfs disk needs Linux") }

// onlyChild fails: systemd-nspawn engines need Linux.
func onlyChild(int) (int, error) { return 0, errors.New("systemd-nspawn needs Linux") }

// mountOverlay fails: booted containers need Linux.
func mountOverlay(_, _, _, _ string) error { return errors.New("an overlay mount needs Linux") }
