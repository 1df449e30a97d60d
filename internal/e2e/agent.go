//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
	"github.com/prepull/prepull/internal/testenv/await"
)

// AgentProc is a running prepull agent: the real binary, with a
// configuration of short intervals and JSON logs, its watch_dir and
// state_dir in the test's own folders.
type AgentProc struct {
	t      *testing.T
	f      *Fixture
	config string
	inbox  string
	state  string

	Cmd  *exec.Cmd
	done chan struct{}
	code int

	mu   sync.Mutex
	logs []map[string]any
	raw  strings.Builder
}

// AgentConfig writes a configuration for the agent with short intervals;
// extra YAML lines are appended.
func (f *Fixture) AgentConfig(extra string) (config, inbox, state string) {
	f.T.Helper()
	inbox = filepath.Join(f.Dir, "inbox")
	state = filepath.Join(f.Dir, "state")
	for _, d := range []string{inbox, state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			f.T.Fatal(err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			f.T.Fatal(err)
		}
	}
	lines := []string{
		"watch_dir: " + inbox,
		"state_dir: " + state,
		"log_format: json",
		"concurrency: 2",
		"rescan_interval: 1s",
		"settle: 200ms",
		"verify_interval: 1h",
		// A vfs engine on a loaded machine can go seconds without progress:
		// tests of the stall watchdog set their own stall_timeout.
		"stall_timeout: 2m",
		"pull_timeout: 5m",
	}
	// A line of extra replaces the default line for its key.
	for _, e := range strings.Split(strings.TrimSpace(extra), "\n") {
		if key, _, ok := strings.Cut(e, ":"); ok {
			lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, key+":") })
			lines = append(lines, e)
		}
	}
	config = f.WriteConfig(strings.Join(lines, "\n") + "\n")
	return config, inbox, state
}

// StartAgent runs prepull agent with the configuration and stops it
// (SIGKILL) when the test ends, if the test did not.
func (f *Fixture) StartAgent(config, inbox, state string) *AgentProc {
	f.T.Helper()
	p := &AgentProc{t: f.T, f: f, config: config, inbox: inbox, state: state, done: make(chan struct{})}
	p.Cmd = exec.Command(testenv.Prepull(f.T), "agent", "--config", config)
	p.Cmd.Env = f.CleanEnv()
	stderr, err := p.Cmd.StderrPipe()
	if err != nil {
		f.T.Fatal(err)
	}
	p.Cmd.Stdout = io.Discard
	if err := p.Cmd.Start(); err != nil {
		f.T.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var m map[string]any
			_ = json.Unmarshal([]byte(line), &m)
			p.mu.Lock()
			p.raw.WriteString(line + "\n")
			if m != nil {
				p.logs = append(p.logs, m)
			}
			p.mu.Unlock()
		}
		err := p.Cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				p.code = -int(ws.Signal())
			}
		}
		close(p.done)
	}()
	f.T.Cleanup(func() {
		p.Kill()
		if strings.Contains(p.LogText(), f.Password) {
			f.T.Errorf("the registry password appears in the agent's log")
		}
		if f.T.Failed() {
			f.T.Logf("agent log:\n%s", p.LogText())
		}
	})
	return p
}

func (p *AgentProc) LogText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// LogTime returns the time of the last log line with message msg, on the
// agent's clock, and the line's fields.
func (p *AgentProc) LogTime(msg string) (time.Time, map[string]any) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.logs) - 1; i >= 0; i-- {
		if m := p.logs[i]; m["msg"] == msg {
			ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", fmt.Sprint(m["ts"]))
			if err != nil {
				p.t.Fatalf("log line %v: %v", m, err)
			}
			return ts, m
		}
	}
	p.t.Fatalf("no log line %q", msg)
	return time.Time{}, nil
}

// CountLogs counts log lines with message msg whose fields hold want.
func (p *AgentProc) CountLogs(msg string, want map[string]string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
outer:
	for _, m := range p.logs {
		if m["msg"] != msg {
			continue
		}
		for k, v := range want {
			if fmt.Sprint(m[k]) != v {
				continue outer
			}
		}
		n++
	}
	return n
}

// Kill ends the agent with SIGKILL, as a crash would.
func (p *AgentProc) Kill() {
	if p.exited() {
		return
	}
	_ = p.Cmd.Process.Kill()
	<-p.done
}

func (p *AgentProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Terminate sends SIGTERM and returns the exit code and how long the
// agent took to exit; it fails the test when the agent has not exited by
// the test's own deadline (await.Limit).
func (p *AgentProc) Terminate() (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(await.Limit(p.t)):
		p.t.Fatal("the agent did not exit after SIGTERM")
	}
	return p.code, time.Since(start)
}

// AgentState is state.json as the tests read it.
type AgentState struct {
	Version int `json:"version"`
	Paks    []struct {
		SHA256    string `json:"sha256"`
		File      string `json:"file"`
		Name      string `json:"name"`
		Reference string `json:"reference"`
		Digest    string `json:"digest"`
		Status    string `json:"status"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
		ErrorKind string `json:"error_kind"`
	} `json:"paks"`
	Images []struct {
		Reference string `json:"reference"`
		Digest    string `json:"digest"`
		Status    string `json:"status"`
		Attempts  int    `json:"attempts"`
		Pulls     int    `json:"pulls"`
		LastError string `json:"last_error"`
	} `json:"images"`
}

// ReadState reads state.json; a missing file is an empty state. A file
// that does not parse fails the test: the state must always be readable.
func (p *AgentProc) ReadState() AgentState {
	p.t.Helper()
	var s AgentState
	data, err := os.ReadFile(filepath.Join(p.state, "state.json"))
	if os.IsNotExist(err) {
		return s
	}
	if err != nil {
		p.t.Fatal(err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		p.t.Fatalf("state.json does not parse: %v\n%s", err, data)
	}
	return s
}

// Eventually waits for cond up to the test's own deadline (await.Limit),
// failing the test with what; it fails at once when the agent exits.
func (p *AgentProc) Eventually(what string, cond func() bool) {
	p.t.Helper()
	held := await.Until(p.t, 50*time.Millisecond, func() bool { return p.exited() || cond() })
	switch {
	case !held:
		p.t.Fatalf("timed out waiting until %s\nstate: %+v", what, p.ReadState())
	case p.exited() && !cond():
		p.t.Fatalf("the agent exited (code %d) while waiting until %s", p.code, what)
	}
}

// Drop copies a pak file into the inbox under name, writing it in place
// (not renamed), as a plain cp does: the agent must wait for it to settle.
func (p *AgentProc) Drop(src, name string) string {
	p.t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		p.t.Fatal(err)
	}
	dst := filepath.Join(p.inbox, name)
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return dst
}

func (p *AgentProc) InDone(name string) bool {
	_, err := os.Stat(filepath.Join(p.inbox, "done", name))
	return err == nil
}

// StatusReport is prepull status --json as the tests read it.
type StatusReport struct {
	AgentState
	Released []struct {
		Reference string `json:"reference"`
		Origin    string `json:"origin"`
		LastError string `json:"last_error"`
	} `json:"released"`
	Removed []struct {
		Reference string    `json:"reference"`
		Outcome   string    `json:"outcome"`
		At        time.Time `json:"at"`
	} `json:"removed"`
	Agent struct {
		Status        string    `json:"status"`
		LockFile      string    `json:"lock_file"`
		PID           int       `json:"pid"`
		Since         time.Time `json:"since"`
		Degraded      []string  `json:"degraded"`
		LastSaved     time.Time `json:"last_saved"`
		Engine        string    `json:"engine"`
		EngineChecked time.Time `json:"engine_checked"`
	} `json:"agent"`
}

// Status runs prepull status --json for the agent's configuration.
func (p *AgentProc) Status() StatusReport {
	p.t.Helper()
	r := p.f.Prepull(nil, "status", "--json", "--config", p.config)
	r.Want(p.t, 0)
	return Decode[StatusReport](p.t, r)
}

// PakVersion writes a pak naming the fixture's image whose bytes differ by
// version, and returns its path.
func (f *Fixture) PakVersion(version string) string {
	f.T.Helper()
	dir := filepath.Join(f.Dir, "paks", version)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		f.T.Fatal(err)
	}
	return paktest.Pak{Kind: "MyAdapter", Version: version, Registry: f.Reg.Addr, Repository: "/" + f.Repo, Digest: f.Digest}.WriteFile(f.T, dir)
}

// CountLogsPrefix counts log lines whose message starts with prefix.
func (p *AgentProc) CountLogsPrefix(prefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.logs {
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
			n++
		}
	}
	return n
}

// DoneNames lists the pak files in done/.
func (p *AgentProc) DoneNames() []string {
	entries, _ := os.ReadDir(filepath.Join(p.inbox, "done"))
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pak") {
			names = append(names, e.Name())
		}
	}
	return names
}

// WaitStarted waits until the agent says it started.
func (p *AgentProc) WaitStarted() {
	p.t.Helper()
	p.Eventually("the agent started", func() bool { return p.CountLogs("agent started", nil) == 1 })
}

// EngineChecks waits until the agent has heard from the engine n more
// times, as the lock file's live status says: it checks the engine at every
// rescan, after reconciling its state with the files, and on every verify.
// This is the positive event that shows the agent went past a point where
// something must not happen, where a sleep would only hope so.
func (p *AgentProc) EngineChecks(n int) {
	p.t.Helper()
	seen, count := p.Status().Agent.EngineChecked, 0
	p.Eventually(fmt.Sprintf("the agent checked the engine %d more times", n), func() bool {
		if at := p.Status().Agent.EngineChecked; !at.Equal(seen) {
			seen = at
			count++
		}
		return count >= n
	})
}

// NoFailedMoves fails the test when the agent logged a failed move.
func (p *AgentProc) NoFailedMoves() {
	p.t.Helper()
	if n := p.CountLogs("cannot move pak", nil); n != 0 {
		p.t.Errorf("%d failed moves logged", n)
	}
}

// Knows reports whether the saved state has an entry for the file at path.
func (s AgentState) Knows(path string) bool {
	for _, p := range s.Paks {
		if p.File == path {
			return true
		}
	}
	return false
}

// statusReleased returns the released entry for ref in prepull status
// --json, if any.
func (p *AgentProc) Released(ref string) (lastError string, ok bool) {
	for _, r := range p.Status().Released {
		if r.Reference == ref {
			return r.LastError, true
		}
	}
	return "", false
}

// Removal returns the outcome status --json lists for ref, or "".
func (p *AgentProc) Removal(ref string) string {
	for _, r := range p.Status().Removed {
		if r.Reference == ref {
			return r.Outcome
		}
	}
	return ""
}

// RunOne runs prepull --json on the fixture's pak with config, checks the
// exit code and returns the one result.
func (f *Fixture) RunOne(config string, code int) Result {
	f.T.Helper()
	r := f.Prepull(nil, "--config", config, "--json", f.Pak)
	r.Want(f.T, code)
	return OneResult(f.T, r)
}

// AgentDone starts an agent configured with extra, drops the fixture's pak
// as name and waits until it is in done/.
func (f *Fixture) AgentDone(extra, name string) *AgentProc {
	f.T.Helper()
	a := f.StartAgent(f.AgentConfig(extra))
	a.Drop(f.Pak, name)
	a.Eventually(name+" is in done/", func() bool { return a.InDone(name) })
	return a
}
