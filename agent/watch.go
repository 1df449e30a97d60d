package agent

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/pak"
)

// found is a pak file that settled and was read.
type found struct {
	path string
	sha  string
	img  pak.Image
	perr error  // why the pak names no pullable image; wraps pak.ErrInvalid
	id   fileID // the file as it was read
}

// timing is the part of the configuration the watcher uses.
type timing struct {
	settle time.Duration // a file must not change for this long before it is read
	rescan time.Duration // full rescans besides inotify
}

// candidate is a file waiting to settle.
type candidate struct {
	id      fileID
	changed time.Time // when it was last seen changing
}

// watcher finds pak files in watch_dir, or adapter .conf files in one of
// conf_dirs (what and eligible say which): it listens to inotify and rescans
// the folder every rescan interval, so that nothing is missed, and hands a
// file to deliver once it has not changed for the settle time. It never
// follows symlinks and ignores dot-files, folders and names not ending in
// .pak. All its state belongs to its own goroutine.
type watcher struct {
	dir      string
	what     string            // the configuration key of dir, for log lines: "watch_dir" or "conf_dirs"
	eligible func(string) bool // the file names it takes
	log      *zap.Logger
	deliver  func(found)
	reconf   chan timing
	now      func() time.Time

	// open, when set, opens the folder after checking that it is safe to
	// take files from (openSafe); it runs on every rescan, and onSafety
	// hears its answer. Unset, the folder is opened unchecked.
	open     func() (*os.Root, error)
	onSafety func(error)
	// root is the folder as last opened: every read is relative to it, so
	// that a rename or symlink swap of w.dir after the check cannot
	// redirect the watcher. Only a rescan's new check moves it.
	root   *os.Root
	rootID fileID // root's inode, to tell whether a new open is the same folder

	timing  timing
	cands   map[string]*candidate
	taken   map[string]fileID // files delivered or deliberately ignored, as they were then
	unsafe  bool              // the last check found watch_dir unsafe: take nothing
	readErr string            // why the last scan could not read watch_dir

	fsw   *fsnotify.Watcher
	armed uint64 // inode of the folder the inotify watch is on; 0 when none
	// parent says the folder above is watched too: the folder's own
	// removal shows there, for the watcher holds the folder open and the
	// kernel tells its own watch only once the last holder let go.
	parent bool
}

func newWatcher(dir string, t timing, log *zap.Logger, deliver func(found)) *watcher {
	return &watcher{
		dir: dir, what: "watch_dir", eligible: eligibleName, log: log, deliver: deliver, timing: t, now: time.Now,
		reconf: make(chan timing, 1),
		cands:  map[string]*candidate{},
		taken:  map[string]fileID{},
	}
}

// reconfigure changes the watcher's timing and makes it read every file in
// the folder again (after a reload, files it had set aside may now work).
func (w *watcher) reconfigure(t timing) {
	select {
	case <-w.reconf:
	default:
	}
	w.reconf <- t
}

// rearmEvery is how often the watcher looks for a watch_dir that is
// missing or was replaced, until it can watch it again.
const rearmEvery = 200 * time.Millisecond

// run watches until ctx ends. ready is closed once the inotify watch is in
// place (or has failed, leaving rescans) and the first scan is done.
func (w *watcher) run(ctx context.Context, ready chan<- struct{}) {
	defer w.release()
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		w.log.Warn("inotify unavailable, relying on rescans", zap.String(w.what, w.dir), zap.Duration("rescan_interval", w.timing.rescan), zap.Error(err))
	} else {
		w.fsw = fsw
		defer fsw.Close()
		w.arm()
	}

	w.scan()
	close(ready)

	rescan := time.NewTicker(w.timing.rescan)
	defer rescan.Stop()
	rearm := time.NewTicker(rearmEvery)
	defer rearm.Stop()
	// One timer, armed for the moment the earliest candidate will have
	// settled: a pak is taken right then, and with nothing to settle the
	// watcher does not wake at all.
	settled := time.NewTimer(time.Hour)
	defer settled.Stop()
	for {
		var settledC <-chan time.Time
		if next, ok := w.nextCheck(); ok && !w.unsafe {
			settled.Reset(next.Sub(w.now()))
			settledC = settled.C
		} else {
			settled.Stop()
		}
		var events <-chan fsnotify.Event
		var errs <-chan error
		var rearmC <-chan time.Time
		if w.fsw != nil {
			events, errs = w.fsw.Events, w.fsw.Errors
			if w.armed == 0 {
				rearmC = rearm.C
			}
		}
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if ev.Name == filepath.Clean(w.dir) {
				// The folder itself was removed or moved away: watch the
				// one that takes its place, as soon as there is one.
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					w.disarm()
				}
				continue
			}
			w.event(ev)
		case err := <-errs:
			w.log.Warn("inotify error, rescanning", zap.Error(err))
			w.scan()
		case <-rearmC:
			if w.arm() {
				w.scan()
			}
		case t := <-w.reconf:
			w.timing = t
			rescan.Reset(t.rescan)
			clear(w.taken)
			w.scan()
		case <-rescan.C:
			w.scan()
		case <-settledC:
			w.checkSettled()
		}
	}
}

// arm puts the inotify watch on the folder now at w.dir, unless it is
// there already, and reports whether it put a new one.
func (w *watcher) arm() bool {
	fi, err := os.Stat(w.dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	ino := idOf(fi).ino
	if ino == w.armed {
		return false
	}
	w.disarm()
	if err := w.fsw.Add(w.dir); err != nil {
		w.log.Warn("cannot watch "+w.what+" with inotify, relying on rescans", zap.String(w.what, w.dir), zap.Error(err))
		return false
	}
	if !w.parent {
		w.parent = w.fsw.Add(filepath.Dir(filepath.Clean(w.dir))) == nil
	}
	if w.armed != 0 || ino != 0 {
		w.log.Debug("watching "+w.what, zap.String(w.what, w.dir))
	}
	w.armed = ino
	return true
}

// disarm takes the inotify watch off, if any.
func (w *watcher) disarm() {
	if w.armed != 0 {
		_ = w.fsw.Remove(w.dir)
		w.armed = 0
		w.log.Warn(w.what+" was removed or replaced, watching for it to come back", zap.String(w.what, w.dir))
	}
}

// nextCheck returns when the earliest candidate will have gone unchanged for
// the settle time, and false when there is no candidate.
func (w *watcher) nextCheck() (time.Time, bool) {
	var next time.Time
	for _, c := range w.cands {
		if at := c.changed.Add(w.timing.settle); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, !next.IsZero()
}

// event handles one inotify event for a name in the folder.
func (w *watcher) event(ev fsnotify.Event) {
	name := filepath.Base(ev.Name)
	if filepath.Dir(ev.Name) != filepath.Clean(w.dir) || !w.eligible(name) {
		return
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		delete(w.cands, name)
		delete(w.taken, name)
		// A rename may also have put a new file under this name.
	}
	w.consider(name, true)
}

// scan looks at every name in the folder, the safety net for missed events.
// It checks first that the folder is still safe, and that the inotify watch
// is on the folder now at w.dir.
func (w *watcher) scan() {
	err := w.reopen()
	if w.open != nil {
		w.unsafe = err != nil
		if w.onSafety != nil {
			w.onSafety(err)
		}
	}
	if w.fsw != nil {
		if fi, err := os.Stat(w.dir); err != nil || idOf(fi).ino != w.armed {
			w.disarm()
			w.arm()
		}
	}
	var entries []fs.DirEntry
	if err == nil {
		entries, err = fs.ReadDir(w.root.FS(), ".")
	}
	if err != nil {
		// Once per cause, not every rescan.
		if msg := err.Error(); msg != w.readErr {
			w.readErr = msg
			w.log.Error("cannot read "+w.what, zap.String(w.what, w.dir), zap.Error(err))
		}
		return
	}
	if w.readErr != "" {
		w.readErr = ""
		w.log.Info(w.what+" can be read again", zap.String(w.what, w.dir))
	}
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		if w.eligible(e.Name()) {
			present[e.Name()] = true
			w.consider(e.Name(), false)
		}
	}
	for name := range w.taken {
		if !present[name] {
			delete(w.taken, name)
		}
	}
	for name := range w.cands {
		if !present[name] {
			delete(w.cands, name)
		}
	}
}

// reopen opens the folder now at w.dir (checked, when w.open is set) and
// makes it w.root, unless it is the folder held already. When the open
// fails, the folder held is let go: nothing is read until one opens again.
func (w *watcher) reopen() error {
	open := w.open
	if open == nil {
		open = func() (*os.Root, error) { return os.OpenRoot(w.dir) }
	}
	r, err := open()
	if err != nil {
		w.release()
		return err
	}
	fi, err := r.Stat(".")
	if err != nil {
		r.Close()
		w.release()
		return err
	}
	if w.root != nil && idOf(fi).ino == w.rootID.ino {
		r.Close()
		return nil
	}
	if w.root != nil {
		w.log.Info(w.what+" now leads to another folder, reading that one", zap.String(w.what, w.dir))
	}
	w.release()
	w.root, w.rootID = r, idOf(fi)
	return nil
}

// release closes the folder held, if any.
func (w *watcher) release() {
	if w.root != nil {
		w.root.Close()
		w.root = nil
	}
}

// lstat looks at name in the folder held, never following a symlink.
func (w *watcher) lstat(name string) (fs.FileInfo, error) {
	if w.root == nil {
		return nil, fs.ErrNotExist
	}
	return w.root.Lstat(name)
}

// consider looks at one name: a new or changed regular file becomes a
// candidate (or, when it already is one and touched is set, its settle time
// starts again); anything else is dropped.
func (w *watcher) consider(name string, touched bool) {
	fi, err := w.lstat(name)
	if err != nil {
		delete(w.cands, name)
		if !errors.Is(err, fs.ErrNotExist) {
			w.log.Warn("cannot look at file in "+w.what, zap.String("pak", name), zap.Error(err))
		}
		return
	}
	id := idOf(fi)
	if prev, ok := w.taken[name]; ok && prev == id {
		return
	}
	if !fi.Mode().IsRegular() {
		delete(w.cands, name)
		w.taken[name] = id
		w.log.Warn("ignoring a file that is not a regular file (symlinks are never followed)", zap.String("pak", name), zap.String("mode", fi.Mode().String()))
		return
	}
	delete(w.taken, name)
	c, ok := w.cands[name]
	switch {
	case !ok:
		w.cands[name] = &candidate{id: id, changed: w.now()}
	case c.id != id || touched:
		c.id, c.changed = id, w.now()
	}
}

// checkSettled reads and delivers the candidates that stopped changing.
// While watch_dir is unsafe it takes nothing.
func (w *watcher) checkSettled() {
	if w.unsafe {
		return
	}
	now := w.now()
	for name, c := range w.cands {
		fi, err := w.lstat(name)
		if err != nil || !fi.Mode().IsRegular() {
			delete(w.cands, name)
			if err == nil {
				w.consider(name, false)
			}
			continue
		}
		if id := idOf(fi); id != c.id {
			c.id, c.changed = id, now
			continue
		}
		if now.Sub(c.changed) < w.timing.settle {
			continue
		}
		w.take(name, c)
	}
}

// take reads a settled candidate and delivers it.
func (w *watcher) take(name string, c *candidate) {
	if w.root == nil {
		delete(w.cands, name)
		return
	}
	f, err := readPakIn(w.root, name, filepath.Join(w.dir, name), c.id)
	switch {
	case errors.Is(err, errChanged):
		c.id, c.changed = f.id, w.now()
		return
	case errors.Is(err, errNotRegular):
		delete(w.cands, name)
		w.consider(name, false)
		return
	case errors.Is(err, fs.ErrNotExist):
		delete(w.cands, name)
		return
	case err != nil:
		delete(w.cands, name)
		w.taken[name] = c.id
		w.log.Error("cannot read pak, will try again after it changes or on reload", zap.String("pak", name), zap.Error(err))
		return
	}
	// A copy that paused longer than the settle time reads as a broken pak.
	// Give such a file more time before it goes to failed/.
	if f.perr != nil && w.now().Sub(f.id.mtime) < invalidGrace(w.timing.settle) {
		c.changed = w.now()
		return
	}
	delete(w.cands, name)
	w.taken[name] = f.id
	w.deliver(f)
}

// invalidGrace is how long a pak that reads as invalid must have been left
// unchanged before the agent gives up on it.
func invalidGrace(settle time.Duration) time.Duration { return 5 * settle }
