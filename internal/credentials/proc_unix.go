//go:build unix

package credentials

import (
	"os/exec"
	"syscall"
)

// inGroup makes cmd start in a process group of its own, so that ending
// the group ends every process the command started, not only the command.
func inGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// processGroup is the group of a started command: its leader's id.
type processGroup struct{ pgid int }

// newGroup returns the group of cmd, started after inGroup.
func newGroup(cmd *exec.Cmd) (*processGroup, error) {
	return &processGroup{pgid: cmd.Process.Pid}, nil
}

// kill ends every process still in the group.
func (g *processGroup) kill() error {
	err := syscall.Kill(-g.pgid, syscall.SIGKILL)
	if err == syscall.ESRCH {
		return nil
	}
	return err
}

func (g *processGroup) close() {}
