package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// The tests of this file check what issue 9 asks of the agent, one test per
// point, against the real binary, Docker Engine and registry.

// statusReport is prepull status --json as the tests read it.
type statusReport struct {
	agentState
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

// status runs prepull status --json for the agent's configuration.
func (p *agentProc) status() statusReport {
	p.t.Helper()
	r := p.f.prepull(nil, "status", "--json", "--config", p.config)
	r.want(p.t, 0)
	var s statusReport
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		p.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return s
}

// pakVersion writes a pak naming the fixture's image whose bytes differ by
// version, and returns its path.
func (f *fixture) pakVersion(version string) string {
	f.t.Helper()
	dir := filepath.Join(f.dir, "paks", version)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		f.t.Fatal(err)
	}
	return paktest.Pak{Kind: "MyAdapter", Version: version, Registry: f.reg.Addr, Repository: "/" + f.repo, Digest: f.digest}.WriteFile(f.t, dir)
}

// fill fills the file system of dir until it has no room left, and returns
// a function that frees the room again.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1024)
	for {
		if _, err := fh.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	fh.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// countLogsPrefix counts log lines whose message starts with prefix.
func (p *agentProc) countLogsPrefix(prefix string) int {
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

// doneNames lists the pak files in done/.
func (p *agentProc) doneNames() []string {
	entries, _ := os.ReadDir(filepath.Join(p.inbox, "done"))
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pak") {
			names = append(names, e.Name())
		}
	}
	return names
}

// waitStarted waits until the agent says it started.
func (p *agentProc) waitStarted() {
	p.t.Helper()
	p.eventually(30*time.Second, "the agent started", func() bool { return p.countLogs("agent started", nil) == 1 })
}

// engineChecks waits until the agent has heard from the engine n more
// times, as the lock file's live status says: it checks the engine at every
// rescan, after reconciling its state with the files, and on every verify.
// This is the positive event that shows the agent went past a point where
// something must not happen, where a sleep would only hope so.
func (p *agentProc) engineChecks(n int) {
	p.t.Helper()
	seen, count := p.status().Agent.EngineChecked, 0
	p.eventually(30*time.Second, fmt.Sprintf("the agent checked the engine %d more times", n), func() bool {
		if at := p.status().Agent.EngineChecked; !at.Equal(seen) {
			seen = at
			count++
		}
		return count >= n
	})
}

// noFailedMoves fails the test when the agent logged a failed move.
func (p *agentProc) noFailedMoves() {
	p.t.Helper()
	if n := p.countLogs("cannot move pak", nil); n != 0 {
		p.t.Errorf("%d failed moves logged", n)
	}
}

// knows reports whether the saved state has an entry for the file at path.
func (s agentState) knows(path string) bool {
	for _, p := range s.Paks {
		if p.File == path {
			return true
		}
	}
	return false
}

// TestAgentStateDiskFullMovesNothing (point 1): with state_dir on a full
// disk no pak moves, status and the log say degraded (once), and the agent
// resumes by itself when there is room again; kill -9 while full loses no
// pak.
func TestAgentStateDiskFullMovesNothing(t *testing.T) {
	f := newFixture(t, "proj/agent-full")
	stateDisk := testenv.Tmpfs(t, 64<<10)
	config, inbox, _ := f.agentConfig("state_dir: " + stateDisk + "\n")
	a := f.startAgent(config, inbox, stateDisk)
	a.drop(f.pakVersion("0.1"), "first.pak")
	a.eventually(30*time.Second, "first.pak is in done/", func() bool { return a.inDone("first.pak") })

	free := fill(t, stateDisk)
	for i := range 3 {
		a.drop(f.pakVersion(fmt.Sprintf("1.%d", i)), fmt.Sprintf("full%d.pak", i))
	}
	a.eventually(30*time.Second, "the agent says it is degraded", func() bool {
		return a.countLogsPrefix("degraded: cannot save state: no space left on device") > 0
	})
	a.eventually(30*time.Second, "the three paks are taken", func() bool {
		return a.countLogs("pak taken", map[string]string{"pak": "full2.pak"}) > 0
	})
	a.engineChecks(3) // the image is verified at once; two rescans

	if names := a.doneNames(); len(names) != 1 {
		t.Fatalf("done/ holds %v while the state cannot be saved, want only first.pak", names)
	}
	st := a.status()
	if st.Agent.Status != "degraded" || len(st.Agent.Degraded) != 1 || !strings.Contains(st.Agent.Degraded[0], "cannot save state: no space left on device") {
		t.Errorf("status says %+v, want degraded: cannot save state: no space left on device", st.Agent)
	}

	free()
	a.eventually(30*time.Second, "the paks are in done/ once there is room", func() bool { return len(a.doneNames()) == 4 })
	if n := a.countLogsPrefix("degraded: cannot save state"); n != 1 {
		t.Errorf("the log says degraded %d times, want once per change", n)
	}
	if a.countLogs("state saved again, resuming", nil) != 1 {
		t.Error("no log line says the agent resumed")
	}
	if st := a.status(); st.Agent.Status != "running" {
		t.Errorf("status is %s after the disk has room again, want running", st.Agent.Status)
	}

	// Full again, two more paks, kill -9: none is lost.
	free = fill(t, stateDisk)
	for i := range 2 {
		a.drop(f.pakVersion(fmt.Sprintf("2.%d", i)), fmt.Sprintf("again%d.pak", i))
	}
	a.eventually(30*time.Second, "the agent is degraded again", func() bool {
		return a.countLogsPrefix("degraded: cannot save state") == 2 && a.countLogs("pak taken", map[string]string{"pak": "again1.pak"}) > 0
	})
	a.kill()
	free()
	b := f.startAgent(config, inbox, stateDisk)
	b.eventually(30*time.Second, "all six paks are in done/ and known", func() bool {
		s := b.readState()
		return len(b.doneNames()) == 6 && len(s.Paks) == 6
	})
	for _, name := range b.doneNames() {
		if !b.readState().knows(filepath.Join(inbox, "done", name)) {
			t.Errorf("done/%s is not in the state", name)
		}
	}
}

// TestAgentReconcilesWithFiles (point 2): a pak in done/ the state does not
// know is adopted, an entry whose file is gone is dropped, and the image is
// let go only when no pak names it.
func TestAgentReconcilesWithFiles(t *testing.T) {
	f := newFixture(t, "proj/agent-reconcile")
	config, inbox, state := f.agentConfig("verify_interval: 1s\n")
	a := f.startAgent(config, inbox, state)
	a.drop(f.pak, "a.pak")
	a.eventually(30*time.Second, "a.pak is in done/", func() bool { return a.inDone("a.pak") })
	if code, _ := a.terminate(); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}

	// Behind the agent's back: another pak naming the image appears in
	// done/ (copied there by hand), and a.pak is deleted.
	done := filepath.Join(inbox, "done")
	data, err := os.ReadFile(f.pakVersion("9.9"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(done, "byhand.pak"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(done, "a.pak")); err != nil {
		t.Fatal(err)
	}
	b := f.startAgent(config, inbox, state)
	b.eventually(30*time.Second, "byhand.pak is adopted and a.pak dropped", func() bool {
		s := b.readState()
		return len(s.Paks) == 1 && s.Paks[0].Name == "byhand.pak" && s.Paks[0].Status == "present" && len(s.Images) == 1
	})
	if b.countLogs("no other pak names the image, no longer keeping it present", nil) != 0 {
		t.Error("the image was let go although byhand.pak names it")
	}
	// The adopted pak keeps the image present.
	f.docker.RemoveImage(t, f.ref)
	b.eventually(30*time.Second, "the image is pulled again for byhand.pak", func() bool { return f.docker.HasImage(t, f.ref) })

	// Deleting the last pak lets the image go, while running.
	if err := os.Remove(filepath.Join(done, "byhand.pak")); err != nil {
		t.Fatal(err)
	}
	b.eventually(30*time.Second, "the state is empty", func() bool {
		s := b.readState()
		return len(s.Paks) == 0 && len(s.Images) == 0
	})
	if b.countLogs("no other pak names the image, no longer keeping it present", map[string]string{"pak": "byhand.pak"}) != 1 {
		t.Error("no log line says the image was let go")
	}
}

// TestAgentPakIsAFile (point 3): the same bytes under two names are two
// paks; deleting one keeps the image for the other; a pak overwritten while
// its image is pulled is a new arrival, with no phantom row; a renamed pak
// is named by its new name.
func TestAgentPakIsAFile(t *testing.T) {
	f := newFixture(t, "proj/agent-file")
	config, inbox, state := f.agentConfig("verify_interval: 1s\n")
	a := f.startAgent(config, inbox, state)
	a.drop(f.pak, "One.pak")
	a.drop(f.pak, "Two.pak")
	a.eventually(30*time.Second, "both are in done/", func() bool { return a.inDone("One.pak") && a.inDone("Two.pak") })
	if s := a.status(); len(s.Paks) != 2 {
		t.Fatalf("status lists %d paks, want One.pak and Two.pak: %+v", len(s.Paks), s.Paks)
	}
	if err := os.Remove(filepath.Join(inbox, "done", "Two.pak")); err != nil {
		t.Fatal(err)
	}
	a.eventually(30*time.Second, "Two.pak is forgotten", func() bool { return len(a.readState().Paks) == 1 })
	if a.countLogs("no other pak names the image, no longer keeping it present", nil) != 0 {
		t.Fatal("the image was let go while One.pak names it")
	}
	f.docker.RemoveImage(t, f.ref)
	a.eventually(30*time.Second, "One.pak's image is pulled again", func() bool { return f.docker.HasImage(t, f.ref) })

	// Renamed in done/: the state and the logs use the new name.
	if err := os.Rename(filepath.Join(inbox, "done", "One.pak"), filepath.Join(inbox, "done", "Renamed.pak")); err != nil {
		t.Fatal(err)
	}
	a.eventually(30*time.Second, "the state names Renamed.pak", func() bool {
		s := a.readState()
		return len(s.Paks) == 1 && s.Paks[0].Name == "Renamed.pak"
	})

	// A pak whose registry does not answer keeps being tried; overwritten
	// meanwhile with a pak naming a pullable image, it is a new arrival.
	stuck := paktest.Pak{Kind: "Stuck", Registry: "127.0.0.1:9", Repository: "/proj/none", Digest: f.digest}.WriteFile(t, f.dir)
	a.drop(stuck, "Over.pak")
	a.eventually(30*time.Second, "Over.pak's image is being tried", func() bool {
		s := a.readState()
		for _, im := range s.Images {
			if strings.HasPrefix(im.Reference, "127.0.0.1:9/") && im.LastError != "" {
				return true
			}
		}
		return false
	})
	a.drop(f.pakVersion("3.0"), "Over.pak")
	a.eventually(30*time.Second, "the new Over.pak is in done/", func() bool { return a.inDone("Over.pak") })
	a.eventually(30*time.Second, "the stuck image is let go", func() bool {
		s := a.readState()
		return len(s.Images) == 1 && len(s.Paks) == 2
	})
	for _, p := range a.readState().Paks {
		if _, err := os.Stat(p.File); err != nil {
			t.Errorf("phantom row %s: %v", p.File, err)
		}
	}
	a.engineChecks(3) // rescans and verify passes
	a.noFailedMoves()
}

// TestAgentOnePerStateDir (point 4): a second agent on the same state_dir
// exits 2 at once, naming the lock file and the holder's PID.
func TestAgentOnePerStateDir(t *testing.T) {
	f := newFixture(t, "proj/agent-lock")
	config, inbox, state := f.agentConfig("")
	a := f.startAgent(config, inbox, state)
	a.waitStarted()
	r := f.prepull(nil, "agent", "--config", config)
	r.want(t, 2)
	lock := filepath.Join(state, "agent.lock")
	if !strings.Contains(r.stderr, lock) || !strings.Contains(r.stderr, "pid "+strconv.Itoa(a.cmd.Process.Pid)) {
		t.Errorf("the second agent's error does not name %s and pid %d:\n%s", lock, a.cmd.Process.Pid, r.stderr)
	}
	a.drop(f.pak, "l.pak")
	a.eventually(30*time.Second, "l.pak is in done/", func() bool { return a.inDone("l.pak") })
}

// TestAgentSafeFoldersUpToRoot (point 5): a folder above watch_dir that
// others can write is refused at start; one that becomes so while the agent
// runs stops it taking paks until it is safe again.
func TestAgentSafeFoldersUpToRoot(t *testing.T) {
	f := newFixture(t, "proj/agent-safe")
	open := filepath.Join(f.dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(open, "inbox")
	config, _, state := f.agentConfig("watch_dir: " + inbox + "\n")
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	r := f.prepull(nil, "agent", "--config", config)
	r.want(t, 2)
	if !strings.Contains(r.stderr, "folder "+open+" above it has mode 0777") {
		t.Errorf("the refusal does not name %s:\n%s", open, r.stderr)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	a := f.startAgent(config, inbox, state)
	a.waitStarted()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	a.eventually(30*time.Second, "the agent says watch_dir is unsafe", func() bool {
		return a.countLogs("degraded: watch_dir is unsafe, taking no new pak until it is safe again", nil) == 1
	})
	a.drop(f.pak, "s.pak")
	a.engineChecks(3) // the pak settled (200ms), and two rescans
	if s := a.readState(); len(s.Paks) != 0 {
		t.Fatalf("a pak was taken from an unsafe watch_dir: %+v", s.Paks)
	}
	if st := a.status(); st.Agent.Status != "degraded" || len(st.Agent.Degraded) == 0 || !strings.Contains(st.Agent.Degraded[0], open) {
		t.Errorf("status %+v, want degraded naming %s", st.Agent, open)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	a.eventually(30*time.Second, "s.pak is in done/ once watch_dir is safe", func() bool { return a.inDone("s.pak") })
}

// TestAgentWatchDirRecreated (point 6): a watch_dir deleted and made again
// is watched again (the rescan is an hour away, so inotify must do it), and
// done/ and failed/ are made again.
func TestAgentWatchDirRecreated(t *testing.T) {
	f := newFixture(t, "proj/agent-recreate")
	config, inbox, state := f.agentConfig("rescan_interval: 1h\n")
	a := f.startAgent(config, inbox, state)
	a.waitStarted()
	if err := os.RemoveAll(inbox); err != nil {
		t.Fatal(err)
	}
	a.eventually(30*time.Second, "the agent sees watch_dir go", func() bool {
		return a.countLogs("watch_dir was removed or replaced, watching for it to come back", nil) == 1
	})
	if err := os.Mkdir(inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a.drop(f.pak, "back.pak")
	if err := os.WriteFile(filepath.Join(inbox, "bad.pak"), []byte("not a pak"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.eventually(30*time.Second, "back.pak is in the new done/", func() bool { return a.inDone("back.pak") })
	a.eventually(30*time.Second, "bad.pak is in the new failed/", func() bool {
		_, err := os.Stat(filepath.Join(inbox, "failed", "bad.pak"))
		return err == nil
	})
	t.Logf("taken %v after watch_dir was made again", time.Since(start))
	a.noFailedMoves()
}

// TestAgentReloadNamesRestartKeys (point 7): a reload that changes
// watch_dir and state_dir warns about each; the rest applies.
func TestAgentReloadNamesRestartKeys(t *testing.T) {
	f := newFixture(t, "proj/agent-reload")
	config, inbox, state := f.agentConfig("")
	a := f.startAgent(config, inbox, state)
	a.waitStarted()
	body, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.NewReplacer("watch_dir: "+inbox, "watch_dir: "+inbox+"2", "state_dir: "+state, "state_dir: "+state+"2",
		"concurrency: 2", "concurrency: 3").Replace(string(body))
	if err := os.WriteFile(config, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.eventually(30*time.Second, "the reload is logged", func() bool {
		return a.countLogs("configuration reloaded", map[string]string{"concurrency": "3"}) == 1
	})
	for _, key := range []string{"watch_dir", "state_dir"} {
		if a.countLogs("this setting changes only on restart", map[string]string{"key": key}) != 1 {
			t.Errorf("no warning names %s", key)
		}
	}
	a.drop(f.pak, "r.pak")
	a.eventually(30*time.Second, "r.pak is in the running watch_dir's done/", func() bool { return a.inDone("r.pak") })
}

// TestAgentStatusFreshness (point 8): status says when no agent has run,
// whether one holds the lock (and since when), when the state was saved,
// whether the engine answered at the last check, and that a killed agent
// is pulling nothing.
func TestAgentStatusFreshness(t *testing.T) {
	f := newFixture(t, "proj/agent-fresh")
	config, inbox, state := f.agentConfig("")
	r := f.prepull(nil, "status", "--config", config)
	r.want(t, 1)
	if !strings.Contains(r.stderr, "no agent has run with this state_dir") || r.stdout != "" {
		t.Errorf("status before any agent ran:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}

	a := f.startAgent(config, inbox, state)
	a.drop(f.pak, "f.pak")
	a.eventually(30*time.Second, "f.pak is in done/", func() bool { return a.inDone("f.pak") })
	a.eventually(30*time.Second, "the engine was checked", func() bool { return a.status().Agent.Engine == "answered" })
	st := a.status()
	if st.Agent.Status != "running" || st.Agent.PID != a.cmd.Process.Pid || st.Agent.Since.IsZero() || st.Agent.LastSaved.IsZero() || st.Agent.EngineChecked.IsZero() {
		t.Errorf("status of a running agent: %+v", st.Agent)
	}

	f.docker.Stop(t)
	t.Cleanup(func() { testenv.Docker(t) })
	a.eventually(30*time.Second, "status says the engine is unreachable", func() bool { return a.status().Agent.Engine == "unreachable" })
	r = f.prepull(nil, "status", "--config", config)
	if !strings.Contains(r.stdout, "engine:   unreachable at the last check") {
		t.Errorf("the table does not say the engine is unreachable:\n%s", r.stdout)
	}
	f.docker.Start(t)
	a.eventually(30*time.Second, "status says the engine answered again", func() bool { return a.status().Agent.Engine == "answered" })

	// Killed while its image is tried: status says stopped, pulling nothing.
	stuck := paktest.Pak{Kind: "Stuck", Registry: "127.0.0.1:9", Repository: "/proj/none", Digest: f.digest}.WriteFile(t, f.dir)
	a.drop(stuck, "stuck.pak")
	a.eventually(30*time.Second, "stuck.pak is taken", func() bool { return len(a.readState().Paks) == 2 })
	a.kill()
	st = a.status()
	if st.Agent.Status != "stopped" {
		t.Errorf("status after kill -9 is %s, want stopped", st.Agent.Status)
	}
	for _, im := range st.Images {
		if im.Status == "pulling" {
			t.Errorf("status shows %s pulling with no agent", im.Reference)
		}
	}
	r = f.prepull(nil, "status", "--config", config)
	if !strings.Contains(r.stdout, "agent:    stopped: no agent holds "+filepath.Join(state, "agent.lock")) {
		t.Errorf("the table does not say the agent stopped:\n%s", r.stdout)
	}
}

// TestAgentPullTimeoutIsNotAnOutage (point 9): a pull cut by the agent's own
// pull_timeout is a timeout, not an engine outage.
func TestAgentPullTimeoutIsNotAnOutage(t *testing.T) {
	f := newFixture(t, "proj/agent-timeout")
	digest := f.docker.PushImage(t, f.reg, "proj/agent-timeout-big", faultImage)
	proxy := testenv.StartFaultProxy(t, f.reg.Addr)
	proxy.StallBlobs(testenv.Stall{After: 64 << 10, MinSize: 512 << 10})
	slow, _ := f.pakVia(proxy.Addr, "proj/agent-timeout-big", digest)
	config, inbox, state := f.agentConfig(f.loginFor(proxy.Addr) + "pull_timeout: 3s\nstall_timeout: 1h\n")
	a := f.startAgent(config, inbox, state)
	a.drop(slow, "slow.pak")
	a.eventually(60*time.Second, "the pull times out", func() bool {
		s := a.readState()
		return len(s.Images) == 1 && strings.Contains(s.Images[0].LastError, "timed out")
	})
	if n := a.countLogs("docker engine unreachable, will keep trying", nil); n != 0 {
		t.Errorf("the agent's own timeout was taken for an engine outage (%d times)", n)
	}
	if st := a.status(); st.Agent.Engine == "unreachable" {
		t.Errorf("status says the engine is unreachable: %+v", st.Agent)
	}
	proxy.Heal()
}

// TestAgentAnonymousRefusalNamesTheLogin (issue 11): the agent's error for
// an anonymous pull the registry refused names the missing login, as the
// one-shot does, and does not speak of rejected credentials.
func TestAgentAnonymousRefusalNamesTheLogin(t *testing.T) {
	f := newFixture(t, "proj/agent-anon")
	config, inbox, state := f.agentConfig("registries: []\n")
	a := f.startAgent(config, inbox, state)
	a.drop(f.pak, "anon.pak")
	a.eventually(30*time.Second, "the image failed", func() bool {
		s := a.readState()
		return len(s.Images) == 1 && s.Images[0].Status == "failed"
	})
	msg := a.readState().Images[0].LastError
	if !strings.Contains(msg, "prepull has no login for "+f.reg.Addr) || strings.Contains(msg, "rejected the credentials") {
		t.Errorf("last error %q, want one naming the missing login for %s", msg, f.reg.Addr)
	}
}
