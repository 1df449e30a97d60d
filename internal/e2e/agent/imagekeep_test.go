//go:build linux

package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// The tests of this file check keep_images (issue 14, point 4) against the
// real binary, Docker Engine and registry.

// keepFixture is an anonymous registry (so that the test's own docker CLI
// can pull and create containers) with three digests of one repository and
// a pak for each, v0, v1 and v2, pushed in that order.
type keepFixture struct {
	*e2e.Fixture
	refs [3]string
	paks [3]string
}

func newKeepFixture(t *testing.T, repo string) *keepFixture {
	t.Helper()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	k := &keepFixture{Fixture: e2e.NewRegistryFixtureOn(t, testenv.Docker(t), reg, repo, "")}
	for i := range k.refs {
		digest := k.Digest
		if i > 0 {
			digest = k.Docker.PushImage(t, reg, repo, testenv.ImageOptions{Size: 8 << 10})
		}
		k.refs[i] = reg.Addr + "/" + repo + "@" + digest
		dir := filepath.Join(k.Dir, "v"+string(rune('0'+i)))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		k.paks[i] = paktest.Pak{Kind: "KeepAdapter", Version: "1.0." + string(rune('0'+i)), Registry: reg.Addr, Repository: "/" + repo, Digest: digest}.WriteFile(t, dir)
	}
	return k
}

// TestAgentKeepImages: with keep_images: 1, an image the agent pulled whose
// last pak left done/ is removed once a newer digest is present, but not
// while a container (created, never started) uses it; an image the agent
// found present is never removed; status lists what was removed and when.
func TestAgentKeepImages(t *testing.T) {
	k := newKeepFixture(t, "proj/keep-rules")
	k.Docker.Run(t, "pull", k.refs[0]) // present before the agent: not its to remove
	config, inbox, state := k.AgentConfig("keep_images: 1\n")
	a := k.StartAgent(config, inbox, state)
	a.WaitStarted()
	for i, name := range []string{"v0.pak", "v1.pak"} {
		a.Drop(k.paks[i], name)
		a.Eventually(name+" is in done/", func() bool { return a.InDone(name) })
	}
	container := k.Docker.Run(t, "create", k.refs[1], "/keep-test-never-run")
	a.Drop(k.paks[2], "v2.pak")
	a.Eventually("v2.pak is in done/", func() bool { return a.InDone("v2.pak") })
	for _, name := range []string{"v0.pak", "v1.pak"} {
		if err := os.Remove(filepath.Join(inbox, "done", name)); err != nil {
			t.Fatal(err)
		}
	}
	a.Eventually("v1 is kept for its container, and status says so", func() bool {
		why, ok := a.Released(k.refs[1])
		return ok && strings.Contains(why, "in use by a container")
	})
	a.EngineChecks(2) // two more rescans, each a prune pass
	for i, ref := range k.refs {
		if !k.Docker.HasImage(t, ref) {
			t.Fatalf("v%d (%s) left the engine while a container used v1", i, ref)
		}
	}
	if _, ok := a.Released(k.refs[0]); ok {
		t.Errorf("status lists v0, which the agent found present, as released")
	}

	k.Docker.Run(t, "rm", container)
	a.Eventually("v1 is removed once no container uses it", func() bool { return a.Removal(k.refs[1]) == "removed" })
	if k.Docker.HasImage(t, k.refs[1]) {
		t.Errorf("status says %s was removed, but it is in the engine", k.refs[1])
	}
	a.EngineChecks(2)
	if !k.Docker.HasImage(t, k.refs[0]) {
		t.Errorf("v0, which the agent did not pull, was removed")
	}
	if !k.Docker.HasImage(t, k.refs[2]) {
		t.Errorf("v2, which done/v2.pak names, is not in the engine")
	}
	r := k.Prepull(nil, "status", "--config", config)
	r.Want(t, 0)
	if !strings.Contains(r.Stdout, "REMOVED IMAGE") || !strings.Contains(r.Stdout, k.refs[1]) {
		t.Errorf("status does not list the removed image:\n%s", r.Stdout)
	}
	if a.CountLogs("released image removed from the engine", map[string]string{"reference": k.refs[1], "outcome": "removed"}) != 1 {
		t.Errorf("no single log line says v1 was removed")
	}
}

// TestAgentKeepImagesUntagsOnly: an image that also has a tag prepull does
// not manage is only untagged: the digest reference goes, the image and
// its tag stay.
func TestAgentKeepImagesUntagsOnly(t *testing.T) {
	k := newKeepFixture(t, "proj/keep-tagged")
	config, inbox, state := k.AgentConfig("keep_images: 1\n")
	a := k.StartAgent(config, inbox, state)
	a.WaitStarted()
	a.Drop(k.paks[1], "v1.pak")
	a.Eventually("v1.pak is in done/", func() bool { return a.InDone("v1.pak") })
	k.Docker.Run(t, "tag", k.refs[1], "local/someone-else:mine")
	a.Drop(k.paks[2], "v2.pak")
	a.Eventually("v2.pak is in done/", func() bool { return a.InDone("v2.pak") })
	if err := os.Remove(filepath.Join(inbox, "done", "v1.pak")); err != nil {
		t.Fatal(err)
	}
	a.Eventually("v1's digest reference is untagged", func() bool { return a.Removal(k.refs[1]) == "untagged" })
	if !k.Docker.HasImage(t, "local/someone-else:mine") {
		t.Errorf("the image's other tag is gone")
	}
}

// TestAgentKeepImagesEngineDown: while the engine is stopped nothing is
// removed; once it answers again the released image goes.
func TestAgentKeepImagesEngineDown(t *testing.T) {
	k := newKeepFixture(t, "proj/keep-down")
	config, inbox, state := k.AgentConfig("keep_images: 1\n")
	a := k.StartAgent(config, inbox, state)
	a.WaitStarted()
	for i, name := range []string{"", "v1.pak", "v2.pak"} {
		if name == "" {
			continue
		}
		a.Drop(k.paks[i], name)
		a.Eventually(name+" is in done/", func() bool { return a.InDone(name) })
	}
	k.Docker.Stop(t)
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			k.Docker.Start(t)
		}
	})
	a.Eventually("the agent sees the engine down", func() bool { return a.Status().Agent.Engine == "unreachable" })
	if err := os.Remove(filepath.Join(inbox, "done", "v1.pak")); err != nil {
		t.Fatal(err)
	}
	a.Eventually("v1 is released", func() bool { _, ok := a.Released(k.refs[1]); return ok })
	a.EngineChecks(3) // three rescans with the engine down
	if s := a.Status(); len(s.Removed) != 0 {
		t.Fatalf("removed %+v while the engine was down", s.Removed)
	}
	// Asking the engine now whether v1 is still there would race the
	// agent, which may remove it as soon as the engine answers: the empty
	// Removed above is what says nothing went while the engine was down.
	k.Docker.Start(t)
	restarted = true
	a.Eventually("v1 is removed once the engine answers", func() bool { return a.Removal(k.refs[1]) == "removed" })
	// Order, from the log: the agent may remove v1 as soon as the engine
	// answers, before this test could look.
	log := a.LogText()
	back, removed := strings.Index(log, "docker engine reachable again"), strings.Index(log, "released image removed from the engine")
	if back < 0 || removed < back {
		t.Fatalf("v1 was removed before the agent saw the engine back (log offsets %d, %d)", removed, back)
	}
	if k.Docker.HasImage(t, k.refs[1]) || !k.Docker.HasImage(t, k.refs[2]) {
		t.Errorf("after the engine came back: v1 present %v (want false), v2 present %v (want true)", k.Docker.HasImage(t, k.refs[1]), k.Docker.HasImage(t, k.refs[2]))
	}
}
