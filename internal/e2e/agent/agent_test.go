//go:build linux

package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// TestAgentPullsDroppedPakAndRejectsInvalid drops a good pak and a broken
// one, checks the image, done/, failed/ with its reason and prepull status,
// then stops the agent with SIGTERM.
func TestAgentPullsDroppedPakAndRejectsInvalid(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-one")
	config, inbox, state := f.AgentConfig("")
	a := f.StartAgent(config, inbox, state)

	a.Drop(f.Pak, "good.pak")
	bad := filepath.Join(f.Dir, "bad.pak")
	if err := os.WriteFile(bad, paktest.Pak{Registry: f.Reg.Addr, Repository: "/proj/x", Digest: "sha256:not-a-digest"}.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Drop(bad, "bad.pak")

	a.Eventually("good.pak is in done/", func() bool { return a.InDone("good.pak") })
	if !f.Docker.HasImage(t, f.Ref) {
		t.Errorf("%s is not in the engine", f.Ref)
	}
	a.Eventually("bad.pak is in failed/", func() bool {
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
	r := f.Prepull(nil, "status", "--json", "--config", config)
	r.Want(t, 0)
	s := e2e.Decode[e2e.AgentState](t, r)
	if len(s.Images) != 1 || s.Images[0].Reference != f.Ref || s.Images[0].Digest != f.Digest || s.Images[0].Status != "present" {
		t.Errorf("status --json images: %+v, want %s present", s.Images, f.Ref)
	}
	statuses := map[string]string{}
	for _, p := range s.Paks {
		statuses[p.Name] = p.Status
	}
	if statuses["good.pak"] != "present" || statuses["bad.pak"] != "invalid" {
		t.Errorf("status --json paks: %v", statuses)
	}
	r = f.Prepull(nil, "status", "--config", config)
	r.Want(t, 0)
	for _, want := range []string{"PAK", "done/good.pak", "failed/bad.pak", "invalid", f.Ref, "present"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("status does not show %q:\n%s", want, r.Stdout)
		}
	}
	if a.CountLogs("pak done", map[string]string{"pak": "good.pak", "reference": f.Ref}) != 1 {
		t.Errorf("no log line says good.pak is done")
	}

	if code, took := a.Terminate(); code != 0 {
		t.Errorf("SIGTERM: exit code %d after %v, want 0", code, took)
	}
}

// TestAgentManyPaksFewImages drops 100 paks naming 3 images: each image is
// pulled exactly once.
func TestAgentManyPaksFewImages(t *testing.T) {
	f := e2e.NewFixture(t, "proj/many0")
	refs := []string{f.Ref}
	digests := []string{f.Digest}
	for i := 1; i < 3; i++ {
		repo := fmt.Sprintf("proj/many%d", i)
		d := f.Docker.PushImage(t, f.Reg, repo, testenv.ImageOptions{})
		refs = append(refs, f.Reg.Addr+"/"+repo+"@"+d)
		digests = append(digests, d)
	}
	config, inbox, state := f.AgentConfig("")
	a := f.StartAgent(config, inbox, state)
	for i := range 100 {
		k := i % 3
		p := paktest.Pak{Kind: fmt.Sprintf("Many%d", k), Version: fmt.Sprintf("1.0.%d", i), Registry: f.Reg.Addr,
			Repository: fmt.Sprintf("/proj/many%d", k), Digest: digests[k]}
		path := filepath.Join(inbox, fmt.Sprintf("pak%03d.pak", i))
		if err := os.WriteFile(path, p.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a.Eventually("all 100 paks are in done/", func() bool {
		entries, _ := os.ReadDir(filepath.Join(inbox, "done"))
		return len(entries) == 100
	})
	s := a.ReadState()
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
	if logged := a.CountLogs("pulling image", nil); pulls != 3 || logged != 3 {
		t.Errorf("%d pulls in the state and %d pull attempts logged, want 3 and 3", pulls, logged)
	}
	for _, ref := range refs {
		if !f.Docker.HasImage(t, ref) {
			t.Errorf("%s is not in the engine", ref)
		}
	}
}

// TestAgentPullsRemovedImageAgain removes an image behind the agent's back:
// the verify loop pulls it again.
func TestAgentPullsRemovedImageAgain(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-verify")
	config, inbox, state := f.AgentConfig("verify_interval: 1s\n")
	a := f.StartAgent(config, inbox, state)
	a.Drop(f.Pak, "v.pak")
	a.Eventually("v.pak is in done/", func() bool { return a.InDone("v.pak") })

	f.Docker.RemoveImage(t, f.Ref)
	a.Eventually("the removed image is pulled again", func() bool {
		s := a.ReadState()
		return len(s.Images) == 1 && s.Images[0].Pulls == 2 && s.Images[0].Status == "present"
	})
	if !f.Docker.HasImage(t, f.Ref) {
		t.Errorf("%s is not in the engine", f.Ref)
	}
	if a.CountLogs("image vanished from the engine, pulling it again", map[string]string{"reference": f.Ref}) == 0 {
		t.Error("no log line says the image vanished")
	}
}

// TestAgentKilledMidPullResumes kills the agent with SIGKILL while it pulls
// a big image; the state stays readable and a new agent finishes the work.
func TestAgentKilledMidPullResumes(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-small")
	digest := f.Docker.PushImage(t, f.Reg, "proj/agent-big", testenv.ImageOptions{Size: 96 << 20, Layers: 6})
	ref := f.Reg.Addr + "/proj/agent-big@" + digest
	big := paktest.Pak{Kind: "BigAdapter", Registry: f.Reg.Addr, Repository: "/proj/agent-big", Digest: digest}.WriteFile(t, f.Dir)
	config, inbox, state := f.AgentConfig("")

	a := f.StartAgent(config, inbox, state)
	a.Drop(big, "big.pak")
	a.Eventually("the state says pulling", func() bool {
		s := a.ReadState()
		return len(s.Images) == 1 && s.Images[0].Status == "pulling" && s.Images[0].Attempts > 0
	})
	a.Kill()
	if f.Docker.HasImage(t, ref) {
		t.Log("the pull finished before SIGKILL landed; the restart still has to move the pak")
	}
	s := a.ReadState() // must parse
	if len(s.Paks) != 1 || s.Paks[0].Reference != ref {
		t.Fatalf("after SIGKILL the state has %+v, want big.pak", s.Paks)
	}
	if a.InDone("big.pak") {
		t.Fatal("big.pak is in done/ although the agent was killed before its image was present")
	}

	b := f.StartAgent(config, inbox, state)
	b.Eventually("big.pak is in done/ after the restart", func() bool { return b.InDone("big.pak") })
	if !f.Docker.HasImage(t, ref) {
		t.Errorf("%s is not in the engine", ref)
	}
	if st := b.ReadState(); st.Images[0].Status != "present" {
		t.Errorf("image status %s after the restart, want present", st.Images[0].Status)
	}
}

// TestAgentRegistryDownThenBack starts with the registry stopped: the agent
// keeps trying and finishes once the registry is back.
func TestAgentRegistryDownThenBack(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-down")
	f.Reg.Stop(t)
	config, inbox, state := f.AgentConfig("")
	a := f.StartAgent(config, inbox, state)
	a.Drop(f.Pak, "r.pak")
	a.Eventually("the failure is in the state", func() bool {
		s := a.ReadState()
		return len(s.Images) == 1 && strings.Contains(s.Images[0].LastError, "connection refused")
	})
	if a.InDone("r.pak") {
		t.Fatal("r.pak is done while the registry is down")
	}
	f.Reg.Start(t)
	a.Eventually("r.pak is in done/ once the registry is back", func() bool { return a.InDone("r.pak") })
	if !f.Docker.HasImage(t, f.Ref) {
		t.Errorf("%s is not in the engine", f.Ref)
	}
}

// TestAgentFixedPasswordAfterSIGHUP starts with a wrong password: the image
// fails with the rejection; the fixed password file and SIGHUP make it work
// at once, without a restart.
func TestAgentFixedPasswordAfterSIGHUP(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-hup")
	f.WritePasswordFile("wrong-" + f.Password)
	config, inbox, state := f.AgentConfig("")
	a := f.StartAgent(config, inbox, state)
	a.Drop(f.Pak, "h.pak")
	a.Eventually("the image failed on the credentials", func() bool {
		s := a.ReadState()
		return len(s.Images) == 1 && s.Images[0].Status == "failed"
	})
	s := a.ReadState()
	if s.Paks[0].Status != "failed" || s.Paks[0].LastError == "" {
		t.Errorf("pak state %+v, want failed with the error", s.Paks[0])
	}

	f.WritePasswordFile(f.Password)
	if err := a.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.Eventually("h.pak is in done/ after SIGHUP", func() bool {
		return a.InDone("h.pak") && a.CountLogs("pak done", map[string]string{"pak": "h.pak"}) == 1
	})
	if a.CountLogs("configuration reloaded", nil) != 1 {
		t.Error("no log line says the configuration was reloaded")
	}
	// Done by the reload, not by the agent's own retry (a minute later):
	// on the agent's clock, before the retry the failure scheduled was due.
	failed, line := a.LogTime("cannot pull image, will retry slowly (reload to retry now)")
	retryIn, ok := line["retry_in"].(float64)
	if !ok {
		t.Fatalf("the failure's log line has no retry_in: %v", line)
	}
	if done, _ := a.LogTime("pak done"); !done.Before(failed.Add(time.Duration(retryIn * float64(time.Second)))) {
		t.Errorf("h.pak was done at %v, not before the retry due %vs after the failure at %v: not by the reload", done, retryIn, failed)
	}
	if code, took := a.Terminate(); code != 0 {
		t.Errorf("SIGTERM: exit code %d after %v, want 0", code, took)
	}
}

// TestAgentEngineDownThenBack starts the agent with the Docker Engine
// stopped: it keeps running, says so, and pulls once the engine is back.
func TestAgentEngineDownThenBack(t *testing.T) {
	f := e2e.NewFixture(t, "proj/agent-engine")
	config, inbox, state := f.AgentConfig("")
	f.Docker.Stop(t)
	t.Cleanup(func() { testenv.Docker(t) }) // started again if the test failed early
	a := f.StartAgent(config, inbox, state)
	a.Drop(f.Pak, "e.pak")
	a.Eventually("the agent says the engine is unreachable", func() bool {
		return a.CountLogs("docker engine unreachable, will keep trying", nil) > 0
	})
	f.Docker.Start(t)
	a.Eventually("e.pak is in done/ once the engine is back", func() bool { return a.InDone("e.pak") })
	if !f.Docker.HasImage(t, f.Ref) {
		t.Errorf("%s is not in the engine", f.Ref)
	}
}

// TestAgentRefusesOpenWatchDir: a watch_dir others can write is refused.
func TestAgentRefusesOpenWatchDir(t *testing.T) {
	testenv.Require(t)
	f := &e2e.Fixture{T: t, Dir: t.TempDir(), Password: "unused-" + e2e.RandomWord(t)}
	inbox := filepath.Join(f.Dir, "inbox")
	if err := os.Mkdir(inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(inbox, 0o777); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(f.Dir, "config.yaml")
	body := fmt.Sprintf("watch_dir: %s\nstate_dir: %s\n", inbox, filepath.Join(f.Dir, "state"))
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r := f.Prepull(nil, "agent", "--config", config)
	r.Want(t, 2)
	if !strings.Contains(r.Stderr, "chmod go-w") {
		t.Errorf("the refusal does not say how to fix it:\n%s", r.Stderr)
	}
}
