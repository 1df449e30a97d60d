//go:build linux

package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a long-running helper (dockerd, docker-registry) started in its
// own process group, with its output appended to a log file.
type process struct {
	name    string
	log     string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has been waited for
	waitErr error         // set before done is closed
}

// service is a long-running helper that a test may stop and start again with
// the same command line, log, port or socket: dockerd, docker-registry,
// sshd. Its owner fills in the fields before the first start.
type service struct {
	name    string        // the program, for messages
	logPath string        // where its output is appended
	env     []string      // its environment
	argv    []string      // its command line
	probe   func() error  // nil once it answers
	grace   time.Duration // how long stop waits after SIGTERM
	before  func()        // if set, runs before each start (leftovers of a killed run)
	after   func()        // if set, runs after each stop
	// target, if set, returns the pid that signals go to instead of the
	// process started (leader): dockerd inside systemd-nspawn.
	target func(leader int) (int, error)
	// attr, if set, replaces sysProcAttr's process attributes: another
	// user, say.
	attr *syscall.SysProcAttr

	mu   sync.Mutex
	proc *process // nil while stopped
}

// start starts the service and waits until it answers, for up to limit
// (the test's own deadline, await.Limit).
func (s *service) start(limit time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("%s is running already", s.name)
	}
	if s.before != nil {
		s.before()
	}
	attr := s.attr
	if attr == nil {
		attr = sysProcAttr()
	}
	p, err := startProcessWith(attr, s.name, s.logPath, s.env, s.argv...)
	if err != nil {
		return err
	}
	if err := p.waitReady(limit, s.probe); err != nil {
		_ = p.stop(time.Second, nil)
		return err
	}
	s.proc = p
	return nil
}

// stop stops the service; a stopped one is left as it is.
func (s *service) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	err := s.proc.stop(s.grace, func() error { return s.signalLocked(syscall.SIGTERM) })
	s.proc = nil
	if s.after != nil {
		s.after()
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", s.name, err)
	}
	return nil
}

func (s *service) signalLocked(sig syscall.Signal) error {
	pid := s.proc.cmd.Process.Pid
	if s.target != nil {
		var err error
		if pid, err = s.target(pid); err != nil {
			return err
		}
	}
	return syscall.Kill(pid, sig)
}

// running reports whether the service runs.
func (s *service) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// startProcess starts argv with env, appending its output to logPath. The
// process gets its own process group and, on Linux, is killed when the test
// binary dies.
func startProcess(name, logPath string, env []string, argv ...string) (*process, error) {
	return startProcessWith(sysProcAttr(), name, logPath, env, argv...)
}

// startProcessWith is startProcess with the process attributes attr.
func startProcessWith(attr *syscall.SysProcAttr, name, logPath string, env []string, argv ...string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	defer f.Close() // the child holds its own descriptor
	fmt.Fprintf(f, "--- testenv: %s: starting %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = attr
	if err := startCmd(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to end with term (SIGTERM to the process when nil),
// waits up to grace, then kills the whole process group and waits for the
// process to be reaped.
func (p *process) stop(grace time.Duration, term func() error) error {
	if !p.exited() {
		if term == nil {
			term = func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }
		}
		_ = term()
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Kill what is left of the group, also when the leader is already gone.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// waitReady polls probe until it succeeds, the process exits or timeout
// passes. Errors carry the tail of the process's log.
func (p *process) waitReady(timeout time.Duration, probe func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := probe()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it answered (%v); last lines of %s:\n%s",
				p.name, p.waitErr, p.log, logTail(p.log, 30))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v (%v); last lines of %s:\n%s",
				p.name, timeout, err, p.log, logTail(p.log, 30))
		}
	}
}

// logTail returns the last n lines of the file at path, or a note saying why
// it cannot. It leaves out dockerd's gRPC chatter, which would crowd out the
// line that tells what went wrong.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const max = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.Contains(line, " module=grpc") {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\t" + strings.Join(lines, "\n\t")
}

// cleanEnv returns the current environment without the variables whose
// prefix is listed, followed by extra.
func cleanEnv(dropPrefixes []string, extra ...string) []string {
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, p := range dropPrefixes {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// runCmd runs a short command and returns its standard output. The error
// includes the command's standard error.
func runCmd(env []string, stdin io.Reader, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), &cmdError{argv: argv, err: err, stderr: msg}
	}
	return stdout.String(), nil
}

// cmdError is a failed runCmd.
type cmdError struct {
	argv   []string
	err    error
	stderr string
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.argv, " "), e.err, e.stderr)
}

func (e *cmdError) Unwrap() error { return e.err }

// stderrContains reports whether err is a cmdError whose standard error
// contains s.
func stderrContains(err error, s string) bool {
	var ce *cmdError
	return errors.As(err, &ce) && strings.Contains(ce.stderr, s)
}
