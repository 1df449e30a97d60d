//go:build linux

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prepull/prepull/agent"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

func TestKeepName(t *testing.T) {
	tests := []struct {
		arg, name, want, err string
	}{
		{arg: "/x/MyAdapter_1.0.0.pak", want: "MyAdapter_1.0.0.prepull"},
		{arg: "adapter.zip", want: "adapter.zip.prepull"},
		{arg: "MyAdapter.conf", want: "MyAdapter.conf.prepull"},
		{arg: "-", name: "Given_1.pak", want: "Given_1.prepull"},
		{arg: "x.pak", name: "Other.PAK", want: "Other.prepull"},
		{arg: "-", name: "Given_2.prepull", want: "Given_2.prepull"},
		{arg: "-", err: "--name is needed for standard input"},
		{arg: "-", name: "../evil.pak", err: "a file name, not a path"},
		{arg: "-", name: "a/b.pak", err: "a file name, not a path"},
		{arg: "-", name: ".hidden.pak", err: "ignores dot-files"},
		{arg: "-", name: ".pak", err: "ignores dot-files"},
		{arg: "-", name: "a\x1b[2J.pak", err: "control or invisible"},
	}
	for _, tt := range tests {
		got, err := keepName(tt.arg, tt.name)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || CodeFor(err) != ExitUsage {
				t.Errorf("keepName(%q, %q) = %q, %v; want a usage error with %q", tt.arg, tt.name, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("keepName(%q, %q) = %q, %v; want %q", tt.arg, tt.name, got, err, tt.want)
		}
	}
}

// TestKeepWithoutRunningAgent runs prepull keep where no agent runs: the
// file is written into watch_dir atomically (nothing else left there, mode
// 0600, the slim adapter.zip), the result says no agent took it (exit 1);
// again with the same bytes it is left as it is; other bytes under the name
// are refused; a pak in done/ that the agent's state lists for the same
// image means nothing is written.
func TestKeepWithoutRunningAgent(t *testing.T) {
	dir, watch, state, cfg := keepDirs(t)
	p := paktest.Pak{Kind: "KeepMe", Registry: paktest.Registry, ContentBytes: 1 << 20}
	file := p.WriteFile(t, dir)

	keep := func(stdin string, args ...string) keepResult {
		t.Helper()
		out, stderr, code := runCLI(t, stdin, append([]string{"keep", "--config", cfg, "--json", "--wait", "1s"}, args...)...)
		var rs []keepResult
		if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 {
			t.Fatalf("keep %v: not one JSON result (%v):\n%s\n%s", args, err, out, stderr)
		}
		if rs[0].ExitCode != code {
			t.Fatalf("keep %v: exit %d, result says %d", args, code, rs[0].ExitCode)
		}
		return rs[0]
	}

	r := keep("", file)
	want := filepath.Join(watch, "KeepMe_1.0.0.prepull")
	if r.Status != keepNotTaken || r.Path != want || r.ExitCode != ExitFailure || !strings.Contains(r.Error, "no agent is running (never-run)") ||
		r.Reference != p.Reference("") {
		t.Fatalf("keep without an agent: %+v", r)
	}
	entries, _ := os.ReadDir(watch)
	if len(entries) != 1 || entries[0].Name() != "KeepMe_1.0.0.prepull" {
		t.Fatalf("watch_dir holds %v, want only KeepMe_1.0.0.prepull", entries)
	}
	fi, err := os.Stat(want)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() > 16<<10 {
		t.Fatalf("the file written: %v, %v", fi, err)
	}
	f, err := pak.OpenFile(want)
	if err != nil {
		t.Fatalf("the file written: %v", err)
	}
	f.Close()
	if img := f.Image; img.Format != pak.FormatAdapterZip || img.AdapterKind != "KeepMe" || img.Digest != paktest.Digest {
		t.Fatalf("the file written reads %+v", img)
	}

	// Again, on standard input: the same bytes, left as they are.
	if r := keep(string(p.Bytes()), "--name", "KeepMe_1.0.0.prepull", "-"); r.Status != keepNotTaken || r.Path != want {
		t.Errorf("the same again: %+v", r)
	}
	// Other bytes under that name.
	other := paktest.Pak{Kind: "KeepMe", Registry: paktest.Registry, Digest: paktest.DigestOf("other")}.WriteFile(t, t.TempDir())
	if r := keep("", other); r.Status != keepFailed || !strings.Contains(r.Error, "watch_dir already holds another") {
		t.Errorf("another pak of that name: %+v", r)
	}

	// The agent keeps the image already, through a pak in done/.
	done := filepath.Join(watch, agent.DoneDir)
	if err := os.Mkdir(done, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(want, filepath.Join(done, "KeepMe_1.0.0.prepull")); err != nil {
		t.Fatal(err)
	}
	s := agent.State{Version: 1, Paks: []agent.PakState{{File: filepath.Join(done, "KeepMe_1.0.0.prepull"), Name: "KeepMe_1.0.0.prepull",
		Reference: p.Reference(""), Status: agent.StatusPresent, FirstSeen: time.Now(), Updated: time.Now()}}}
	data, _ := json.Marshal(s)
	writeConfigFile(t, filepath.Join(state, agent.StateFile), string(data))
	if r := keep("", file); r.Status != keepKept || r.ExitCode != ExitOK || r.Path != filepath.Join(done, "KeepMe_1.0.0.prepull") || r.PakStatus != agent.StatusPresent {
		t.Errorf("the image kept already: %+v", r)
	}
	if _, err := os.Lstat(want); err == nil {
		t.Error("a file was written although the agent keeps the image already")
	}

	// No watch_dir: the agent is not installed here.
	writeConfigFile(t, cfg, fmt.Sprintf("watch_dir: %s\nstate_dir: %s\n", filepath.Join(dir, "none"), state))
	if r := keep("", other); r.Status != keepFailed || r.ExitCode != ExitUsage || !strings.Contains(r.Error, "does not exist: is the agent installed here") {
		t.Errorf("no watch_dir: %+v", r)
	}
}

// TestKeepWithRunningAgent holds the agent's lock as a running agent does
// and plays the agent's part in its state file: the file written is taken
// once the state lists its bytes; an agent that does not take it in time
// gives not-taken, with why when the agent says it is degraded.
func TestKeepWithRunningAgent(t *testing.T) {
	dir, watch, state, cfg := keepDirs(t)
	lock, err := os.OpenFile(filepath.Join(state, agent.LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	live, _ := json.Marshal(agent.Live{PID: os.Getpid(), Degraded: []string{"watch_dir is unsafe"}})
	if _, err := lock.Write(live); err != nil {
		t.Fatal(err)
	}

	// Nobody takes it: not-taken, and why.
	p := paktest.Pak{Kind: "Waits", Registry: paktest.Registry}
	out, _, code := runCLI(t, "", "keep", "--config", cfg, "--json", "--wait", "300ms", p.WriteFile(t, dir))
	var rs []keepResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 || code != ExitFailure || rs[0].Status != keepNotTaken ||
		rs[0].Agent != agent.AgentDegraded || !strings.Contains(rs[0].Error, "the agent did not take Waits_1.0.0.prepull within 300ms; it stays in watch_dir for the agent (the agent is degraded: watch_dir is unsafe)") {
		t.Fatalf("an agent that does not take it: exit %d\n%s", code, out)
	}

	// The agent takes it: at keep's first read of its state after the file
	// is there, the state lists the file's bytes and the image present.
	p = paktest.Pak{Kind: "Taken", Registry: paktest.Registry}
	path := filepath.Join(watch, "Taken_1.0.0.prepull")
	taken := false
	take := func() {
		if data, err := os.ReadFile(path); err == nil && !taken {
			taken = true
			writeState(t, state, agent.State{Version: 1, Paks: []agent.PakState{{File: filepath.Join(watch, agent.DoneDir, "Taken_1.0.0.prepull"), Name: "Taken_1.0.0.prepull",
				SHA256: sha256Text(data), Reference: p.Reference(""), Status: agent.StatusPresent}}})
		}
	}
	out, _, code = runWith(context.Background(), t, &globals{keepStep: take}, "keep", "--config", cfg, "--json", "--wait", "1m", p.WriteFile(t, dir))
	rs = nil
	if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 || code != ExitOK || rs[0].Status != keepTaken ||
		rs[0].PakStatus != agent.StatusPresent || rs[0].Path != filepath.Join(watch, agent.DoneDir, "Taken_1.0.0.prepull") {
		t.Fatalf("an agent that takes it: exit %d\n%s", code, out)
	}
}

// keepDirs makes a watch_dir and a state_dir in a new folder, and a
// configuration naming them.
func keepDirs(t *testing.T) (dir, watch, state, cfg string) {
	t.Helper()
	dir = t.TempDir()
	watch, state = filepath.Join(dir, "inbox"), filepath.Join(dir, "state")
	for _, d := range []string{watch, state} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg = filepath.Join(dir, "config.yaml")
	writeConfigFile(t, cfg, fmt.Sprintf("watch_dir: %s\nstate_dir: %s\n", watch, state))
	return dir, watch, state, cfg
}

// TestKeepUntilPresent plays a running agent's part in its state file and
// checks that keep --until-present waits for the agent's verdict and exits
// with the one-shot's code for it: present 0, rejected credentials 4, the
// wrong platform 7; that a failure older than keep (being retried after a
// reload) is not its verdict, but the code it gives when the wait runs out.
func TestKeepUntilPresent(t *testing.T) {
	dir, watch, state, cfg := keepDirs(t)
	holdAgentLock(t, state)
	// keep runs prepull keep with step playing the agent's part before each
	// read of its state but the first.
	keep := func(step func(), args ...string) keepResult {
		t.Helper()
		out, stderr, code := runWith(context.Background(), t, &globals{keepStep: step}, append([]string{"keep", "--config", cfg, "--json", "--until-present"}, args...)...)
		var rs []keepResult
		if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 || rs[0].ExitCode != code {
			t.Fatalf("keep %v: exit %d, not one JSON result that agrees (%v):\n%s\n%s", args, code, err, out, stderr)
		}
		return rs[0]
	}
	// agentSays is a step that, once keep has written name, writes the
	// state with its pak in done/ with the next of statuses at each read
	// keep makes; left tells how many statuses keep has not been shown.
	agentSays := func(name string, statuses ...agent.PakState) (step func(), left func() int) {
		path := filepath.Join(watch, name)
		step = func() {
			data, err := os.ReadFile(path)
			if err != nil || len(statuses) == 0 {
				return
			}
			p := statuses[0]
			statuses = statuses[1:]
			p.File, p.Name, p.SHA256, p.Updated = filepath.Join(watch, agent.DoneDir, name), name, sha256Text(data), time.Now()
			writeState(t, state, agent.State{Version: 1, Paks: []agent.PakState{p}})
		}
		return step, func() int { return len(statuses) }
	}

	p := paktest.Pak{Kind: "Rejected", Registry: paktest.Registry}
	step, left := agentSays("Rejected_1.0.0.prepull", agent.PakState{Reference: p.Reference(""), Status: agent.StatusPulling},
		agent.PakState{Reference: p.Reference(""), Status: agent.StatusFailed, LastError: "registry rejected the credentials", ErrorKind: agent.ErrorCredentials})
	r := keep(step, "--wait", "1m", p.WriteFile(t, dir))
	if r.Status != keepFailed || r.ExitCode != ExitAuth || r.PakStatus != agent.StatusFailed || r.Error != "the agent failed it: registry rejected the credentials" || left() != 0 {
		t.Errorf("rejected credentials (%d statuses not shown): %+v", left(), r)
	}

	p = paktest.Pak{Kind: "Arm", Registry: paktest.Registry}
	step, left = agentSays("Arm_1.0.0.prepull", agent.PakState{Status: agent.StatusInvalid, LastError: "no linux/amd64 variant", ErrorKind: agent.ErrorPlatform})
	r = keep(step, "--wait", "1m", p.WriteFile(t, dir))
	if r.Status != keepFailed || r.ExitCode != ExitPlatform || !strings.Contains(r.Error, "no linux/amd64 variant") || left() != 0 {
		t.Errorf("the wrong platform (%d statuses not shown): %+v", left(), r)
	}

	// A pak in done/ that the agent failed before keep started: no verdict
	// until the wait runs out, then that failure's code.
	p = paktest.Pak{Kind: "Old", Registry: paktest.Registry}
	file := p.WriteFile(t, dir)
	old := agent.PakState{File: filepath.Join(watch, agent.DoneDir, "Old_1.0.0.pak"), Name: "Old_1.0.0.pak", Reference: p.Reference(""),
		Status: agent.StatusFailed, LastError: "registry rejected the credentials", ErrorKind: agent.ErrorCredentials, Updated: time.Now().Add(-time.Minute)}
	if err := os.MkdirAll(filepath.Dir(old.File), 0o700); err != nil {
		t.Fatal(err)
	}
	writeConfigFile(t, old.File, string(p.Bytes()))
	writeState(t, state, agent.State{Version: 1, Paks: []agent.PakState{old}})
	r = keep(func() {}, "--wait", "300ms", file)
	if r.Status != keepFailed || r.ExitCode != ExitAuth || r.Path != old.File ||
		r.Error != "the image is not present within 300ms (failed: registry rejected the credentials)" {
		t.Errorf("an old failure: %+v", r)
	}
	if _, err := os.Lstat(filepath.Join(watch, "Old_1.0.0.pak")); err == nil {
		t.Error("a file was written although the agent keeps the image already")
	}
	// The agent tries again and the image is present at keep's second read
	// after the old failure: keep waits through that failure, then exits 0.
	reads := 0
	retried := func() {
		if reads++; reads == 2 {
			p := old
			p.Status, p.LastError, p.ErrorKind, p.Updated = agent.StatusPresent, "", "", time.Now()
			writeState(t, state, agent.State{Version: 1, Paks: []agent.PakState{p}})
		}
	}
	if r = keep(retried, "--wait", "1m", file); r.Status != keepKept || r.ExitCode != ExitOK || r.PakStatus != agent.StatusPresent || reads != 2 {
		t.Errorf("the old failure retried (%d reads): %+v", reads, r)
	}
}

// holdAgentLock holds state_dir's agent lock as a running agent does, until
// t ends.
func holdAgentLock(t *testing.T, state string) {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(state, agent.LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	live, _ := json.Marshal(agent.Live{PID: os.Getpid()})
	if _, err := lock.Write(live); err != nil {
		t.Fatal(err)
	}
}

// writeState writes the agent's state file atomically, as the agent does:
// keep reads it meanwhile.
func writeState(t *testing.T, state string, s agent.State) {
	b, err := json.Marshal(s)
	if err != nil {
		t.Error(err)
		return
	}
	tmp := filepath.Join(state, ".state.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(state, agent.StateFile)); err != nil {
		t.Error(err)
	}
}
