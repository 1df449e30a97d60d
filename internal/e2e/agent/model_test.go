//go:build linux

package agent

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// The model-based test drives a real agent with a random sequence of what
// happens on a proxy, and checks after each step that the state never lies.
// It runs with a fixed seed, printed, so that a failure replays:
//
//	PREPULL_MODEL_SEED=N PREPULL_E2E=1 go test -run TestAgentModel ./internal/e2e/agent
//
// (or -args -model.seed N); PREPULL_MODEL_STEPS sets the number of steps.

var modelSeed = flag.Uint64("model.seed", 0, "seed of TestAgentModel (0: $PREPULL_MODEL_SEED, else the fixed CI seed)")

// modelCISeed and modelCISteps are what CI runs.
const (
	modelCISeed  = 20261130
	modelCISteps = 60
)

// model is the test's side: the real parts, and what it did to them.
type model struct {
	t      *testing.T
	f      *e2e.Fixture
	rng    *rand.Rand
	config string
	inbox  string
	disk   string // state_dir, a small tmpfs
	agent  *e2e.AgentProc
	refs   map[string]bool // the images good paks name
	found  string          // an image present before the agent ran: keep_images never removes it
	good   []string        // pak files naming a pullable image, to drop
	stuck  string          // a pak whose registry never answers
	n      int             // names made so far

	full       bool   // the state disk is full
	free       func() // frees it
	engineDown bool
	// byHand are names in done/ that the test put there itself while the
	// state could not be saved: the agent cannot know them yet.
	byHand map[string]bool
}

func modelParams(t *testing.T) (seed uint64, steps int) {
	seed, steps = modelCISeed, modelCISteps
	if v := os.Getenv("PREPULL_MODEL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("PREPULL_MODEL_SEED=%q: %v", v, err)
		}
		seed = n
	}
	if *modelSeed != 0 {
		seed = *modelSeed
	}
	if v := os.Getenv("PREPULL_MODEL_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PREPULL_MODEL_STEPS=%q: want a positive number", v)
		}
		steps = n
	}
	return seed, steps
}

// TestAgentModel: random sequences of drop, copy under another name,
// overwrite during a pull, rename, delete from done/, kill -9, state disk
// full and freed, engine stopped and started, and a second agent; after each
// step every pak file in done/ is known to the saved state, no state entry
// lacks its file, nothing in the inbox is forgotten, and every image a pak
// in done/ names is in the engine. With keep_images: 1 over three digests
// of one repository, the one the agent found present never leaves the
// engine and only images it pulled are released.
func TestAgentModel(t *testing.T) {
	seed, steps := modelParams(t)
	t.Logf("model seed %d, %d steps (replay: PREPULL_MODEL_SEED=%d)", seed, steps, seed)
	defer func() {
		if t.Failed() {
			fmt.Printf("TestAgentModel failed with seed %d: replay with PREPULL_MODEL_SEED=%d\n", seed, seed)
		}
	}()

	f := e2e.NewFixture(t, "proj/model-a")
	digestB := f.Docker.PushImage(t, f.Reg, "proj/model-b", testenv.ImageOptions{})
	// Two more digests of proj/model-a: a newer one, and one pulled before
	// the agent runs (by the one-shot), which keep_images must never remove.
	digestA2 := f.Docker.PushImage(t, f.Reg, f.Repo, testenv.ImageOptions{Size: 8 << 10})
	digestF := f.Docker.PushImage(t, f.Reg, f.Repo, testenv.ImageOptions{Size: 8 << 10})
	m := &model{t: t, f: f, rng: rand.New(rand.NewPCG(seed, 0)), refs: map[string]bool{f.Ref: true}, byHand: map[string]bool{}}
	m.refs[f.Reg.Addr+"/proj/model-b@"+digestB] = true
	m.refs[f.Reg.Addr+"/"+f.Repo+"@"+digestA2] = true
	m.found = f.Reg.Addr + "/" + f.Repo + "@" + digestF
	m.refs[m.found] = true
	foundPak := paktest.Pak{Kind: "Found", Registry: f.Reg.Addr, Repository: "/" + f.Repo, Digest: digestF}.WriteFile(t, t.TempDir())
	f.Prepull(nil, "--config", f.Config, foundPak).Want(t, 0)
	for i := range 8 {
		repo, digest := f.Repo, f.Digest
		switch i % 4 {
		case 1:
			repo, digest = "proj/model-b", digestB
		case 2:
			digest = digestA2
		case 3:
			digest = digestF
		}
		dir := filepath.Join(f.Dir, "model", strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		m.good = append(m.good, paktest.Pak{Kind: "Model", Version: "1.0." + strconv.Itoa(i), Registry: f.Reg.Addr, Repository: "/" + repo, Digest: digest}.WriteFile(t, dir))
	}
	m.stuck = paktest.Pak{Kind: "Stuck", Registry: "127.0.0.1:9", Repository: "/proj/none", Digest: f.Digest}.WriteFile(t, f.Dir)
	m.disk = testenv.Tmpfs(t, 64<<10)
	t.Cleanup(func() { testenv.Docker(t) }) // started again if a step stopped it
	m.config, m.inbox, _ = f.AgentConfig("state_dir: " + m.disk + "\nrescan_interval: 500ms\nsettle: 100ms\nverify_interval: 2s\nkeep_images: 1\n")
	m.agent = f.StartAgent(m.config, m.inbox, m.disk)
	m.agent.WaitStarted()

	type op struct {
		weight int
		name   string
		do     func() string
	}
	ops := []op{
		{4, "drop", m.drop},
		{2, "copy", m.copyUnderAnotherName},
		{1, "overwrite", m.overwriteDuringPull},
		{2, "rename", m.rename},
		{2, "delete", m.deleteFromDone},
		{1, "kill", m.killAndRestart},
		{1, "disk", m.toggleDisk},
		{1, "engine", m.toggleEngine},
		{1, "second", m.secondAgent},
	}
	for step := 1; step <= steps; step++ {
		// A full disk or a stopped engine is undone three times as often
		// as it is done, so that most steps run where every check applies.
		weight := func(o op) int {
			if (o.name == "disk" && m.full) || (o.name == "engine" && m.engineDown) {
				return 3
			}
			return o.weight
		}
		total := 0
		for _, o := range ops {
			total += weight(o)
		}
		r := m.rng.IntN(total)
		for _, o := range ops {
			if r < weight(o) {
				t.Logf("step %d: %s: %s", step, o.name, o.do())
				break
			}
			r -= weight(o)
		}
		m.check(step)
	}
	// In the end, with room and an engine, everything settles.
	if m.full {
		t.Logf("end: %s", m.toggleDisk())
	}
	if m.engineDown {
		t.Logf("end: %s", m.toggleEngine())
	}
	m.check(steps + 1)
	st := m.agent.Status()
	t.Logf("end: keep_images released %d images and removed %d", len(st.Released), len(st.Removed))
}

func (m *model) name() string {
	m.n++
	return fmt.Sprintf("m%02d.pak", m.n)
}

func (m *model) drop() string {
	src := m.good[m.rng.IntN(len(m.good))]
	name := m.name()
	m.agent.Drop(src, name)
	return fmt.Sprintf("%s as %s", filepath.Base(src), name)
}

func (m *model) copyUnderAnotherName() string {
	files := m.pakFiles()
	if len(files) == 0 {
		return m.drop()
	}
	src := files[m.rng.IntN(len(files))]
	name := m.name()
	m.agent.Drop(src, name)
	return fmt.Sprintf("%s copied as %s", m.rel(src), name)
}

func (m *model) overwriteDuringPull() string {
	name := m.name()
	m.agent.Drop(m.stuck, name)
	time.Sleep(700 * time.Millisecond) // settled, taken, its image tried
	src := m.good[m.rng.IntN(len(m.good))]
	m.agent.Drop(src, name)
	return fmt.Sprintf("%s (unpullable) overwritten with %s", name, filepath.Base(src))
}

func (m *model) rename() string {
	files := m.doneFiles()
	if len(files) == 0 {
		return "nothing in done/ to rename"
	}
	src := files[m.rng.IntN(len(files))]
	dst := filepath.Join(m.inbox, "done", m.name())
	if err := os.Rename(src, dst); err != nil {
		m.t.Fatal(err)
	}
	if m.full {
		m.byHand[filepath.Base(dst)] = true
	}
	return fmt.Sprintf("done/%s renamed done/%s", filepath.Base(src), filepath.Base(dst))
}

func (m *model) deleteFromDone() string {
	files := m.doneFiles()
	if len(files) == 0 {
		return "nothing in done/ to delete"
	}
	victim := files[m.rng.IntN(len(files))]
	if err := os.Remove(victim); err != nil {
		m.t.Fatal(err)
	}
	return "deleted done/" + filepath.Base(victim)
}

func (m *model) killAndRestart() string {
	m.agent.Kill()
	m.agent = m.f.StartAgent(m.config, m.inbox, m.disk)
	m.agent.WaitStarted()
	return "kill -9, restarted"
}

func (m *model) toggleDisk() string {
	if m.full {
		m.free()
		m.full = false
		clear(m.byHand)
		return "state disk freed"
	}
	m.free = fill(m.t, m.disk)
	m.full = true
	return "state disk filled"
}

func (m *model) toggleEngine() string {
	if m.engineDown {
		m.f.Docker.Start(m.t)
		m.engineDown = false
		return "engine started"
	}
	m.f.Docker.Stop(m.t)
	m.engineDown = true
	return "engine stopped"
}

func (m *model) secondAgent() string {
	r := m.f.Prepull(nil, "agent", "--config", m.config)
	if r.Code != 2 || !strings.Contains(r.Stderr, "pid "+strconv.Itoa(m.agent.Cmd.Process.Pid)) {
		m.t.Fatalf("a second agent exited %d, want 2 naming pid %d:\n%s", r.Code, m.agent.Cmd.Process.Pid, r.Stderr)
	}
	return "a second agent exits 2"
}

// pakFiles lists the pak files in the inbox and done/.
func (m *model) pakFiles() []string {
	return append(m.listPaks(m.inbox), m.doneFiles()...)
}

func (m *model) doneFiles() []string { return m.listPaks(filepath.Join(m.inbox, "done")) }

func (m *model) listPaks(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var paths []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".pak") {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(paths)
	return paths
}

func (m *model) rel(path string) string {
	r, _ := filepath.Rel(m.inbox, path)
	return r
}

// check waits until the invariants hold, failing the test after 30 s with
// the first one that did not.
func (m *model) check(step int) {
	m.t.Helper()
	var why string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if why = m.violation(); why == "" {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("after step %d: %s\nagent status: %+v", step, why, m.agent.Status().Agent)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// violation names the first invariant that does not hold now, or "".
func (m *model) violation() string {
	s := m.agent.ReadState()
	// Durable before visible: the agent moved no pak into done/ that the
	// saved state does not record. This holds even while the disk is full.
	for _, path := range m.doneFiles() {
		if !s.Knows(path) && !m.byHand[filepath.Base(path)] {
			return fmt.Sprintf("done/%s is not in the saved state", filepath.Base(path))
		}
	}
	if m.full {
		return ""
	}
	// The files are the truth: no entry without its file.
	for _, p := range s.Paks {
		if _, err := os.Stat(p.File); err != nil {
			return fmt.Sprintf("the state lists %s, which does not exist", p.File)
		}
	}
	if m.engineDown {
		return ""
	}
	// Nothing in the inbox is forgotten: every pak there is taken and moved.
	if left := m.listPaks(m.inbox); len(left) > 0 {
		return fmt.Sprintf("%d paks still in the inbox, first %s", len(left), filepath.Base(left[0]))
	}
	// Every pak in done/ is present, and its image is in the engine; no
	// image is kept that no pak names.
	named := map[string]bool{}
	for _, p := range s.Paks {
		if p.Status != "present" {
			return fmt.Sprintf("%s is %s, want present", p.Name, p.Status)
		}
		named[p.Reference] = true
	}
	for _, im := range s.Images {
		if !named[im.Reference] {
			return fmt.Sprintf("the state keeps %s, which no pak names", im.Reference)
		}
	}
	for ref := range named {
		if !m.refs[ref] {
			return fmt.Sprintf("a pak in done/ names %s, not a good image", ref)
		}
		if !m.f.Docker.HasImage(m.t, ref) {
			return fmt.Sprintf("%s is not in the engine", ref)
		}
	}
	// keep_images: never an image the agent did not pull.
	if !m.f.Docker.HasImage(m.t, m.found) {
		return fmt.Sprintf("%s, which the agent found present, left the engine", m.found)
	}
	st := m.agent.Status()
	for _, r := range st.Released {
		if r.Origin != "pulled" {
			return fmt.Sprintf("released %s has origin %q, want pulled", r.Reference, r.Origin)
		}
	}
	for _, r := range st.Removed {
		if r.Reference == m.found {
			return fmt.Sprintf("status lists %s, which the agent found present, as removed", m.found)
		}
	}
	return ""
}
