package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
)

// A pak is a file, keyed by its path; the sha256 of its bytes is one of its
// attributes. The same bytes under two names are two paks, and an image is
// kept present while any pak file names it. The files are the truth about
// which paks exist; the state is their history (see reconcile).

// offer takes a pak the watcher found in the inbox. A file whose bytes
// changed since it was taken is a new arrival.
func (a *Agent) offer(f found) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now().UTC()
	if old := a.paks[f.path]; old != nil && old.SHA256 != f.sha {
		a.log.Info("pak file has new content, taking it as a new arrival", zap.String("pak", filepath.Base(f.path)), zap.String("sha256", f.sha))
		a.drop(old)
	}
	p := a.paks[f.path]
	if p == nil {
		p = &PakState{File: f.path, Name: filepath.Base(f.path), SHA256: f.sha, FirstSeen: now}
		a.paks[f.path] = p
	}
	p.Updated, p.id = now, f.id
	a.take(p, f.img, f.perr)
	a.moveReady()
}

// adopt takes a pak found in done/ that the state does not know: its image
// is kept present like that of any other pak there. Call with a.mu held.
func (a *Agent) adopt(done *os.Root, path string) {
	f, err := readPakIn(done, filepath.Base(path), path, fileID{})
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("cannot read pak found in done/", zap.String("pak", filepath.Base(path)), zap.Error(err))
		}
		return
	}
	now := time.Now().UTC()
	p := &PakState{File: path, Name: filepath.Base(path), SHA256: f.sha, FirstSeen: now, Updated: now, id: f.id}
	a.paks[path] = p
	a.log.Info("pak found in done/ that the state did not know, keeping its image present", zap.String("pak", p.Name), zap.String("sha256", f.sha))
	a.take(p, f.img, f.perr)
}

// take links a pak to the image it names, or records why it names none.
// Call with a.mu held.
func (a *Agent) take(p *PakState, img pak.Image, perr error) {
	now := time.Now().UTC()
	var t pak.Target
	if perr == nil {
		var err error
		t, err = img.Resolve(a.cfg.DefaultRegistry)
		switch {
		case errors.Is(err, pak.ErrInvalid):
			perr = err
		case err != nil:
			// The configuration is at fault (default_registry), not the
			// pak: it stays where it is and is read again on reload.
			a.unlink(p)
			p.Reference, p.Status, p.LastError, p.LastCause, p.ErrorKind = "", StatusFailed, err.Error(), pull.Cause(err), ErrorConfig
			a.markDirty()
			a.log.Error("cannot resolve the pak's image, fix the configuration and reload", zap.String("pak", p.Name), zap.Error(err))
			return
		}
	}
	if perr != nil {
		a.unlink(p)
		p.Reference, p.Digest = "", ""
		p.Status, p.LastError, p.LastCause, p.ErrorKind, p.Attempts, p.Updated = StatusInvalid, perr.Error(), strings.TrimPrefix(pull.Cause(perr), display.Text(p.File)+": "), "", 0, now
		a.markDirty()
		a.log.Error("pak names no pullable image", zap.String("pak", p.Name), zap.Error(perr))
		return
	}
	if p.Reference != t.Reference {
		a.unlink(p) // resolved differently since (default_registry changed)
	}
	p.Reference, p.Digest = t.Reference, t.Digest
	im := a.imageFor(t, now)
	im.paks[p.File] = true
	mirror(p, im)
	a.markDirty()
	a.log.Info("pak taken", zap.String("pak", p.Name), zap.String("reference", t.Reference), zap.String("sha256", p.SHA256), zap.String("image_status", im.Status))
	a.wake()
}

// imageFor returns the image t names, made when new and due at once.
// Call with a.mu held.
func (a *Agent) imageFor(t pak.Target, now time.Time) *image {
	ref := t.Reference
	im := a.images[ref]
	if im == nil {
		im = a.revive(ref, now)
	}
	if im == nil {
		im = &image{
			ImageState: ImageState{Reference: ref, Digest: t.Digest, Status: StatusWaiting, Updated: now, KeptSince: now},
			paks:       map[string]bool{},
			due:        now,
		}
		a.images[ref] = im
	} else if a.images[ref] == nil {
		a.images[ref] = im
	} else if im.Status == StatusPresent && !im.inflight {
		// Check that it is still there; then the pak moves to done/.
		im.due, im.verifying = now, true
	}
	if im.AdapterKind == "" {
		im.AdapterKind = t.AdapterKind
	}
	return im
}

// unlink detaches a pak from its image, letting the image go when no other
// pak names it. Call with a.mu held.
func (a *Agent) unlink(p *PakState) {
	im := a.images[p.Reference]
	if im == nil || !im.paks[p.File] {
		return
	}
	delete(im.paks, p.File)
	im.lastPak = p.Name
	a.letGo(im)
}

// letGo releases an image no pak names any more and says so, naming the
// pak whose leaving let it go. When that pak left while the image was pulled
// or verified, release only cancels the call and finish calls letGo again:
// the line is the same whichever path noticed the pak leave. Call with a.mu
// held.
func (a *Agent) letGo(im *image) {
	if a.release(im) {
		a.log.Info(msgLetGo, zap.String("pak", im.lastPak), zap.String("reference", im.Reference))
	}
}

// msgLetGo is logged when the agent lets go of an image.
const msgLetGo = "no other pak names the image, no longer keeping it present"

// release lets go of an image no pak names any more; an Ensure call for it
// that still runs is cancelled, and finish lets go of it then. It never
// removes the image from the engine itself: with keep_images, an image this
// agent pulled is retained for the pruner (keep.go). Call with a.mu held.
func (a *Agent) release(im *image) bool {
	if len(im.paks) > 0 {
		return false
	}
	if im.inflight {
		im.cancel() // finish lets go of it
		return false
	}
	delete(a.images, im.Reference)
	a.retain(im)
	a.markDirty()
	return true
}

// drop forgets a pak whose file is gone or changed. Call with a.mu held.
func (a *Agent) drop(p *PakState) {
	a.unlink(p)
	delete(a.paks, p.File)
	a.markDirty()
}

// rekey records that a pak's file is now at path. Call with a.mu held.
func (a *Agent) rekey(p *PakState, path string) {
	if im := a.images[p.Reference]; im != nil && im.paks[p.File] {
		delete(im.paks, p.File)
		im.paks[path] = true
	}
	delete(a.paks, p.File)
	p.File, p.Name = path, filepath.Base(path)
	a.paks[path] = p
	a.markDirty()
}

// moveReady moves the paks in the inbox that are finished with: those whose
// image is present to done/, those that name no pullable image to failed/.
// Nothing moves while the state cannot be saved. Call with a.mu held.
func (a *Agent) moveReady() {
	if a.saveErr != "" || a.stopping {
		return
	}
	var ready []*PakState
	for path, p := range a.paks {
		if filepath.Dir(path) == a.watchDir && (p.Status == StatusPresent || p.Status == StatusInvalid) {
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		return
	}
	b := a.openInbox()
	if b == nil {
		return
	}
	defer b.close()
	slices.SortFunc(ready, func(x, y *PakState) int { return x.FirstSeen.Compare(y.FirstSeen) })
	for _, p := range ready {
		if a.saveErr != "" {
			return
		}
		if p.Status == StatusPresent || faultOn(faultInvalidToDone) {
			a.moveTo(b, p, DoneDir)
		} else {
			a.moveTo(b, p, FailedDir)
		}
	}
}

// openInbox opens watch_dir, checked, and its done/ and failed/ for a round
// of work on finished paks; nil, logged, when it cannot. Call with a.mu held.
func (a *Agent) openInbox() *inbox {
	b, made, err := openInbox(a.watchDir)
	if err != nil {
		a.log.Error("cannot open watch_dir to move finished paks", zap.Error(err))
		return nil
	}
	for _, dir := range made {
		a.log.Info("made the missing folder again", zap.String("path", dir))
	}
	return b
}

// moveTo moves a pak from the inbox (or done/) into watch_dir's folder sub,
// all relative to b, durable before visible: the file is read again first
// (a pak that changed is a new arrival, one that is gone is forgotten),
// then the state naming its new place is saved, and only then is the file
// moved. Call with a.mu held.
func (a *Agent) moveTo(b *inbox, p *PakState, sub string) {
	src, name := p.File, filepath.Base(p.File)
	from, to := b.folder(filepath.Dir(src)), b.folder(filepath.Join(b.dir, sub))
	if from == nil {
		a.log.Error("cannot move pak: it is in no folder of watch_dir", zap.String("pak", p.Name), zap.String("path", src))
		return
	}
	sha, err := a.reread(from, p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		a.log.Info("pak left the inbox before it was moved, forgetting it", zap.String("pak", p.Name))
		a.drop(p)
		return
	case err != nil:
		a.log.Error("cannot read pak before moving it", zap.String("pak", p.Name), zap.Error(err))
		return
	case sha != p.SHA256:
		a.log.Info("pak changed while its image was pulled, it will be taken again", zap.String("pak", p.Name))
		a.drop(p)
		return
	}
	dir := filepath.Join(b.dir, sub)
	dst := freeName(to, name)
	a.rekey(p, filepath.Join(dir, dst))
	switch {
	case faultOn(faultLosePak):
		_ = from.Remove(name)
		a.drop(p)
		return
	case faultOn(faultMoveBeforeSave):
		// The state is saved later, by the save timer.
	default:
		if err := a.saveNow(); err != nil {
			a.rekey(p, src)
			return
		}
	}
	if p.Status == StatusInvalid {
		if err := writeErrorFile(to, dst, p, time.Now().UTC()); err != nil {
			a.log.Error("cannot write the error file; the reason is in prepull status", zap.String("pak", p.Name), zap.Error(err))
		}
	}
	got, err := moveFile(from, name, to, dst)
	if err != nil {
		a.rekey(p, src)
		a.log.Error("cannot move pak", zap.String("pak", p.Name), zap.String("to", dir), zap.Error(err))
		if errors.Is(err, fs.ErrNotExist) {
			a.drop(p)
		}
		return
	}
	if got != dst {
		a.rekey(p, filepath.Join(dir, got))
	}
	if sub == DoneDir {
		a.log.Info("pak done", zap.String("pak", p.Name), zap.String("reference", p.Reference), zap.String("path", p.File))
	} else {
		msg := "pak names no pullable image, moved to failed/"
		if p.ErrorKind == ErrorPlatform {
			msg = "the pak's image cannot run on this engine, moved to failed/"
		}
		a.log.Error(msg, zap.String("pak", p.Name), zap.String("path", p.File), zap.String("error", p.LastError))
	}
}

// reread returns the sha256 of p's file, in the folder from, now. A file
// whose size, time and inode are as when this agent read it has the bytes
// it had; any other is hashed again. Call with a.mu held.
func (a *Agent) reread(from *os.Root, p *PakState) (string, error) {
	name := filepath.Base(p.File)
	fi, err := from.Lstat(name)
	if err != nil {
		return "", err
	}
	if p.id != (fileID{}) && fi.Mode().IsRegular() && idOf(fi) == p.id {
		return p.SHA256, nil
	}
	return hashIn(from, name)
}

// reconcile makes the state agree with the files, on start and on every
// rescan: done/ and failed/ are made again when missing, paks in done/ that
// the state does not know are adopted, entries whose file is gone (or is in
// no folder the agent watches now) are dropped (their image let go when no
// other pak names it), and finished paks still in the inbox are moved.
// Confs in conf_dirs are adopted by their watchers; one whose file is gone
// is dropped like a pak, unless its whole folder cannot be read.
func (a *Agent) reconcile() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopping {
		return
	}
	// With watch_dir gone its paks are gone; while it cannot be opened
	// otherwise (unsafe, say: the watcher reports that), they are kept.
	b, made, openErr := openInbox(a.watchDir)
	watchGone := errors.Is(openErr, fs.ErrNotExist)
	if openErr == nil {
		defer b.close()
		for _, dir := range made {
			a.log.Info("made the missing folder again", zap.String("path", dir))
		}
		// Adopt first: a pak renamed in done/ keeps its image without a gap.
		entries, _ := fs.ReadDir(b.done.FS(), ".")
		for _, e := range entries {
			path := filepath.Join(a.doneDir, e.Name())
			if eligibleName(e.Name()) && e.Type().IsRegular() && a.paks[path] == nil {
				a.adopt(b.done, path)
			}
		}
	}
	for path, p := range a.paks {
		dir := filepath.Dir(path)
		inConfDir := slices.Contains(a.confDirs, dir)
		if !inConfDir && dir != a.watchDir && dir != a.doneDir && dir != a.failedDir {
			a.log.Info("pak file is in no folder the agent watches now, forgetting it", zap.String("pak", p.Name), zap.String("path", path))
			a.drop(p)
			continue
		}
		var err error
		switch {
		case inConfDir:
			// A conf_dir that cannot be read now (unmounted, say) is not
			// one whose confs are gone: they are kept as last read.
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				continue
			}
			_, err = os.Lstat(path)
		case openErr == nil:
			_, err = b.folder(dir).Lstat(filepath.Base(path))
		case watchGone:
			err = fs.ErrNotExist
		default:
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			a.log.Info("pak file is gone, forgetting it", zap.String("pak", p.Name), zap.String("path", path))
			a.drop(p)
		}
	}
	a.moveReady()
}
