//go:build !linux

package testenv

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts a helper in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// startCmd starts cmd.
func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// unmountUnder does nothing where dockerd does not bind-mount its data root.
func unmountUnder(string) {}
