//go:build linux

package agent

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
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

// The model-based test drives a real agent with random sequences of what
// happens on a proxy, some of it while a pull is in flight, and compares
// the agent with a model of what it must do: each pak's folder, status and
// reason, and each image's presence. Each run takes the regression seeds
// and modelFreshSeeds new ones, each printed with the command that replays
// it:
//
//	PREPULL_MODEL_SEEDS=N PREPULL_E2E=1 go test -run 'TestAgentModel$' ./internal/e2e/agent
//
// PREPULL_MODEL_SEEDS takes a comma-separated list; PREPULL_MODEL_STEPS sets
// the number of steps per seed.

// modelRegressionSeeds run every time: a seed that once failed is added
// here, so that it stays a fixed case. 622238331 stopped the engine during
// a pull, which the engine's stream reported in words that were taken for
// a lasting failure, not an engine going away.
var modelRegressionSeeds = []uint64{20261130, 622238331}

const (
	modelFreshSeeds = 1  // new seeds per run, besides the regression seeds
	modelSteps      = 16 // steps per seed
	// modelRescans bounds every wait of the model in the agent's own
	// rescans (engine checks), not in wall time: the agent is idle or the
	// event came well within this many of its passes, on any machine (a
	// pull retried inside its call waits at most a minute, 120 passes).
	modelRescans = 240
)

// A source is what a pak file holds: which image it names, and what the
// agent must make of it.
type source struct {
	path string
	kind string // kindGood, kindInvalid or kindMissing
	ref  string // the image it names (good and missing)
}

const (
	kindGood    = "good"    // names an image the registry has: present, in done/
	kindInvalid = "invalid" // names no pullable image: invalid, in failed/
	kindMissing = "missing" // names a digest the registry lacks: failed (not-found), left in the inbox
)

// modelPak is one pak file the test made, by its name: what it holds, and
// whether the test itself put it in done/ (then the agent adopts it).
type modelPak struct {
	src    *source
	byHand bool
}

// model is the test's side: the real parts, and what the agent must do.
type model struct {
	t      *testing.T
	f      *e2e.Fixture
	proxy  *testenv.FaultProxy
	rng    *rand.Rand
	config string
	inbox  string
	disk   string // state_dir, a small tmpfs
	agent  *e2e.AgentProc

	good    []*source
	fresh   []*source // good sources whose image no pak named yet: a drop pulls
	invalid *source
	missing *source
	found   string // an image present before the agent ran: keep_images never removes it
	paks    map[string]*modelPak
	n       int // names made so far

	full       bool   // the state disk is full
	free       func() // frees it
	engineDown bool
	checks     int // observations made
}

// modelSeeds returns the seeds to run: PREPULL_MODEL_SEEDS, or the
// regression seeds and modelFreshSeeds new ones.
func modelSeeds(t *testing.T) []uint64 {
	if v := os.Getenv("PREPULL_MODEL_SEEDS"); v != "" {
		var seeds []uint64
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil {
				t.Fatalf("PREPULL_MODEL_SEEDS=%q: %v", v, err)
			}
			seeds = append(seeds, n)
		}
		return seeds
	}
	seeds := slices.Clone(modelRegressionSeeds)
	var b [8]byte
	for range modelFreshSeeds {
		if _, err := crand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, binary.BigEndian.Uint64(b[:])%1e9)
	}
	return seeds
}

func modelStepCount(t *testing.T) int {
	v := os.Getenv("PREPULL_MODEL_STEPS")
	if v == "" {
		return modelSteps
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("PREPULL_MODEL_STEPS=%q: want a positive number", v)
	}
	return n
}

// TestAgentModel: for each seed, a real agent (keep_images: 1, state_dir
// on a small tmpfs, pulls through a FaultProxy) goes through drops of good,
// invalid and unpullable paks, copies, renames and deletes in done/, kill
// -9, a full state disk, the engine stopped and started, and a second
// agent, some of them while a pull is held in flight by the proxy. Every
// observation checks the invariants (no pak lost, none in done/ or failed/
// before the saved state records it, no pak in a folder its content does
// not allow, no image gone that a pak in done/ names); once the agent is
// idle after a step without a fault, the files, prepull status --json and
// the engine must be exactly what the model predicts.
func TestAgentModel(t *testing.T) {
	steps := modelStepCount(t)
	for _, seed := range modelSeeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			replay := fmt.Sprintf("PREPULL_MODEL_SEEDS=%d PREPULL_E2E=1 go test -run 'TestAgentModel$' ./internal/e2e/agent", seed)
			fmt.Printf("TestAgentModel seed %d, %d steps: replay with %s\n", seed, steps, replay)
			defer func() {
				if t.Failed() {
					fmt.Printf("TestAgentModel failed with seed %d: replay with %s\n", seed, replay)
				}
			}()
			runModel(t, seed, steps)
		})
	}
}

// runModel runs one seed.
func runModel(t *testing.T, seed uint64, steps int) {
	m := newModel(t, seed)
	type op struct {
		weight int
		name   string
		do     func() string
	}
	ops := []op{
		{4, "drop", m.drop},
		{4, "in flight", m.duringPull},
		{1, "drop invalid", func() string { return m.dropSource(m.invalid) }},
		{1, "drop unpullable", func() string { return m.dropSource(m.missing) }},
		{2, "copy", m.copyUnderAnotherName},
		{2, "rename", m.rename},
		{2, "delete", m.deleteFromDone},
		{1, "kill", m.killAndRestart},
		{1, "disk", m.toggleDisk},
		{1, "engine", m.toggleEngine},
		{1, "second", m.secondAgent},
	}
	// Every seed starts with one pak of each kind, so that each rule of the
	// model is exercised whatever follows.
	t.Logf("step 0: %s; %s; %s", m.drop(), m.dropSource(m.invalid), m.dropSource(m.missing))
	m.settle(0)
	for step := 1; step <= steps; step++ {
		// A full disk or a stopped engine is undone three times as often
		// as it is done, so that most steps end where the exact state holds.
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
		m.settle(step)
	}
	if m.full {
		t.Logf("end: %s", m.toggleDisk())
	}
	if m.engineDown {
		t.Logf("end: %s", m.toggleEngine())
	}
	m.settle(steps + 1)
	st := m.agent.Status()
	t.Logf("end: %d observations; keep_images released %d images and removed %d", m.checks, len(st.Released), len(st.Removed))
}

// newModel starts the parts: a registry behind a FaultProxy with five good
// images over three repositories, one image pulled before the agent runs,
// and an agent.
func newModel(t *testing.T, seed uint64) *model {
	f := e2e.NewFixture(t, "proj/model-a")
	if fault := os.Getenv("PREPULL_FAULT"); fault != "" {
		f.Env = append(f.Env, "PREPULL_FAULT="+fault) // TestAgentModelCatchesFaults
	}
	proxy := testenv.StartFaultProxy(t, f.Reg.Addr)
	m := &model{t: t, f: f, proxy: proxy, rng: rand.New(rand.NewPCG(seed, 0)), paks: map[string]*modelPak{}}
	small := testenv.ImageOptions{Size: 8 << 10}
	images := []struct{ repo, digest string }{{"proj/model-a", f.Digest}}
	for _, repo := range []string{"proj/model-a", "proj/model-b", "proj/model-b", "proj/model-c"} {
		images = append(images, struct{ repo, digest string }{repo, f.Docker.PushImage(t, f.Reg, repo, small)})
	}
	for i, im := range images {
		dir := filepath.Join(f.Dir, "model", strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		s := &source{kind: kindGood, ref: proxy.Addr + "/" + im.repo + "@" + im.digest}
		s.path = paktest.Pak{Kind: "Model", Version: "1.0." + strconv.Itoa(i), Registry: proxy.Addr, Repository: "/" + im.repo, Digest: im.digest}.WriteFile(t, dir)
		m.good = append(m.good, s)
	}
	m.fresh = slices.Clone(m.good)
	foundDigest := f.Docker.PushImage(t, f.Reg, "proj/model-a", small)
	m.found = proxy.Addr + "/proj/model-a@" + foundDigest
	foundPak := paktest.Pak{Kind: "Found", Registry: proxy.Addr, Repository: "/proj/model-a", Digest: foundDigest}.WriteFile(t, t.TempDir())
	f.Prepull(nil, "--config", f.WriteConfig(f.LoginFor(proxy.Addr)), foundPak).Want(t, 0)

	absent := "sha256:" + strings.Repeat("0", 63) + "1"
	m.missing = &source{kind: kindMissing, ref: proxy.Addr + "/proj/model-a@" + absent,
		path: paktest.Pak{Kind: "Missing", Registry: proxy.Addr, Repository: "/proj/model-a", Digest: absent}.WriteFile(t, t.TempDir())}
	m.invalid = &source{kind: kindInvalid,
		path: paktest.Pak{Kind: "Invalid", Registry: proxy.Addr, Repository: "/proj/model-a", Digest: "sha256:not-a-digest"}.WriteFile(t, t.TempDir())}

	m.disk = testenv.Tmpfs(t, 64<<10)
	t.Cleanup(func() { testenv.Docker(t) }) // started again if a step stopped it
	m.config, m.inbox, _ = f.AgentConfig(f.LoginFor(proxy.Addr) + "state_dir: " + m.disk + "\nrescan_interval: 500ms\nsettle: 100ms\nverify_interval: 1h\nkeep_images: 1\n")
	m.agent = f.StartAgent(m.config, m.inbox, m.disk)
	m.agent.WaitStarted()
	return m
}

func (m *model) name() string {
	m.n++
	return fmt.Sprintf("m%02d.pak", m.n)
}

// dropSource drops a pak of s under a new name.
func (m *model) dropSource(s *source) string {
	_, what := m.dropAs(s)
	return what
}

// dropAs drops a pak of s under a new name, and returns the name and what
// it did.
func (m *model) dropAs(s *source) (name, what string) {
	name = m.name()
	m.agent.Drop(s.path, name)
	m.paks[name] = &modelPak{src: s}
	m.fresh = slices.DeleteFunc(m.fresh, func(f *source) bool { return f.ref == s.ref })
	return name, fmt.Sprintf("%s (%s) as %s", filepath.Base(s.path), s.kind, name)
}

func (m *model) drop() string { return m.dropSource(m.good[m.rng.IntN(len(m.good))]) }

// duringPull drops a pak whose image no pak named yet while the proxy holds
// every blob download, waits until the agent's download is held (the
// proxy's event), does one thing to the pak or the agent, and lets the
// download go on.
func (m *model) duringPull() string {
	switch {
	case len(m.fresh) == 0:
		return "no image left that was never pulled: " + m.drop()
	case m.engineDown:
		return "no pull while the engine is stopped: " + m.drop()
	}
	src := m.fresh[m.rng.IntN(len(m.fresh))]
	m.proxy.StallBlobs(testenv.Stall{After: testenv.BeforeHeaders})
	defer m.proxy.Release()
	name, what := m.dropAs(src)
	m.await("the agent's blob download is held by the proxy", func() bool { return m.proxy.Stalls().Waiting > 0 })
	path := filepath.Join(m.inbox, name)
	switch m.rng.IntN(7) {
	case 0:
		next := m.good[m.rng.IntN(len(m.good))]
		if m.rng.IntN(3) == 0 {
			next = m.invalid
		}
		m.agent.Drop(next.path, name)
		m.paks[name].src = next
		return what + ", overwritten during its pull with " + filepath.Base(next.path) + " (" + next.kind + ")"
	case 1:
		if err := os.Remove(path); err != nil {
			m.t.Fatal(err)
		}
		delete(m.paks, name)
		return what + ", deleted during its pull"
	case 2:
		to := m.name()
		if err := os.Rename(path, filepath.Join(m.inbox, to)); err != nil {
			m.t.Fatal(err)
		}
		m.paks[to] = m.paks[name]
		delete(m.paks, name)
		return what + ", renamed " + to + " during its pull"
	case 3:
		return what + "; during its pull: " + m.killAndRestart()
	case 4:
		return what + "; during its pull: " + m.toggleEngine()
	case 5:
		return what + "; during its pull: " + m.toggleDisk()
	default:
		return what + "; during its pull: " + m.copyUnderAnotherName()
	}
}

// copyUnderAnotherName copies a pak file of the inbox or done/ into the
// inbox under a new name.
func (m *model) copyUnderAnotherName() string {
	files := append(m.listPaks(m.inbox), m.listPaks(filepath.Join(m.inbox, "done"))...)
	files = slices.DeleteFunc(files, func(p string) bool { return m.paks[filepath.Base(p)] == nil })
	if len(files) == 0 {
		return m.drop()
	}
	src := files[m.rng.IntN(len(files))]
	name := m.name()
	m.agent.Drop(src, name)
	m.paks[name] = &modelPak{src: m.paks[filepath.Base(src)].src}
	return fmt.Sprintf("%s copied as %s", m.rel(src), name)
}

// rename renames a pak in done/: the agent adopts the new name.
func (m *model) rename() string {
	files := m.listPaks(filepath.Join(m.inbox, "done"))
	if len(files) == 0 {
		return "nothing in done/ to rename"
	}
	src := files[m.rng.IntN(len(files))]
	to := m.name()
	if err := os.Rename(src, filepath.Join(m.inbox, "done", to)); err != nil {
		m.t.Fatal(err)
	}
	m.paks[to] = &modelPak{src: m.paks[filepath.Base(src)].src, byHand: true}
	delete(m.paks, filepath.Base(src))
	return fmt.Sprintf("done/%s renamed done/%s", filepath.Base(src), to)
}

func (m *model) deleteFromDone() string {
	files := m.listPaks(filepath.Join(m.inbox, "done"))
	if len(files) == 0 {
		return "nothing in done/ to delete"
	}
	victim := files[m.rng.IntN(len(files))]
	if err := os.Remove(victim); err != nil {
		m.t.Fatal(err)
	}
	delete(m.paks, filepath.Base(victim))
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

// rescans reads when the agent last checked the engine, from the live
// status in its lock file: it does at every rescan.
func (m *model) rescans() time.Time {
	data, err := os.ReadFile(filepath.Join(m.disk, "agent.lock"))
	if err != nil {
		return time.Time{}
	}
	var live struct {
		EngineAt time.Time `json:"engine_checked"`
	}
	_ = json.Unmarshal(data, &live)
	return live.EngineAt
}

// await observes the agent until cond holds, checking the invariants at
// every observation; it fails the test when the agent made modelRescans
// passes meanwhile without cond holding.
func (m *model) await(what string, cond func() bool) {
	m.t.Helper()
	seen, passes := m.rescans(), 0
	for {
		m.observe()
		if cond() {
			return
		}
		if at := m.rescans(); !at.Equal(seen) {
			seen = at
			passes++
		}
		if passes > modelRescans {
			m.t.Fatalf("model: the agent made %d passes and still not: %s", modelRescans, what)
		}
		time.Sleep(20 * time.Millisecond) // pacing between observations, not a wait for an outcome
	}
}

// settle ends a step: with no fault on, it waits until the agent is idle
// and compares what it sees with the model's exact prediction; with a fault
// on, it observes once.
func (m *model) settle(step int) {
	m.t.Helper()
	if m.full || m.engineDown {
		m.observe()
		return
	}
	var diff string
	m.await(fmt.Sprintf("idle after step %d", step), func() bool {
		if !m.idle() {
			return false
		}
		diff = m.compare()
		return true
	})
	if diff != "" {
		m.t.Fatalf("model: after step %d the agent is idle and %s\nstatus: %+v", step, diff, m.agent.Status().Agent)
	}
}

// folderOf names the folder of a path under the inbox: "", "done" or
// "failed".
func (m *model) folderOf(path string) string {
	if d := filepath.Base(filepath.Dir(path)); d == "done" || d == "failed" {
		return d
	}
	return ""
}

// observe checks the invariants that hold at every moment, whatever is in
// flight: no pak the model knows is lost and no pak appears that it does
// not; a pak is only in a folder its content allows; every pak in done/
// or failed/ that the agent put there is in the saved state (read after
// the folders, so that a move seen is a move whose state was saved before);
// the state lists only invalid paks in failed/; and, while the engine runs,
// every image a pak in done/ names, and the one the agent found present,
// are in the engine.
func (m *model) observe() {
	m.t.Helper()
	m.checks++
	where := map[string][]string{}
	// The inbox first: a pak the agent moves meanwhile is then seen in
	// done/ or failed/, never in no folder.
	for _, dir := range []string{m.inbox, filepath.Join(m.inbox, "done"), filepath.Join(m.inbox, "failed")} {
		for _, p := range m.listPaks(dir) {
			where[filepath.Base(p)] = append(where[filepath.Base(p)], p)
		}
	}
	s := m.agent.ReadState()
	byFile := map[string]string{}
	for _, p := range s.Paks {
		byFile[p.File] = p.Status
		if m.folderOf(p.File) == "failed" && p.Status != "invalid" {
			m.t.Fatalf("model: the state lists failed/%s as %s, want invalid", p.Name, p.Status)
		}
	}
	for name, mp := range m.paks {
		if len(where[name]) == 0 {
			m.t.Fatalf("model: %s (%s) is lost: in neither the inbox, done/ nor failed/", name, mp.src.kind)
		}
	}
	refs := map[string]bool{m.found: true}
	for name, paths := range where {
		mp := m.paks[name]
		if mp == nil {
			m.t.Fatalf("model: %s appeared, a pak the test never made (%v)", name, paths)
		}
		for _, p := range paths {
			folder := m.folderOf(p)
			allowed := map[string][]string{kindGood: {"", "done"}, kindInvalid: {"", "failed"}, kindMissing: {""}}[mp.src.kind]
			if !slices.Contains(allowed, folder) {
				m.t.Fatalf("model: %s holds a %s pak, filed in %s/", m.rel(p), mp.src.kind, folder)
			}
			if folder != "" && !mp.byHand {
				if _, ok := byFile[p]; !ok {
					m.t.Fatalf("model: %s is visible before the saved state records it", m.rel(p))
				}
			}
			if folder == "done" {
				refs[mp.src.ref] = true
			}
		}
	}
	if m.engineDown {
		return
	}
	for ref := range refs {
		if !m.f.Docker.HasImage(m.t, ref) {
			m.t.Fatalf("model: %s is not in the engine, though a pak in done/ names it (or the agent found it present)", ref)
		}
	}
}

// idle reports whether the agent is done with every pak the model knows:
// each is in the saved state, none waits or is pulled, and none that is
// finished with is left in the inbox.
func (m *model) idle() bool {
	s := m.agent.ReadState()
	byName := map[string]string{}
	for _, p := range s.Paks {
		if p.Status == "waiting" || p.Status == "pulling" {
			return false
		}
		if m.folderOf(p.File) == "" && (p.Status == "present" || p.Status == "invalid") {
			return false
		}
		byName[p.Name] = p.Status
	}
	for name := range m.paks {
		if _, ok := byName[name]; !ok {
			return false
		}
	}
	return len(s.Paks) == len(m.paks)
}

// compare returns how the agent, idle, differs from the model's exact
// prediction, or "": each pak in the folder its content says, listed by
// prepull status --json with its status, reference and reason; nothing
// else listed; every image a pak names present, the unpullable one absent.
func (m *model) compare() string {
	st := m.agent.Status()
	listed := map[string]bool{}
	for _, p := range st.Paks {
		listed[p.File] = true
		mp := m.paks[p.Name]
		if mp == nil {
			return fmt.Sprintf("status lists %s, which the test deleted or renamed", m.rel(p.File))
		}
		want := map[string]struct{ folder, status, kind string }{
			kindGood:    {"done", "present", ""},
			kindInvalid: {"failed", "invalid", ""},
			kindMissing: {"", "failed", "not-found"},
		}[mp.src.kind]
		switch {
		case m.folderOf(p.File) != want.folder:
			return fmt.Sprintf("status lists %s (%s) in %q, want %q", m.rel(p.File), mp.src.kind, m.folderOf(p.File), want.folder)
		case p.Status != want.status:
			return fmt.Sprintf("status lists %s (%s) as %s, want %s (%s)", m.rel(p.File), mp.src.kind, p.Status, want.status, p.LastError)
		case p.Reference != mp.src.ref:
			return fmt.Sprintf("status lists %s naming %q, want %q", m.rel(p.File), p.Reference, mp.src.ref)
		case p.ErrorKind != want.kind:
			return fmt.Sprintf("status lists %s with error_kind %q, want %q (%s)", m.rel(p.File), p.ErrorKind, want.kind, p.LastError)
		case (p.LastError == "") != (mp.src.kind == kindGood):
			return fmt.Sprintf("status lists %s (%s) with last_error %q", m.rel(p.File), mp.src.kind, p.LastError)
		}
		if _, err := os.Stat(p.File); err != nil {
			return fmt.Sprintf("status lists %s, which is not there: %v", m.rel(p.File), err)
		}
	}
	for name, mp := range m.paks {
		if !m.lists(st, name) {
			return fmt.Sprintf("status does not list %s (%s)", name, mp.src.kind)
		}
		if mp.src.kind == kindGood && !m.f.Docker.HasImage(m.t, mp.src.ref) {
			return fmt.Sprintf("%s is not in the engine, though %s names it", mp.src.ref, name)
		}
	}
	if m.f.Docker.HasImage(m.t, m.missing.ref) {
		return fmt.Sprintf("%s, which the registry lacks, is in the engine", m.missing.ref)
	}
	for _, r := range st.Released {
		if r.Origin != "pulled" {
			return fmt.Sprintf("status lists %s as released with origin %q, want pulled", r.Reference, r.Origin)
		}
	}
	return ""
}

// lists reports whether the status lists a pak named name.
func (m *model) lists(st e2e.StatusReport, name string) bool {
	for _, p := range st.Paks {
		if p.Name == name {
			return true
		}
	}
	return false
}

// TestAgentModelCatchesFaults shows that the model test can fail: against
// a prepull built with -tags prepull_faults, each fault of agent/fault.go
// on its own makes TestAgentModel fail on a model check, in a test binary
// of its own (this one, run again).
func TestAgentModelCatchesFaults(t *testing.T) {
	testenv.Require(t)
	for _, fault := range []string{"move-before-save", "invalid-to-done", "lose-pak"} {
		t.Run(fault, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestAgentModel$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "PREPULL_FAULT="+fault, "PREPULL_TEST_TAGS=prepull_faults",
				"PREPULL_MODEL_SEEDS="+strconv.FormatUint(modelRegressionSeeds[0], 10), "PREPULL_MODEL_STEPS=8")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("TestAgentModel passed with fault %s on:\n%s", fault, out)
			}
			if !strings.Contains(string(out), "model: ") {
				t.Fatalf("TestAgentModel failed with fault %s on, but on no model check:\n%s", fault, out)
			}
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "model: ") {
					t.Logf("caught: %s", strings.TrimSpace(line))
					break
				}
			}
		})
	}
}
