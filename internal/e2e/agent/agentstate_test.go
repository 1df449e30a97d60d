//go:build linux

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// The tests of this file check what issue 9 asks of the agent, one test per
// point, against the real binary, Docker Engine and registry.

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

// TestAgentStateDiskFullMovesNothing (point 1): with state_dir on a full
// disk no pak moves, status and the log say degraded (once), and the agent
// resumes by itself when there is room again; kill -9 while full loses no
// pak.
func TestAgentStateDiskFullMovesNothing(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-full")
	stateDisk := testenv.Tmpfs(t, 64<<10)
	config, inbox, _ := f.AgentConfig("state_dir: " + stateDisk + "\n")
	a := f.StartAgent(config, inbox, stateDisk)
	a.Drop(f.PakVersion("0.1"), "first.pak")
	a.Eventually("first.pak is in done/", func() bool { return a.InDone("first.pak") })

	free := fill(t, stateDisk)
	for i := range 3 {
		a.Drop(f.PakVersion(fmt.Sprintf("1.%d", i)), fmt.Sprintf("full%d.pak", i))
	}
	a.Eventually("the agent says it is degraded", func() bool {
		return a.CountLogsPrefix("degraded: cannot save state: no space left on device") > 0
	})
	a.Eventually("the three paks are taken", func() bool {
		return a.CountLogs("pak taken", map[string]string{"pak": "full2.pak"}) > 0
	})
	a.EngineChecks(3) // the image is verified at once; two rescans

	if names := a.DoneNames(); len(names) != 1 {
		t.Fatalf("done/ holds %v while the state cannot be saved, want only first.pak", names)
	}
	st := a.Status()
	if st.Agent.Status != "degraded" || len(st.Agent.Degraded) != 1 || !strings.Contains(st.Agent.Degraded[0], "cannot save state: no space left on device") {
		t.Errorf("status says %+v, want degraded: cannot save state: no space left on device", st.Agent)
	}

	free()
	a.Eventually("the paks are in done/ once there is room", func() bool { return len(a.DoneNames()) == 4 })
	if n := a.CountLogsPrefix("degraded: cannot save state"); n != 1 {
		t.Errorf("the log says degraded %d times, want once per change", n)
	}
	if a.CountLogs("state saved again, resuming", nil) != 1 {
		t.Error("no log line says the agent resumed")
	}
	if st := a.Status(); st.Agent.Status != "running" {
		t.Errorf("status is %s after the disk has room again, want running", st.Agent.Status)
	}

	// Full again, two more paks, kill -9: none is lost.
	free = fill(t, stateDisk)
	for i := range 2 {
		a.Drop(f.PakVersion(fmt.Sprintf("2.%d", i)), fmt.Sprintf("again%d.pak", i))
	}
	a.Eventually("the agent is degraded again", func() bool {
		return a.CountLogsPrefix("degraded: cannot save state") == 2 && a.CountLogs("pak taken", map[string]string{"pak": "again1.pak"}) > 0
	})
	a.Kill()
	free()
	b := f.StartAgent(config, inbox, stateDisk)
	b.Eventually("all six paks are in done/ and known", func() bool {
		s := b.ReadState()
		return len(b.DoneNames()) == 6 && len(s.Paks) == 6
	})
	for _, name := range b.DoneNames() {
		if !b.ReadState().Knows(filepath.Join(inbox, "done", name)) {
			t.Errorf("done/%s is not in the state", name)
		}
	}
}

// TestAgentReconcilesWithFiles (point 2): a pak in done/ the state does not
// know is adopted, an entry whose file is gone is dropped, and the image is
// let go only when no pak names it.
func TestAgentReconcilesWithFiles(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-reconcile")
	config, inbox, state := f.AgentConfig("verify_interval: 1s\n")
	a := f.StartAgent(config, inbox, state)
	a.Drop(f.Pak, "a.pak")
	a.Eventually("a.pak is in done/", func() bool { return a.InDone("a.pak") })
	if code, _ := a.Terminate(); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}

	// Behind the agent's back: another pak naming the image appears in
	// done/ (copied there by hand), and a.pak is deleted.
	done := filepath.Join(inbox, "done")
	data, err := os.ReadFile(f.PakVersion("9.9"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(done, "byhand.pak"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(done, "a.pak")); err != nil {
		t.Fatal(err)
	}
	b := f.StartAgent(config, inbox, state)
	b.Eventually("byhand.pak is adopted and a.pak dropped", func() bool {
		s := b.ReadState()
		return len(s.Paks) == 1 && s.Paks[0].Name == "byhand.pak" && s.Paks[0].Status == "present" && len(s.Images) == 1
	})
	if b.CountLogs("no other pak names the image, no longer keeping it present", nil) != 0 {
		t.Error("the image was let go although byhand.pak names it")
	}
	// The adopted pak keeps the image present.
	f.Docker.RemoveImage(t, f.Ref)
	b.Eventually("the image is pulled again for byhand.pak", func() bool { return f.Docker.HasImage(t, f.Ref) })

	// Deleting the last pak lets the image go, while running.
	if err := os.Remove(filepath.Join(done, "byhand.pak")); err != nil {
		t.Fatal(err)
	}
	b.Eventually("the state is empty", func() bool {
		s := b.ReadState()
		return len(s.Paks) == 0 && len(s.Images) == 0
	})
	if b.CountLogs("no other pak names the image, no longer keeping it present", map[string]string{"pak": "byhand.pak"}) != 1 {
		t.Error("no log line says the image was let go")
	}
}

// TestAgentPakIsAFile (point 3): the same bytes under two names are two
// paks; deleting one keeps the image for the other; a pak overwritten while
// its image is pulled is a new arrival, with no phantom row; a renamed pak
// is named by its new name.
func TestAgentPakIsAFile(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-file")
	config, inbox, state := f.AgentConfig("verify_interval: 1s\n")
	a := f.StartAgent(config, inbox, state)
	a.Drop(f.Pak, "One.pak")
	a.Drop(f.Pak, "Two.pak")
	a.Eventually("both are in done/", func() bool { return a.InDone("One.pak") && a.InDone("Two.pak") })
	if s := a.Status(); len(s.Paks) != 2 {
		t.Fatalf("status lists %d paks, want One.pak and Two.pak: %+v", len(s.Paks), s.Paks)
	}
	if err := os.Remove(filepath.Join(inbox, "done", "Two.pak")); err != nil {
		t.Fatal(err)
	}
	a.Eventually("Two.pak is forgotten", func() bool { return len(a.ReadState().Paks) == 1 })
	if a.CountLogs("no other pak names the image, no longer keeping it present", nil) != 0 {
		t.Fatal("the image was let go while One.pak names it")
	}
	f.Docker.RemoveImage(t, f.Ref)
	a.Eventually("One.pak's image is pulled again", func() bool { return f.Docker.HasImage(t, f.Ref) })

	// Renamed in done/: the state and the logs use the new name.
	if err := os.Rename(filepath.Join(inbox, "done", "One.pak"), filepath.Join(inbox, "done", "Renamed.pak")); err != nil {
		t.Fatal(err)
	}
	a.Eventually("the state names Renamed.pak", func() bool {
		s := a.ReadState()
		return len(s.Paks) == 1 && s.Paks[0].Name == "Renamed.pak"
	})

	// A pak whose registry does not answer keeps being tried; overwritten
	// meanwhile with a pak naming a pullable image, it is a new arrival.
	stuck := paktest.Pak{Kind: "Stuck", Registry: "127.0.0.1:9", Repository: "/proj/none", Digest: f.Digest}.WriteFile(t, f.Dir)
	a.Drop(stuck, "Over.pak")
	a.Eventually("Over.pak's image is being tried", func() bool {
		s := a.ReadState()
		for _, im := range s.Images {
			if strings.HasPrefix(im.Reference, "127.0.0.1:9/") && im.LastError != "" {
				return true
			}
		}
		return false
	})
	a.Drop(f.PakVersion("3.0"), "Over.pak")
	a.Eventually("the new Over.pak is in done/", func() bool { return a.InDone("Over.pak") })
	a.Eventually("the stuck image is let go", func() bool {
		s := a.ReadState()
		return len(s.Images) == 1 && len(s.Paks) == 2
	})
	for _, p := range a.ReadState().Paks {
		if _, err := os.Stat(p.File); err != nil {
			t.Errorf("phantom row %s: %v", p.File, err)
		}
	}
	a.EngineChecks(3) // rescans and verify passes
	a.NoFailedMoves()
}

// TestAgentOnePerStateDir (point 4): a second agent on the same state_dir
// exits 2 at once, naming the lock file and the holder's PID.
func TestAgentOnePerStateDir(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-lock")
	config, inbox, state := f.AgentConfig("")
	a := f.StartAgent(config, inbox, state)
	a.WaitStarted()
	r := f.Prepull(nil, "agent", "--config", config)
	r.Want(t, 2)
	lock := filepath.Join(state, "agent.lock")
	if !strings.Contains(r.Stderr, lock) || !strings.Contains(r.Stderr, "pid "+strconv.Itoa(a.Cmd.Process.Pid)) {
		t.Errorf("the second agent's error does not name %s and pid %d:\n%s", lock, a.Cmd.Process.Pid, r.Stderr)
	}
	a.Drop(f.Pak, "l.pak")
	a.Eventually("l.pak is in done/", func() bool { return a.InDone("l.pak") })
}

// TestAgentSafeFoldersUpToRoot (point 5): a folder above watch_dir that
// others can write is refused at start; one that becomes so while the agent
// runs stops it taking paks until it is safe again.
func TestAgentSafeFoldersUpToRoot(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-safe")
	open := filepath.Join(f.Dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(open, "inbox")
	config, _, state := f.AgentConfig("watch_dir: " + inbox + "\n")
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	r := f.Prepull(nil, "agent", "--config", config)
	r.Want(t, 2)
	if !strings.Contains(r.Stderr, "folder "+open+" above it has mode 0777") {
		t.Errorf("the refusal does not name %s:\n%s", open, r.Stderr)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	a := f.StartAgent(config, inbox, state)
	a.WaitStarted()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	a.Eventually("the agent says watch_dir is unsafe", func() bool {
		return a.CountLogs("degraded: watch_dir is unsafe, taking no new pak until it is safe again", nil) == 1
	})
	a.Drop(f.Pak, "s.pak")
	a.EngineChecks(3) // the pak settled (200ms), and two rescans
	if s := a.ReadState(); len(s.Paks) != 0 {
		t.Fatalf("a pak was taken from an unsafe watch_dir: %+v", s.Paks)
	}
	if st := a.Status(); st.Agent.Status != "degraded" || len(st.Agent.Degraded) == 0 || !strings.Contains(st.Agent.Degraded[0], open) {
		t.Errorf("status %+v, want degraded naming %s", st.Agent, open)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	a.Eventually("s.pak is in done/ once watch_dir is safe", func() bool { return a.InDone("s.pak") })
}

// TestAgentWatchDirRecreated (point 6): a watch_dir deleted and made again
// is watched again (the rescan is an hour away, so inotify must do it), and
// done/ and failed/ are made again.
func TestAgentWatchDirRecreated(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-recreate")
	config, inbox, state := f.AgentConfig("rescan_interval: 1h\n")
	a := f.StartAgent(config, inbox, state)
	a.WaitStarted()
	if err := os.RemoveAll(inbox); err != nil {
		t.Fatal(err)
	}
	a.Eventually("the agent sees watch_dir go", func() bool {
		return a.CountLogs("watch_dir was removed or replaced, watching for it to come back", nil) == 1
	})
	if err := os.Mkdir(inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a.Drop(f.Pak, "back.pak")
	if err := os.WriteFile(filepath.Join(inbox, "bad.pak"), []byte("not a pak"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Eventually("back.pak is in the new done/", func() bool { return a.InDone("back.pak") })
	a.Eventually("bad.pak is in the new failed/", func() bool {
		_, err := os.Stat(filepath.Join(inbox, "failed", "bad.pak"))
		return err == nil
	})
	t.Logf("taken %v after watch_dir was made again", time.Since(start))
	a.NoFailedMoves()
}

// TestAgentReloadNamesRestartKeys (point 7): a reload that changes
// watch_dir and state_dir warns about each; the rest applies.
func TestAgentReloadNamesRestartKeys(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-reload")
	config, inbox, state := f.AgentConfig("")
	a := f.StartAgent(config, inbox, state)
	a.WaitStarted()
	body, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.NewReplacer("watch_dir: "+inbox, "watch_dir: "+inbox+"2", "state_dir: "+state, "state_dir: "+state+"2",
		"concurrency: 2", "concurrency: 3").Replace(string(body))
	if err := os.WriteFile(config, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.Eventually("the reload is logged", func() bool {
		return a.CountLogs("configuration reloaded", map[string]string{"concurrency": "3"}) == 1
	})
	for _, key := range []string{"watch_dir", "state_dir"} {
		if a.CountLogs("this setting changes only on restart", map[string]string{"key": key}) != 1 {
			t.Errorf("no warning names %s", key)
		}
	}
	a.Drop(f.Pak, "r.pak")
	a.Eventually("r.pak is in the running watch_dir's done/", func() bool { return a.InDone("r.pak") })
}

// TestAgentStatusFreshness (point 8): status says when no agent has run,
// whether one holds the lock (and since when), when the state was saved,
// whether the engine answered at the last check, and that a killed agent
// is pulling nothing.
func TestAgentStatusFreshness(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-fresh")
	config, inbox, state := f.AgentConfig("")
	r := f.Prepull(nil, "status", "--config", config)
	r.Want(t, 1)
	if !strings.Contains(r.Stderr, "no agent has run with this state_dir") || r.Stdout != "" {
		t.Errorf("status before any agent ran:\nstdout: %s\nstderr: %s", r.Stdout, r.Stderr)
	}

	a := f.StartAgent(config, inbox, state)
	a.Drop(f.Pak, "f.pak")
	a.Eventually("f.pak is in done/", func() bool { return a.InDone("f.pak") })
	a.Eventually("the engine was checked", func() bool { return a.Status().Agent.Engine == "answered" })
	st := a.Status()
	if st.Agent.Status != "running" || st.Agent.PID != a.Cmd.Process.Pid || st.Agent.Since.IsZero() || st.Agent.LastSaved.IsZero() || st.Agent.EngineChecked.IsZero() {
		t.Errorf("status of a running agent: %+v", st.Agent)
	}

	f.Docker.Stop(t)
	t.Cleanup(func() { testenv.Docker(t) })
	a.Eventually("status says the engine is unreachable", func() bool { return a.Status().Agent.Engine == "unreachable" })
	r = f.Prepull(nil, "status", "--config", config)
	if !strings.Contains(r.Stdout, "engine:   unreachable at the last check") {
		t.Errorf("the table does not say the engine is unreachable:\n%s", r.Stdout)
	}
	f.Docker.Start(t)
	a.Eventually("status says the engine answered again", func() bool { return a.Status().Agent.Engine == "answered" })

	// Killed while its image is tried: status says stopped, pulling nothing.
	stuck := paktest.Pak{Kind: "Stuck", Registry: "127.0.0.1:9", Repository: "/proj/none", Digest: f.Digest}.WriteFile(t, f.Dir)
	a.Drop(stuck, "stuck.pak")
	a.Eventually("stuck.pak is taken", func() bool { return len(a.ReadState().Paks) == 2 })
	a.Kill()
	st = a.Status()
	if st.Agent.Status != "stopped" {
		t.Errorf("status after kill -9 is %s, want stopped", st.Agent.Status)
	}
	for _, im := range st.Images {
		if im.Status == "pulling" {
			t.Errorf("status shows %s pulling with no agent", im.Reference)
		}
	}
	r = f.Prepull(nil, "status", "--config", config)
	if !strings.Contains(r.Stdout, "agent:    stopped: no agent holds "+filepath.Join(state, "agent.lock")) {
		t.Errorf("the table does not say the agent stopped:\n%s", r.Stdout)
	}
}

// TestAgentPullTimeoutIsNotAnOutage (point 9): a pull cut by the agent's own
// pull_timeout is a timeout, not an engine outage.
func TestAgentPullTimeoutIsNotAnOutage(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-timeout")
	digest := f.Docker.PushImage(t, f.Reg, "proj/agent-timeout-big", e2e.FaultImage)
	proxy := testenv.StartFaultProxy(t, f.Reg.Addr)
	proxy.StallBlobs(testenv.Stall{After: 64 << 10, MinSize: 512 << 10})
	slow, _ := f.PakVia(proxy.Addr, "proj/agent-timeout-big", digest)
	config, inbox, state := f.AgentConfig(f.LoginFor(proxy.Addr) + "pull_timeout: 3s\nstall_timeout: 1h\n")
	a := f.StartAgent(config, inbox, state)
	a.Drop(slow, "slow.pak")
	a.Eventually("the pull times out", func() bool {
		s := a.ReadState()
		return len(s.Images) == 1 && strings.Contains(s.Images[0].LastError, "timed out")
	})
	if n := a.CountLogs("docker engine unreachable, will keep trying", nil); n != 0 {
		t.Errorf("the agent's own timeout was taken for an engine outage (%d times)", n)
	}
	if st := a.Status(); st.Agent.Engine == "unreachable" {
		t.Errorf("status says the engine is unreachable: %+v", st.Agent)
	}
	proxy.Heal()
}

// TestAgentAnonymousRefusalNamesTheLogin (issue 11): the agent's error for
// an anonymous pull the registry refused names the missing login, as the
// one-shot does, and does not speak of rejected credentials.
func TestAgentAnonymousRefusalNamesTheLogin(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-anon")
	config, inbox, state := f.AgentConfig("registries: []\n")
	a := f.StartAgent(config, inbox, state)
	a.Drop(f.Pak, "anon.pak")
	a.Eventually("the image failed", func() bool {
		s := a.ReadState()
		return len(s.Images) == 1 && s.Images[0].Status == "failed"
	})
	msg := a.ReadState().Images[0].LastError
	if !strings.Contains(msg, "prepull has no login for "+f.Reg.Addr) || strings.Contains(msg, "rejected the credentials") {
		t.Errorf("last error %q, want one naming the missing login for %s", msg, f.Reg.Addr)
	}
}
