// Package agent is prepull's Cloud Proxy service: it watches a drop folder
// for management packs, makes sure the image each one names is present in
// the Docker Engine, and keeps it present.
//
// A pak copied into watch_dir is taken once it stopped changing, read with
// the one pak reader, and its image is ensured with the one pull path
// (internal/pull), the same image once however many paks name it. A pak
// whose image is present moves to watch_dir/done/; one that names no
// pullable image moves to watch_dir/failed/ with NAME.pak.error beside it.
// Everything the agent knows is in state_dir/state.json, written atomically
// before any file moves, so that it survives kill -9 at any moment; the
// files are the truth about which paks exist, and the state is reconciled
// with them on start and on every rescan. One agent runs per state_dir: it
// holds state_dir/agent.lock, where it also keeps its live status.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/retry"
)

// shutdownWait bounds how long a stop waits for pulls to end after they
// were cancelled, so that the agent exits well within the unit's
// TimeoutStopSec (15 s in systemd/prepull.service).
const shutdownWait = 5 * time.Second

// saveEvery is how soon a change that no file move depends on reaches the
// state file. Changes that a move depends on are written at once.
const saveEvery = 200 * time.Millisecond

// saveRetry is how soon a failed save of the state file is tried again.
const saveRetry = time.Second

// engineCheckTimeout bounds one ping of the Docker Engine.
const engineCheckTimeout = 5 * time.Second

// Options configure an Agent.
type Options struct {
	// ConfigFile is the file a reload reads again; empty means what
	// config.Load picks ($PREPULL_CONFIG, then the default file).
	ConfigFile string
	// Config is the configuration loaded at start.
	Config *config.Config
	// Engine is the Docker Engine to keep images in. With keep_images set
	// it must also be an ImageRemover.
	Engine Engine
	// Log receives one line per event. It never receives a secret.
	Log *zap.Logger
	// Version is the agent's version, for prepull_build_info in
	// metrics_file; empty means "dev".
	Version string
}

// Engine is what the agent asks of the Docker Engine: what a pull needs,
// and a ping to tell whether the engine answers (engine.Docker provides
// it).
type Engine interface {
	pull.Engine
	Ping(ctx context.Context) (apiVersion string, err error)
}

// Agent is the service. Make one with New and start it with Run.
type Agent struct {
	eng       Engine
	log       *zap.Logger
	cfgFile   string
	watchDir  string
	doneDir   string
	failedDir string
	stateDir  string
	confDirs  []string // absolute; read, never written

	// pullBackoff spaces the tries inside one Ensure call (transient
	// errors, stalls, an engine that does not answer); retryBackoff spaces
	// Ensure calls after one gave up on a transient error; slowBackoff
	// spaces them after a failure that waiting will not fix by itself,
	// such as rejected credentials.
	pullBackoff, retryBackoff, slowBackoff retry.Backoff

	reloadCh chan struct{}
	wakeCh   chan struct{}
	saveCh   chan struct{} // the state or the status line changed
	workers  sync.WaitGroup
	notify   *notifier
	metrics  *metrics // written to metrics_file, when set

	mu         sync.Mutex
	cfg        *config.Config
	creds      *credentials.Resolver
	paks       map[string]*PakState   // by the path of the pak's file
	images     map[string]*image      // by reference
	released   map[string]*ImageState // by reference: see keep.go
	removed    []Removal
	remover    ImageRemover // nil when the engine cannot remove images
	pruneCh    chan struct{}
	inflight   int
	engineDown bool
	dirty      bool
	stopping   bool

	lock  *stateLock
	since time.Time // when the agent took the lock
	// saveErr says why the state cannot be saved; empty when it can.
	// While it is set, no pak moves.
	saveErr string
	// recovered says saving works again after saveErr: the main loop then
	// moves what waited.
	recovered bool
	// unsafe says, by folder, why watch_dir or a folder of conf_dirs is
	// unsafe now; a safe folder has no entry.
	unsafe    map[string]string
	lastSaved time.Time
	engineAt  time.Time // when the engine was last heard from, or not
	engineErr string    // why it did not answer, at engineAt
	// statusStale says the status line may have changed since it was last
	// sent: a save was attempted (every change of a pak or image status is
	// saved) or the engine went down or came back. An idle agent then does
	// not rebuild the line, a walk over every pak, five times a second.
	statusStale bool
}

// New checks that the folders are safe, reads the state and returns an
// agent ready to Run. An unsafe watch_dir or state_dir is refused with an
// error that wraps config.ErrInvalid.
func New(o Options) (*Agent, error) {
	cfg := *o.Config
	watchDir, err := filepath.Abs(cfg.WatchDir)
	if err != nil {
		return nil, fmt.Errorf("watch_dir: %w", err)
	}
	stateDir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	cfg.WatchDir, cfg.StateDir = watchDir, stateDir
	cfg.ConfDirs = absAll(cfg.ConfDirs)
	stateRoot, err := openPrivate("state_dir", stateDir)
	if err != nil {
		return nil, err
	}
	// Until the lock holds it, state_dir is New's to close.
	held := false
	defer func() {
		if !held {
			stateRoot.Close()
		}
	}()
	// The watchers open watch_dir themselves, checked again, and hold it.
	watchRoot, err := openPrivate("watch_dir", watchDir)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{DoneDir, FailedDir} {
		r, _, err := openSub(watchRoot, sub)
		if err != nil {
			watchRoot.Close()
			return nil, fmt.Errorf("make %s: %w", filepath.Join(watchDir, sub), err)
		}
		r.Close()
	}
	watchRoot.Close()
	for _, dir := range cfg.ConfDirs {
		if err := checkConfDir(dir, watchDir); err != nil {
			return nil, err
		}
	}
	a := &Agent{
		eng:          o.Engine,
		log:          o.Log,
		cfgFile:      o.ConfigFile,
		watchDir:     watchDir,
		doneDir:      filepath.Join(watchDir, DoneDir),
		failedDir:    filepath.Join(watchDir, FailedDir),
		stateDir:     stateDir,
		confDirs:     cfg.ConfDirs,
		unsafe:       map[string]string{},
		pullBackoff:  retry.Backoff{Base: time.Second, Max: time.Minute},
		retryBackoff: retry.Backoff{Base: 10 * time.Second, Max: 5 * time.Minute},
		slowBackoff:  retry.Backoff{Base: time.Minute, Max: 5 * time.Minute},
		reloadCh:     make(chan struct{}, 1),
		wakeCh:       make(chan struct{}, 1),
		saveCh:       make(chan struct{}, 1),
		notify:       newNotifier(o.Log),
		cfg:          &cfg,
		creds:        credentials.NewResolver(&cfg, nil),
		paks:         map[string]*PakState{},
		images:       map[string]*image{},
		released:     map[string]*ImageState{},
		pruneCh:      make(chan struct{}, 1),
		metrics:      newMetrics(cmp.Or(o.Version, "dev")),
	}
	a.remover, _ = o.Engine.(ImageRemover)
	if cfg.KeepImages > 0 && a.remover == nil {
		return nil, fmt.Errorf("keep_images: %w: this engine cannot remove images", config.ErrInvalid)
	}
	if a.lock, err = lockStateDir(stateRoot); err != nil {
		return nil, err
	}
	held = true
	a.since = time.Now().UTC()
	removeStaleTemps(stateRoot)
	s, err := readState(stateRoot)
	if err != nil {
		a.lock.close()
		return nil, fmt.Errorf("%w (move it aside to start afresh)", err)
	}
	a.restore(s)
	a.writeLive()
	return a, nil
}

// Reload asks the running agent to read its configuration again, as SIGHUP
// does. It returns at once.
func (a *Agent) Reload() {
	select {
	case a.reloadCh <- struct{}{}:
	default:
	}
}

// Run watches and pulls until ctx ends, then cancels the pulls, saves the
// state and returns nil. It tells systemd where it is when run as a
// Type=notify service.
func (a *Agent) Run(ctx context.Context) error {
	workCtx, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	watchCtx, cancelWatch := context.WithCancel(context.Background())
	defer cancelWatch()

	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()
	defer a.lock.close()
	a.reconcile()
	watchers, watchDone := a.startWatchers(watchCtx, timing{settle: cfg.Settle, rescan: cfg.RescanInterval})
	go a.dispatch(workCtx)
	go a.checkEngine(workCtx)
	a.workers.Add(1)
	go a.pruner(workCtx)

	a.log.Info("agent started", zap.String("watch_dir", a.watchDir), zap.String("state_dir", a.stateDir),
		zap.Int("concurrency", cfg.Concurrency), zap.Duration("verify_interval", cfg.VerifyInterval))
	a.notify.ready(a.statusLine())
	a.mu.Lock()
	a.writeMetrics()
	a.mu.Unlock()

	tm := a.newTimers(cfg)
	defer tm.stop()
	for {
		select {
		case <-ctx.Done():
			a.shutdown(cancelWatch, watchDone, cancelWork)
			return nil
		case <-a.reloadCh:
			if cfg, ok := a.reload(watchers); ok {
				tm.verify.Reset(cfg.VerifyInterval)
				tm.rescan.Reset(cfg.RescanInterval)
			}
		case <-tm.verify.C:
			a.scheduleVerify()
			// At least once a verify_interval, changed or not: the
			// file's age tells monitoring the agent is alive.
			a.mu.Lock()
			a.writeMetrics()
			a.mu.Unlock()
		case <-tm.rescan.C:
			a.reconcile()
			go a.checkEngine(workCtx)
			a.wantPrune()
		case <-a.saveCh:
			if tm.saveDue == nil {
				tm.saveIn(saveEvery)
			}
		case <-tm.saveDue:
			tm.saveDue = nil
			if !a.saveDue() {
				tm.saveIn(saveRetry)
			}
		case <-tm.watchdog:
			a.notify.watchdog()
		}
	}
}

// startWatchers starts watching watch_dir and every conf_dirs folder until
// ctx ends, and returns once each watch runs: the watchers, and a channel
// closed when they all stopped.
func (a *Agent) startWatchers(ctx context.Context, t timing) ([]*watcher, <-chan struct{}) {
	watchers := []*watcher{newWatcher(a.watchDir, t, a.log, a.offer)}
	// A conf in conf_dirs is taken as a pak in done/ is: its image is kept
	// present while the file names it; it never moves.
	for _, dir := range a.confDirs {
		cw := newWatcher(dir, t, a.log, a.offer)
		cw.what, cw.eligible = "conf_dirs", eligibleConf
		watchers = append(watchers, cw)
	}
	var watching sync.WaitGroup
	for _, w := range watchers {
		dir, what := w.dir, w.what
		w.open = func() (*os.Root, error) { return openSafe(what, dir) }
		w.onSafety = func(err error) { a.setUnsafe(what, dir, err) }
		ready := make(chan struct{})
		watching.Add(1)
		go func() {
			defer watching.Done()
			w.run(ctx, ready)
		}()
		<-ready
	}
	done := make(chan struct{})
	go func() {
		watching.Wait()
		close(done)
	}()
	return watchers, done
}

// timers are what Run's loop wakes for besides its channels.
type timers struct {
	// verify checks every image; at every rescan the state is reconciled
	// with the files and the engine is checked.
	verify, rescan *time.Ticker
	// save runs only after a change, saveDue its channel then: an idle
	// agent wakes for nothing but its intervals.
	save     *time.Timer
	saveDue  <-chan time.Time
	watchdog <-chan time.Time // nil without systemd's watchdog
	stopDog  func()
}

func (a *Agent) newTimers(cfg *config.Config) *timers {
	tm := &timers{
		verify:  time.NewTicker(cfg.VerifyInterval),
		rescan:  time.NewTicker(cfg.RescanInterval),
		save:    time.NewTimer(saveEvery),
		stopDog: func() {},
	}
	tm.save.Stop()
	if every := a.notify.watchdogEvery(); every > 0 {
		dog := time.NewTicker(every)
		tm.watchdog, tm.stopDog = dog.C, dog.Stop
	}
	return tm
}

// saveIn makes the state be saved after d.
func (tm *timers) saveIn(d time.Duration) {
	tm.save.Reset(d)
	tm.saveDue = tm.save.C
}

func (tm *timers) stop() {
	tm.verify.Stop()
	tm.rescan.Stop()
	tm.save.Stop()
	tm.stopDog()
}

// saveDue saves the state if it changed, moves the paks that waited for a
// save that works again, and tells systemd and the metrics file a status
// that went stale. It
// returns false when the save failed (and was logged): to be tried again
// soon.
func (a *Agent) saveDue() bool {
	a.mu.Lock()
	a.saveIfDirty()
	stale := a.statusStale
	a.statusStale = false
	// Every change signals with a.mu held, so what is pending now was
	// handled by this save.
	select {
	case <-a.saveCh:
	default:
	}
	if a.recovered {
		a.recovered = false
		a.moveReady()
	}
	saved := !a.dirty
	if stale {
		a.writeMetrics()
	}
	a.mu.Unlock()
	if stale {
		a.notify.status(a.statusLine())
	}
	return saved
}

// shutdown stops taking work, cancels the pulls, waits a little for them to
// end and saves the state.
func (a *Agent) shutdown(cancelWatch context.CancelFunc, watchDone <-chan struct{}, cancelWork context.CancelFunc) {
	start := time.Now()
	a.notify.stopping()
	a.log.Info("stopping: no new work, cancelling pulls")
	a.mu.Lock()
	a.stopping = true
	a.mu.Unlock()
	cancelWatch()
	cancelWork()
	done := make(chan struct{})
	go func() {
		a.workers.Wait()
		<-watchDone
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(shutdownWait):
		a.log.Warn("pulls did not end in time, saving the state anyway", zap.Duration("waited", shutdownWait))
	}
	a.mu.Lock()
	for _, im := range a.images {
		if im.Status == StatusPulling {
			a.setStatus(im, StatusWaiting, time.Now().UTC())
		}
	}
	a.dirty = true
	a.saveIfDirty()
	a.writeMetrics()
	a.mu.Unlock()
	a.log.Info("stopped", zap.Duration("duration", time.Since(start)))
}

// reload reads the configuration again. Credentials, intervals, timeouts,
// concurrency and default_registry take effect at once; folders, the Docker
// host and the log format need a restart. Images that failed are tried
// again at once, so that a fixed password file works right after SIGHUP.
func (a *Agent) reload(watchers []*watcher) (*config.Config, bool) {
	a.notify.reloading()
	defer func() { a.notify.ready(a.statusLine()) }()
	cfg, err := config.Load(a.cfgFile)
	if err != nil {
		a.log.Error("reload failed, keeping the running configuration", zap.Error(err))
		return nil, false
	}
	a.mu.Lock()
	old := a.cfg
	var needRestart []string
	for _, k := range []struct{ key, was, now string }{
		{"watch_dir", old.WatchDir, absOr(cfg.WatchDir)},
		{"state_dir", old.StateDir, absOr(cfg.StateDir)},
		{"docker_host", old.DockerHost, cfg.DockerHost},
		{"log_format", old.LogFormat, cfg.LogFormat},
		{"conf_dirs", strings.Join(old.ConfDirs, ", "), strings.Join(absAll(cfg.ConfDirs), ", ")},
	} {
		if k.was != k.now {
			a.log.Warn("this setting changes only on restart", zap.String("key", k.key), zap.String("running", k.was), zap.String("configured", k.now))
			needRestart = append(needRestart, k.key)
		}
	}
	cfg.WatchDir, cfg.StateDir, cfg.DockerHost, cfg.LogFormat = old.WatchDir, old.StateDir, old.DockerHost, old.LogFormat
	cfg.ConfDirs = old.ConfDirs
	if cfg.KeepImages > 0 && a.remover == nil {
		a.log.Warn("this engine cannot remove images, keeping keep_images off", zap.Int("keep_images", cfg.KeepImages))
		cfg.KeepImages = 0
	}
	if cfg.KeepImages < 1 && len(a.released) > 0 {
		a.log.Info("keep_images is off: forgetting the released images, which stay in the engine", zap.Int("released", len(a.released)))
		clear(a.released)
		a.markDirty()
	}
	a.cfg = cfg
	a.creds = credentials.NewResolver(cfg, nil)
	now := time.Now()
	retried := 0
	for _, im := range a.images {
		if !im.inflight && (im.Status == StatusFailed || im.Status == StatusWaiting) {
			im.due, im.failures = now, 0
			retried++
		}
	}
	a.mu.Unlock()
	for _, w := range watchers {
		w.reconfigure(timing{settle: cfg.Settle, rescan: cfg.RescanInterval})
	}
	a.wake()
	a.log.Info("configuration reloaded", zap.String("config", cfg.File), zap.Int("concurrency", cfg.Concurrency),
		zap.Duration("verify_interval", cfg.VerifyInterval), zap.Int("images_retried", retried), zap.Strings("not_applied_until_restart", needRestart))
	return cfg, true
}

// absAll returns paths, each made absolute and clean.
func absAll(paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, filepath.Clean(absOr(p)))
	}
	return out
}

// absOr returns path made absolute, or path itself when that fails.
func absOr(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// checkEngine pings the Docker Engine and records whether it answers.
func (a *Agent) checkEngine(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, engineCheckTimeout)
	defer cancel()
	_, err := a.eng.Ping(ctx)
	if errors.Is(err, context.Canceled) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setEngine(err)
}

// setEngine records the outcome of talking to the engine, logging changes.
// When the engine answers again, images waiting for it are tried at once.
func (a *Agent) setEngine(err error) {
	down := errors.Is(err, engine.ErrUnreachable)
	if err != nil && !down {
		return // not the engine's answer: a timeout of the caller's, say
	}
	first := a.engineAt.IsZero()
	a.engineAt, a.engineErr = time.Now().UTC(), ""
	if down {
		a.engineErr = err.Error()
	}
	switch {
	case down && !a.engineDown:
		a.log.Warn("docker engine unreachable, will keep trying", zap.Error(err))
	case !down && a.engineDown:
		a.log.Info("docker engine reachable again")
		a.wantPrune()
		now := time.Now()
		for _, im := range a.images {
			// Only what waits for the engine; other retries keep their backoff.
			if !im.inflight && im.Status == StatusWaiting && im.engineWait {
				im.due = now
			}
		}
		a.wake()
	}
	changed := down != a.engineDown || first
	a.engineDown = down
	if changed {
		a.statusStale = true
		a.changed()
	}
	a.writeLive()
}

// restore takes over a state read at start: pulls that a crash interrupted
// are waiting again, and every image is checked at once. Paks are keyed by
// their file; reconcile then drops those whose file is gone.
func (a *Agent) restore(s *State) {
	now := time.Now()
	a.restoreImages(s.Images, now)
	a.restorePaks(s.Paks, now)
	for _, r := range s.Released {
		if a.cfg.KeepImages > 0 && a.images[r.Reference] == nil {
			a.released[r.Reference] = &r
		}
	}
	a.removed = s.Removed
	for _, im := range a.images {
		if len(im.paks) == 0 {
			a.release(im) // no pak names it: nothing to keep
			continue
		}
		if im.KeptSince.IsZero() {
			im.KeptSince = a.firstSeen(im) // a state from before KeptSince
		}
	}
	if len(s.Paks) > 0 || len(s.Images) > 0 {
		a.log.Info("state restored", zap.Int("paks", len(a.paks)), zap.Int("images", len(a.images)))
	}
}

// restoreImages takes in the saved images: a pull that was in flight is
// waiting again, and a present image is verified first.
func (a *Agent) restoreImages(images []ImageState, now time.Time) {
	for _, is := range images {
		im := &image{ImageState: is, paks: map[string]bool{}, due: now}
		if im.Status == StatusPulling {
			im.Status = StatusWaiting
		}
		if im.Origin == "" && im.Pulls > 0 {
			im.Origin = OriginPulled // a state from before origins were kept
		}
		im.verifying = im.Status == StatusPresent
		a.images[im.Reference] = im
	}
}

// restorePaks takes in the saved paks, each tied to its image (a waiting
// one when the state has none for it).
func (a *Agent) restorePaks(paks []PakState, now time.Time) {
	for _, ps := range paks {
		p := ps
		if p.File == "" || !filepath.IsAbs(p.File) {
			continue
		}
		p.Name = filepath.Base(p.File)
		a.paks[p.File] = &p
		if p.Reference == "" || p.Status == StatusInvalid {
			continue
		}
		im := a.images[p.Reference]
		if im == nil {
			im = &image{ImageState: ImageState{Reference: p.Reference, Digest: p.Digest, Status: StatusWaiting, Updated: now}, paks: map[string]bool{}, due: now}
			a.images[p.Reference] = im
		}
		im.paks[p.File] = true
		mirror(&p, im)
	}
}

// firstSeen returns when the first of im's paks was seen.
func (a *Agent) firstSeen(im *image) time.Time {
	var first time.Time
	for path := range im.paks {
		if p := a.paks[path]; p != nil && (first.IsZero() || p.FirstSeen.Before(first)) {
			first = p.FirstSeen
		}
	}
	return first
}

// snapshot returns the state as it is to be saved. Call with a.mu held.
func (a *Agent) snapshot() *State {
	s := &State{Version: stateVersion, Saved: time.Now().UTC(), Paks: make([]PakState, 0, len(a.paks)), Images: make([]ImageState, 0, len(a.images))}
	for _, p := range a.paks {
		s.Paks = append(s.Paks, *p)
	}
	for _, im := range a.images {
		s.Images = append(s.Images, im.ImageState)
	}
	for _, r := range a.released {
		s.Released = append(s.Released, *r)
	}
	s.Removed = slices.Clone(a.removed)
	sortState(s)
	return s
}

// saveNow writes the state file. Call with a.mu held. A failure makes the
// agent degraded (logged once per reason): it keeps its state in memory,
// moves no pak, and tries again until saving works.
func (a *Agent) saveNow() error {
	a.statusStale = true
	a.changed()
	s := a.snapshot()
	if err := writeState(a.lock.dir, s); err != nil {
		a.markDirty()
		why := "cannot save state: " + errnoText(err)
		if why != a.saveErr {
			a.saveErr = why
			a.log.Error("degraded: "+why+"; no pak moves until the state can be saved", zap.String("state_dir", a.stateDir), zap.Error(err))
			a.writeLive()
		}
		return err
	}
	a.dirty = false
	a.lastSaved = s.Saved
	if a.saveErr != "" {
		a.saveErr, a.recovered = "", true
		a.log.Info("state saved again, resuming", zap.String("state_dir", a.stateDir))
	}
	a.writeLive()
	return nil
}

// errnoText is the system's words for err when it carries an errno (say,
// "no space left on device"), so that one cause reads the same each time;
// err's own text otherwise.
func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// writeLive puts the agent's live status into the lock file. Call with
// a.mu held.
func (a *Agent) writeLive() {
	l := Live{PID: os.Getpid(), Since: a.since, Degraded: a.degraded(), LastSaved: a.lastSaved,
		Engine: "unknown", EngineError: a.engineErr, EngineAt: a.engineAt, Updated: time.Now().UTC()}
	switch {
	case a.engineAt.IsZero():
	case a.engineDown:
		l.Engine = "unreachable"
	default:
		l.Engine = "answered"
	}
	if err := a.lock.write(l); err != nil {
		a.log.Debug("cannot write the live status", zap.Error(err))
	}
}

// degraded lists why the agent cannot work normally now. Call with a.mu held.
func (a *Agent) degraded() []string {
	var d []string
	if a.saveErr != "" {
		d = append(d, a.saveErr)
	}
	for _, dir := range slices.Sorted(maps.Keys(a.unsafe)) {
		d = append(d, "taking no new pak: "+a.unsafe[dir])
	}
	return d
}

// setUnsafe records whether dir, watch_dir or a folder of conf_dirs (what),
// is safe, logging each change.
func (a *Agent) setUnsafe(what, dir string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	why := ""
	if err != nil {
		why = err.Error()
	}
	if why == a.unsafe[dir] {
		return
	}
	if why != "" {
		a.log.Error("degraded: "+what+" is unsafe, taking no new pak until it is safe again", zap.Error(err))
		a.unsafe[dir] = why
	} else {
		a.log.Info(what+" is safe again, taking paks", zap.String("path", dir))
		delete(a.unsafe, dir)
	}
	a.statusStale = true
	a.changed()
	a.writeLive()
}

// saveIfDirty writes the state file when something changed. Call with a.mu held.
func (a *Agent) saveIfDirty() {
	if a.dirty {
		a.saveNow()
	}
}

// markDirty records that the state changed; the main loop saves it within
// saveEvery. Call with a.mu held.
func (a *Agent) markDirty() {
	a.dirty = true
	a.changed()
}

// changed wakes the main loop to save the state if it is dirty and to
// refresh the status line if it is stale.
func (a *Agent) changed() {
	select {
	case a.saveCh <- struct{}{}:
	default:
	}
}
