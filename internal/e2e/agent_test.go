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
)

// agentProc is a running prepull agent: the real binary, with a
// configuration of short intervals and JSON logs, its watch_dir and
// state_dir in the test's own folders.
type agentProc struct {
	t      *testing.T
	f      *fixture
	config string
	inbox  string
	state  string

	cmd  *exec.Cmd
	done chan struct{}
	code int

	mu   sync.Mutex
	logs []map[string]any
	raw  strings.Builder
}

// agentConfig writes a configuration for the agent with short intervals;
// extra YAML lines are appended.
func (f *fixture) agentConfig(extra string) (config, inbox, state string) {
	f.t.Helper()
	inbox = filepath.Join(f.dir, "inbox")
	state = filepath.Join(f.dir, "state")
	for _, d := range []string{inbox, state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			f.t.Fatal(err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			f.t.Fatal(err)
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
		"stall_timeout: 5s",
		"pull_timeout: 5m",
	}
	// A line of extra replaces the default line for its key.
	for _, e := range strings.Split(strings.TrimSpace(extra), "\n") {
		if key, _, ok := strings.Cut(e, ":"); ok {
			lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, key+":") })
			lines = append(lines, e)
		}
	}
	config = f.writeConfig(strings.Join(lines, "\n") + "\n")
	return config, inbox, state
}

// startAgent runs prepull agent with the configuration and stops it
// (SIGKILL) when the test ends, if the test did not.
func (f *fixture) startAgent(config, inbox, state string) *agentProc {
	f.t.Helper()
	p := &agentProc{t: f.t, f: f, config: config, inbox: inbox, state: state, done: make(chan struct{})}
	p.cmd = exec.Command(testenv.Prepull(f.t), "agent", "--config", config)
	p.cmd.Env = f.cleanEnv()
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		f.t.Fatal(err)
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
		err := p.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				p.code = -int(ws.Signal())
			}
		}
		close(p.done)
	}()
	f.t.Cleanup(func() {
		p.kill()
		if strings.Contains(p.logText(), f.password) {
			f.t.Errorf("the registry password appears in the agent's log")
		}
		if f.t.Failed() {
			f.t.Logf("agent log:\n%s", p.logText())
		}
	})
	return p
}

func (p *agentProc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// countLogs counts log lines with message msg whose fields hold want.
func (p *agentProc) countLogs(msg string, want map[string]string) int {
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

// kill ends the agent with SIGKILL, as a crash would.
func (p *agentProc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *agentProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// terminate sends SIGTERM and returns the exit code and how long the
// agent took to exit; it fails the test after 15 s.
func (p *agentProc) terminate() (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatal("the agent did not exit within 15 s of SIGTERM")
	}
	return p.code, time.Since(start)
}

// agentState is state.json as the tests read it.
type agentState struct {
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

// readState reads state.json; a missing file is an empty state. A file
// that does not parse fails the test: the state must always be readable.
func (p *agentProc) readState() agentState {
	p.t.Helper()
	var s agentState
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

// eventually waits up to limit for cond, failing the test with what.
func (p *agentProc) eventually(limit time.Duration, what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if p.exited() {
			p.t.Fatalf("the agent exited (code %d) while waiting until %s", p.code, what)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %v waiting until %s\nstate: %+v", limit, what, p.readState())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// drop copies a pak file into the inbox under name, writing it in place
// (not renamed), as a plain cp does: the agent must wait for it to settle.
func (p *agentProc) drop(src, name string) string {
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

func (p *agentProc) inDone(name string) bool {
	_, err := os.Stat(filepath.Join(p.inbox, "done", name))
	return err == nil
}

// TestAgentPullsDroppedPakAndRejectsInvalid drops a good pak and a broken
// one, checks the image, done/, failed/ with its reason and prepull status,
// then stops the agent with SIGTERM.
func TestAgentPullsDroppedPakAndRejectsInvalid(t *testing.T) {
	f := newFixture(t, "proj/agent-one")
	config, inbox, state := f.agentConfig("")
	a := f.startAgent(config, inbox, state)

	a.drop(f.pak, "good.pak")
	bad := filepath.Join(f.dir, "bad.pak")
	if err := os.WriteFile(bad, paktest.Pak{Registry: f.reg.Addr, Repository: "/proj/x", Digest: "sha256:not-a-digest"}.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	a.drop(bad, "bad.pak")

	a.eventually(30*time.Second, "good.pak is in done/", func() bool { return a.inDone("good.pak") })
	if !f.docker.HasImage(t, f.ref) {
		t.Errorf("%s is not in the engine", f.ref)
	}
	a.eventually(10*time.Second, "bad.pak is in failed/", func() bool {
		_, err := os.Stat(filepath.Join(inbox, "failed", "bad.pak.error"))
		return err == nil
	})
	reason, err := os.ReadFile(filepath.Join(inbox, "failed", "bad.pak.error"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(reason), "DIGEST") {
		t.Errorf("bad.pak.error does not say the DIGEST is wrong:\n%s", reason)
	}
	for _, name := range []string{"good.pak", "bad.pak"} {
		if _, err := os.Stat(filepath.Join(inbox, name)); err == nil {
			t.Errorf("%s is still in the inbox", name)
		}
	}

	// prepull status reads the state without the agent's help.
	r := f.prepull(nil, "status", "--json", "--config", config)
	r.want(t, 0)
	var s agentState
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if len(s.Images) != 1 || s.Images[0].Reference != f.ref || s.Images[0].Digest != f.digest || s.Images[0].Status != "present" {
		t.Errorf("status --json images: %+v, want %s present", s.Images, f.ref)
	}
	statuses := map[string]string{}
	for _, p := range s.Paks {
		statuses[p.Name] = p.Status
	}
	if statuses["good.pak"] != "present" || statuses["bad.pak"] != "invalid" {
		t.Errorf("status --json paks: %v", statuses)
	}
	r = f.prepull(nil, "status", "--config", config)
	r.want(t, 0)
	for _, want := range []string{"PAK", "done/good.pak", "failed/bad.pak", "invalid", f.ref, "present"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status does not show %q:\n%s", want, r.stdout)
		}
	}
	if a.countLogs("pak done", map[string]string{"pak": "good.pak", "reference": f.ref}) != 1 {
		t.Errorf("no log line says good.pak is done")
	}

	code, took := a.terminate()
	if code != 0 || took > 10*time.Second {
		t.Errorf("SIGTERM: exit code %d after %v, want 0 within 10 s", code, took)
	}
}

// TestAgentManyPaksFewImages drops 100 paks naming 3 images: each image is
// pulled exactly once.
func TestAgentManyPaksFewImages(t *testing.T) {
	f := newFixture(t, "proj/many0")
	refs := []string{f.ref}
	digests := []string{f.digest}
	for i := 1; i < 3; i++ {
		repo := fmt.Sprintf("proj/many%d", i)
		d := f.docker.PushImage(t, f.reg, repo, testenv.ImageOptions{})
		refs = append(refs, f.reg.Addr+"/"+repo+"@"+d)
		digests = append(digests, d)
	}
	config, inbox, state := f.agentConfig("")
	a := f.startAgent(config, inbox, state)
	for i := range 100 {
		k := i % 3
		p := paktest.Pak{Kind: fmt.Sprintf("Many%d", k), Version: fmt.Sprintf("1.0.%d", i), Registry: f.reg.Addr,
			Repository: fmt.Sprintf("/proj/many%d", k), Digest: digests[k]}
		path := filepath.Join(inbox, fmt.Sprintf("pak%03d.pak", i))
		if err := os.WriteFile(path, p.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a.eventually(60*time.Second, "all 100 paks are in done/", func() bool {
		entries, _ := os.ReadDir(filepath.Join(inbox, "done"))
		return len(entries) == 100
	})
	s := a.readState()
	if len(s.Paks) != 100 || len(s.Images) != 3 {
		t.Fatalf("state has %d paks and %d images, want 100 and 3", len(s.Paks), len(s.Images))
	}
	pulls := 0
	for _, im := range s.Images {
		pulls += im.Pulls
		if im.Pulls != 1 || im.Status != "present" {
			t.Errorf("image %s: %d pulls, status %s; want 1 pull, present", im.Reference, im.Pulls, im.Status)
		}
	}
	if logged := a.countLogs("pulling image", nil); pulls != 3 || logged != 3 {
		t.Errorf("%d pulls in the state and %d pull attempts logged, want 3 and 3", pulls, logged)
	}
	for _, ref := range refs {
		if !f.docker.HasImage(t, ref) {
			t.Errorf("%s is not in the engine", ref)
		}
	}
}

// TestAgentPullsRemovedImageAgain removes an image behind the agent's back:
// the verify loop pulls it again.
func TestAgentPullsRemovedImageAgain(t *testing.T) {
	f := newFixture(t, "proj/agent-verify")
	config, inbox, state := f.agentConfig("verify_interval: 1s\n")
	a := f.startAgent(config, inbox, state)
	a.drop(f.pak, "v.pak")
	a.eventually(30*time.Second, "v.pak is in done/", func() bool { return a.inDone("v.pak") })

	f.docker.RemoveImage(t, f.ref)
	a.eventually(30*time.Second, "the removed image is pulled again", func() bool {
		s := a.readState()
		return len(s.Images) == 1 && s.Images[0].Pulls == 2 && s.Images[0].Status == "present"
	})
	if !f.docker.HasImage(t, f.ref) {
		t.Errorf("%s is not in the engine", f.ref)
	}
	if a.countLogs("image vanished from the engine, pulling it again", map[string]string{"reference": f.ref}) == 0 {
		t.Error("no log line says the image vanished")
	}
}

// TestAgentKilledMidPullResumes kills the agent with SIGKILL while it pulls
// a big image; the state stays readable and a new agent finishes the work.
func TestAgentKilledMidPullResumes(t *testing.T) {
	f := newFixture(t, "proj/agent-small")
	digest := f.docker.PushImage(t, f.reg, "proj/agent-big", testenv.ImageOptions{Size: 96 << 20, Layers: 6})
	ref := f.reg.Addr + "/proj/agent-big@" + digest
	big := paktest.Pak{Kind: "BigAdapter", Registry: f.reg.Addr, Repository: "/proj/agent-big", Digest: digest}.WriteFile(t, f.dir)
	config, inbox, state := f.agentConfig("")

	a := f.startAgent(config, inbox, state)
	a.drop(big, "big.pak")
	a.eventually(30*time.Second, "the state says pulling", func() bool {
		s := a.readState()
		return len(s.Images) == 1 && s.Images[0].Status == "pulling" && s.Images[0].Attempts > 0
	})
	a.kill()
	if f.docker.HasImage(t, ref) {
		t.Log("the pull finished before SIGKILL landed; the restart still has to move the pak")
	}
	s := a.readState() // must parse
	if len(s.Paks) != 1 || s.Paks[0].Reference != ref {
		t.Fatalf("after SIGKILL the state has %+v, want big.pak", s.Paks)
	}
	if a.inDone("big.pak") {
		t.Fatal("big.pak is in done/ although the agent was killed before its image was present")
	}

	b := f.startAgent(config, inbox, state)
	b.eventually(60*time.Second, "big.pak is in done/ after the restart", func() bool { return b.inDone("big.pak") })
	if !f.docker.HasImage(t, ref) {
		t.Errorf("%s is not in the engine", ref)
	}
	if st := b.readState(); st.Images[0].Status != "present" {
		t.Errorf("image status %s after the restart, want present", st.Images[0].Status)
	}
}

// TestAgentRegistryDownThenBack starts with the registry stopped: the agent
// keeps trying and finishes once the registry is back.
func TestAgentRegistryDownThenBack(t *testing.T) {
	f := newFixture(t, "proj/agent-down")
	f.reg.Stop(t)
	config, inbox, state := f.agentConfig("")
	a := f.startAgent(config, inbox, state)
	a.drop(f.pak, "r.pak")
	a.eventually(30*time.Second, "the failure is in the state", func() bool {
		s := a.readState()
		return len(s.Images) == 1 && strings.Contains(s.Images[0].LastError, "connection refused")
	})
	if a.inDone("r.pak") {
		t.Fatal("r.pak is done while the registry is down")
	}
	f.reg.Start(t)
	a.eventually(60*time.Second, "r.pak is in done/ once the registry is back", func() bool { return a.inDone("r.pak") })
	if !f.docker.HasImage(t, f.ref) {
		t.Errorf("%s is not in the engine", f.ref)
	}
}

// TestAgentFixedPasswordAfterSIGHUP starts with a wrong password: the image
// fails with the rejection; the fixed password file and SIGHUP make it work
// at once, without a restart.
func TestAgentFixedPasswordAfterSIGHUP(t *testing.T) {
	f := newFixture(t, "proj/agent-hup")
	f.writePasswordFile("wrong-" + f.password)
	config, inbox, state := f.agentConfig("")
	a := f.startAgent(config, inbox, state)
	a.drop(f.pak, "h.pak")
	a.eventually(30*time.Second, "the image failed on the credentials", func() bool {
		s := a.readState()
		return len(s.Images) == 1 && s.Images[0].Status == "failed"
	})
	s := a.readState()
	if s.Paks[0].Status != "failed" || s.Paks[0].LastError == "" {
		t.Errorf("pak state %+v, want failed with the error", s.Paks[0])
	}

	f.writePasswordFile(f.password)
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Without the reload the next try would come a minute later.
	a.eventually(20*time.Second, "h.pak is in done/ after SIGHUP", func() bool { return a.inDone("h.pak") })
	if a.countLogs("configuration reloaded", nil) != 1 {
		t.Error("no log line says the configuration was reloaded")
	}
	code, took := a.terminate()
	if code != 0 || took > 10*time.Second {
		t.Errorf("SIGTERM: exit code %d after %v, want 0 within 10 s", code, took)
	}
}

// TestAgentEngineDownThenBack starts the agent with the Docker Engine
// stopped: it keeps running, says so, and pulls once the engine is back.
func TestAgentEngineDownThenBack(t *testing.T) {
	f := newFixture(t, "proj/agent-engine")
	config, inbox, state := f.agentConfig("")
	f.docker.Stop(t)
	t.Cleanup(func() { testenv.Docker(t) }) // started again if the test failed early
	a := f.startAgent(config, inbox, state)
	a.drop(f.pak, "e.pak")
	a.eventually(30*time.Second, "the agent says the engine is unreachable", func() bool {
		return a.countLogs("docker engine unreachable, will keep trying", nil) > 0
	})
	f.docker.Start(t)
	a.eventually(60*time.Second, "e.pak is in done/ once the engine is back", func() bool { return a.inDone("e.pak") })
	if !f.docker.HasImage(t, f.ref) {
		t.Errorf("%s is not in the engine", f.ref)
	}
}

// TestAgentRefusesOpenWatchDir: a watch_dir others can write is refused.
func TestAgentRefusesOpenWatchDir(t *testing.T) {
	testenv.Require(t)
	f := &fixture{t: t, dir: t.TempDir(), password: "unused-" + randomWord(t)}
	inbox := filepath.Join(f.dir, "inbox")
	if err := os.Mkdir(inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(inbox, 0o777); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(f.dir, "config.yaml")
	body := fmt.Sprintf("watch_dir: %s\nstate_dir: %s\n", inbox, filepath.Join(f.dir, "state"))
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r := f.prepull(nil, "agent", "--config", config)
	r.want(t, 2)
	if !strings.Contains(r.stderr, "chmod go-w") {
		t.Errorf("the refusal does not say how to fix it:\n%s", r.stderr)
	}
}
