package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/retry"
	"github.com/prepull/prepull/internal/testenv/await"
)

// fakeEngine is an Engine in memory. Its images are present after a
// pull; pullErr and loginErr, when set, decide how calls fail.
type fakeEngine struct {
	mu        sync.Mutex
	images    map[string]bool
	pulls     map[string]int
	down      bool
	pullErr   func(ref string, attempt int) error
	loginErr  func(auth engine.Auth) error
	pullWait  chan struct{}          // when set, a pull blocks until it is closed or ctx ends
	stallOn   func(attempt int) bool // a pull attempt for which it returns true sends no progress and hangs until ctx ends
	logins    []engine.Auth
	pings     int            // Ping calls: the agent checks the engine at start and every rescan
	looks     map[string]int // RepoDigests calls by reference: each verify looks for the image
	active    int            // pulls running now
	maxActive int            // the most pulls that ran at once
	// containers marks images a container uses; removed lists what
	// RemoveReference removed (keep_test.go).
	containers map[string]bool
	removed    []string
	useErr     error // when set, ImageUse fails with it
	uses       int   // ImageUse calls: a prune pass asks before it removes
	// names are the tags of images, each naming a reference's image:
	// the local names the agent gives (keep_test.go) and others' tags.
	names map[string]string
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{images: map[string]bool{}, pulls: map[string]int{}, looks: map[string]int{}, names: map[string]string{}}
}

var errDown = fmt.Errorf("%w: dial unix /var/run/docker.sock: connect: connection refused", engine.ErrUnreachable)

func (e *fakeEngine) Ping(context.Context) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pings++
	if e.down {
		return "", errDown
	}
	return "1.41", nil
}

func (e *fakeEngine) Login(_ context.Context, auth engine.Auth) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down {
		return errDown
	}
	e.logins = append(e.logins, auth)
	if e.loginErr != nil {
		return e.loginErr(auth)
	}
	return nil
}

func (e *fakeEngine) Pull(ctx context.Context, ref string, _ *engine.Auth, progress func(engine.Progress)) error {
	e.mu.Lock()
	if e.down {
		e.mu.Unlock()
		return errDown
	}
	e.pulls[ref]++
	attempt := e.pulls[ref]
	wait := e.pullWait
	pullErr := e.pullErr
	stall := e.stallOn != nil && e.stallOn(attempt)
	e.active++
	e.maxActive = max(e.maxActive, e.active)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.active--
		e.mu.Unlock()
	}()
	if stall {
		<-ctx.Done()
		return fmt.Errorf("pull %s: %w", ref, ctx.Err())
	}
	if progress != nil {
		progress(engine.Progress{Layer: "l1", Status: "Downloading", Current: 1, Total: 2})
	}
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("pull %s: %w", ref, ctx.Err())
		}
	}
	if pullErr != nil {
		if err := pullErr(ref, attempt); err != nil {
			return err
		}
	}
	e.mu.Lock()
	e.images[ref] = true
	e.mu.Unlock()
	return nil
}

var linuxAMD64 = engine.Platform{OS: "linux", Architecture: "amd64"}

func (e *fakeEngine) Platform(context.Context) (engine.Platform, error) { return linuxAMD64, nil }

func (e *fakeEngine) Distribution(_ context.Context, ref string, _ *engine.Auth) (engine.Distribution, error) {
	return engine.Distribution{Platforms: []engine.Platform{linuxAMD64}}, nil
}

func (e *fakeEngine) ImagePlatform(ctx context.Context, ref string) (engine.Platform, error) {
	if _, err := e.RepoDigests(ctx, ref); err != nil {
		return engine.Platform{}, err
	}
	return linuxAMD64, nil
}

func (e *fakeEngine) RepoDigests(_ context.Context, ref string) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.looks[ref]++
	if e.down {
		return nil, errDown
	}
	if !e.images[ref] {
		return nil, fmt.Errorf("%s: %w", ref, engine.ErrNotPresent)
	}
	return []string{ref}, nil
}

func (e *fakeEngine) Remove(_ context.Context, ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.images, ref)
	return nil
}

func (e *fakeEngine) Close() error { return nil }

func (e *fakeEngine) pullCount(ref string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pulls[ref]
}

// count returns what f reads of e, under e's lock.
func (e *fakeEngine) count(f func(*fakeEngine) int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return f(e)
}

func (e *fakeEngine) totalPulls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.pulls {
		n += c
	}
	return n
}

func (e *fakeEngine) setDown(down bool) {
	e.mu.Lock()
	e.down = down
	e.mu.Unlock()
}

// harness runs an Agent on temporary folders with a fake engine.
type harness struct {
	t       *testing.T
	dir     string
	cfg     *config.Config
	cfgFile string
	eng     *fakeEngine
	logs    *observer.ObservedLogs
	agent   *Agent
	cancel  context.CancelFunc
	done    chan error
}

const registry = "harbor.example.com"

// newHarness makes folders and a configuration file; extra YAML is appended.
func newHarness(t *testing.T, extra string) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, eng: newFakeEngine()}
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(h.inbox(), 0o700); err != nil {
		t.Fatal(err)
	}
	h.cfgFile = filepath.Join(dir, "config.yaml")
	h.writeConfig(extra)
	return h
}

// writeConfig writes the configuration: short intervals, a login for
// registry from the password file, and extra YAML lines, which replace the
// lines for the same keys.
func (h *harness) writeConfig(extra string) {
	h.t.Helper()
	lines := []string{
		"watch_dir: " + h.inbox(),
		"state_dir: " + filepath.Join(h.dir, "state"),
		"docker_config: " + filepath.Join(h.dir, "docker"),
		"rescan_interval: 100ms",
		"settle: 20ms",
		"verify_interval: 1h",
		"stall_timeout: 5s",
		"pull_timeout: 1m",
	}
	for _, e := range strings.Split(strings.TrimSpace(extra), "\n") {
		key, _, ok := strings.Cut(e, ":")
		if !ok {
			continue
		}
		lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, key+":") })
		lines = append(lines, e)
	}
	body := strings.Join(lines, "\n") + fmt.Sprintf("\nregistries:\n  - host: %s\n    username: robot\n    password_file: %s\n", registry, filepath.Join(h.dir, "password"))
	if err := os.WriteFile(h.cfgFile, []byte(body), 0o600); err != nil {
		h.t.Fatal(err)
	}
	cfg, err := config.Load(h.cfgFile)
	if err != nil {
		h.t.Fatal(err)
	}
	h.cfg = cfg
}

func (h *harness) inbox() string { return filepath.Join(h.dir, "inbox") }

// start makes the agent and runs it until the test ends.
func (h *harness) start() {
	h.t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	h.logs = logs
	a, err := New(Options{ConfigFile: h.cfgFile, Config: h.cfg, Engine: h.eng, Log: zap.New(core)})
	if err != nil {
		h.t.Fatal(err)
	}
	fast := retry.Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	a.pullBackoff, a.retryBackoff = fast, fast
	a.slowBackoff = retry.Backoff{Base: time.Hour, Max: time.Hour}
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
	h.t.Cleanup(func() { h.stop() })
}

// stop stops the agent and waits for Run to return.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(await.Limit(h.t)):
		h.t.Fatal("Run did not return after cancel")
	}
}

// drop writes a pak naming repo (with digest sum of seed) into the inbox
// under name and returns its reference.
func (h *harness) drop(name, repo, seed string) string {
	h.t.Helper()
	p := paktest.Pak{Registry: registry, Repository: "/" + repo, Digest: paktest.DigestOf(seed)}
	h.writeFile(name, p.Bytes())
	return p.Reference("")
}

// writeFile writes a file into the inbox the way a careful copy does: under
// a dot-name, renamed when complete.
func (h *harness) writeFile(name string, data []byte) {
	h.t.Helper()
	tmp := filepath.Join(h.inbox(), "."+name+".part")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.inbox(), name)); err != nil {
		h.t.Fatal(err)
	}
}

// state reads the state file.
func (h *harness) state() *State {
	h.t.Helper()
	s, err := ReadState(filepath.Join(h.dir, "state"))
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// eventually waits for cond, up to the test's own deadline (await.Limit),
// failing with what.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	if !await.Until(h.t, 10*time.Millisecond, cond) {
		h.t.Fatalf("timed out waiting until %s\nstate: %+v\nlogs:\n%s", what, h.state(), h.logText())
	}
}

// rescans waits until the agent has rescanned n more times, seen by its
// engine checks (one a rescan): the positive event that shows it passed a
// point where something must not happen.
func (h *harness) rescans(n int) {
	h.t.Helper()
	from := h.eng.count(func(e *fakeEngine) int { return e.pings })
	h.eventually(fmt.Sprintf("%d more rescans", n), func() bool {
		return h.eng.count(func(e *fakeEngine) int { return e.pings }) >= from+n
	})
}

// looks waits until the agent has looked for ref's image n more times.
func (h *harness) looks(ref string, n int) {
	h.t.Helper()
	from := h.eng.count(func(e *fakeEngine) int { return e.looks[ref] })
	h.eventually(fmt.Sprintf("%d more looks for %s", n, ref), func() bool {
		return h.eng.count(func(e *fakeEngine) int { return e.looks[ref] }) >= from+n
	})
}

func (h *harness) logText() string {
	if h.logs == nil {
		return ""
	}
	var b strings.Builder
	for _, e := range h.logs.All() {
		fmt.Fprintf(&b, "%s %s %s", e.Time.Format("15:04:05.000"), e.Level, e.Message)
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// letGoPaks returns the pak field of each line that says an image was let
// go, in order: whichever path noticed the pak leave, the line is the same.
func (h *harness) letGoPaks() []string {
	var paks []string
	for _, e := range h.logs.FilterMessage(msgLetGo).All() {
		pak, _ := e.ContextMap()["pak"].(string)
		paks = append(paks, pak)
	}
	return paks
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// pakStatus returns the status of the pak dropped as name, or "".
func (h *harness) pakStatus(name string) string {
	for _, p := range h.state().Paks {
		if p.Name == name {
			return p.Status
		}
	}
	return ""
}

func zapNop() *zap.Logger { return zap.NewNop() }
