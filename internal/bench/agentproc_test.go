//go:build linux

package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv/await"
)

// agentProc is a running `prepull agent`, the real binary, logging JSON,
// whose log lines are collected as they come.
type agentProc struct {
	b     *testing.B
	inbox string
	state string
	cmd   *exec.Cmd
	done  chan struct{}

	mu      sync.Mutex
	lines   []logLine
	raw     strings.Builder
	changed chan struct{} // gets a value when a line arrives
}

// logLine is one JSON log line of the agent.
type logLine struct {
	read   time.Time      // when the benchmark read it
	ts     time.Time      // the agent's own time stamp (millisecond precision)
	msg    string         // the message
	fields map[string]any // everything
}

// str returns the string field key of l.
func (l logLine) str(key string) string {
	s, _ := l.fields[key].(string)
	return s
}

// agentConfig writes an agent configuration in a new folder of dir with the
// benchmark's engine and login, its own watch_dir and state_dir, JSON logs,
// and the given YAML lines, and returns the configuration file.
func (e *env) agentConfig(name string, lines ...string) (config, inbox, state string) {
	e.b.Helper()
	dir := filepath.Join(e.dir, name)
	inbox, state = filepath.Join(dir, "inbox"), filepath.Join(dir, "state")
	for _, d := range []string{inbox, state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			e.b.Fatal(err)
		}
	}
	body := e.base + fmt.Sprintf("watch_dir: %s\nstate_dir: %s\nlog_format: json\n", inbox, state) + strings.Join(lines, "\n") + "\n"
	config = filepath.Join(dir, "config.yaml")
	writeFile(e.b, config, body)
	return config, inbox, state
}

// startAgent starts prepull agent with config and waits until it logged
// "agent started". It is killed when b ends, if it still runs.
func (e *env) startAgent(config, inbox, state string) *agentProc {
	e.b.Helper()
	a := &agentProc{b: e.b, inbox: inbox, state: state, done: make(chan struct{}), changed: make(chan struct{}, 1)}
	a.cmd = e.command("agent", "--config", config)
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		e.b.Fatal(err)
	}
	a.cmd.Stdout = io.Discard
	if err := a.cmd.Start(); err != nil {
		e.b.Fatal(err)
	}
	go a.collect(stderr)
	e.b.Cleanup(a.kill)
	a.waitLogs(30*time.Second, "agent started", nil, 1)
	return a
}

// collect reads the agent's log lines until it exits.
func (a *agentProc) collect(r io.Reader) {
	defer close(a.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		now := time.Now()
		var m map[string]any
		_ = json.Unmarshal(sc.Bytes(), &m)
		l := logLine{read: now, fields: m}
		l.msg = l.str("msg")
		l.ts, _ = time.Parse("2006-01-02T15:04:05.000Z0700", l.str("ts"))
		a.mu.Lock()
		a.raw.WriteString(sc.Text() + "\n")
		if m != nil {
			a.lines = append(a.lines, l)
		}
		a.mu.Unlock()
		select {
		case a.changed <- struct{}{}:
		default:
		}
	}
	_ = a.cmd.Wait()
}

// logs returns the lines with message msg whose string fields hold want.
func (a *agentProc) logs(msg string, want map[string]string) []logLine {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []logLine
outer:
	for _, l := range a.lines {
		if l.msg != msg {
			continue
		}
		for k, v := range want {
			if l.str(k) != v {
				continue outer
			}
		}
		out = append(out, l)
	}
	return out
}

// waitLogs waits until n lines with message msg and fields want arrived
// and returns them; it fails b after limit or when the agent exits.
func (a *agentProc) waitLogs(limit time.Duration, msg string, want map[string]string, n int) []logLine {
	a.b.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		if got := a.logs(msg, want); len(got) >= n {
			return got
		}
		select {
		case <-a.changed:
		case <-a.done:
			a.b.Fatalf("the agent exited while waiting for %d %q lines:\n%s", n, msg, a.tail())
		case <-deadline.C:
			a.b.Fatalf("no %d %q lines %v after %v:\n%s", n, msg, want, limit, a.tail())
		}
	}
}

// tail returns the last lines of the agent's log.
func (a *agentProc) tail() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(a.raw.String()), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// stop sends SIGTERM and waits for the agent to exit.
func (a *agentProc) stop() {
	a.b.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		a.b.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(await.Limit(a.b)):
		a.b.Fatal("the agent did not exit after SIGTERM")
	}
}

// kill ends the agent with SIGKILL if it still runs.
func (a *agentProc) kill() {
	select {
	case <-a.done:
	default:
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// drop puts a pak into the inbox as a finished copy does: written under a
// dot-name, which the agent ignores, then renamed. It returns when the
// rename is done: the pak's arrival.
func (a *agentProc) drop(name string, data []byte) time.Time {
	a.b.Helper()
	tmp := filepath.Join(a.inbox, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		a.b.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(a.inbox, name)); err != nil {
		a.b.Fatal(err)
	}
	return time.Now()
}

// procUsage is what /proc says of a process at one moment.
type procUsage struct {
	cpu   time.Duration // CPU time of all its threads so far (schedstat)
	ticks int64         // utime+stime in clock ticks (/proc/PID/stat)
	rss   int64         // VmRSS, bytes
	hwm   int64         // VmHWM, the peak RSS of its program, bytes
}

// readUsage reads the CPU time and memory of process pid.
func readUsage(pid int) (procUsage, error) {
	var u procUsage
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return u, fmt.Errorf("read schedstat of %d: %v", pid, err)
	}
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that just ended
		}
		if f := strings.Fields(string(data)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			u.cpu += time.Duration(ns)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat is short", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	u.ticks = utime + stime
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("read status of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "VmRSS":
			u.rss = n << 10
		case "VmHWM":
			u.hwm = n << 10
		}
	}
	return u, nil
}
