//go:build windows

package credentials

import (
	"os/exec"

	"golang.org/x/sys/windows"
)

// inGroup has nothing to prepare on Windows: the command joins a job
// object once it has started (newGroup).
func inGroup(*exec.Cmd) {}

// processGroup is a job object holding a started command and every process
// it starts afterwards.
type processGroup struct{ job windows.Handle }

// newGroup puts the started cmd into a new job object. A process the
// command starts before it joins escapes the job; helpers start theirs
// later than that.
func newGroup(cmd *exec.Cmd) (*processGroup, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, err
	}
	proc, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(cmd.Process.Pid))
	if err != nil {
		windows.CloseHandle(job)
		return nil, err
	}
	defer windows.CloseHandle(proc)
	if err := windows.AssignProcessToJobObject(job, proc); err != nil {
		windows.CloseHandle(job)
		return nil, err
	}
	return &processGroup{job: job}, nil
}

// kill ends every process in the job.
func (g *processGroup) kill() error { return windows.TerminateJobObject(g.job, 1) }

// close lets go of the job; processes still in it (a daemon a helper
// started on purpose) keep running.
func (g *processGroup) close() { windows.CloseHandle(g.job) }
