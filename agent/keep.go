package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
)

// keep_images: an image this agent pulled that no pak or conf names any
// more is released (State.Released) and removed from the engine once
// keep_images newer digests of its repository are kept. "Newer" is what the
// agent knows: the time a pak or conf last began to name each digest
// (ImageState.KeptSince). A digest counts as kept while a pak or conf names
// it and it is present, or while it is released and not yet removed: the
// agent keeps the keep_images newest digests of each repository. Never
// removed: an image the agent found present rather than pulled, one a
// container uses (running or stopped), or any image while the engine's
// answer is uncertain (it did not answer, or the agent is degraded); the
// decision is saved before the engine is asked, and removal is by the exact
// digest reference, unforced, so that an image with other tags or digests
// is only untagged. prepull's own local name (pull.LocalName) goes with the
// image; a name someone else gave it stays, and so does the image then.

// removedHistory bounds State.Removed.
const removedHistory = 50

// ImageRemover is what keep_images needs of the engine besides pulling.
// The Docker engine of internal/engine has it; with keep_images set, the
// Engine given in Options must implement it.
type ImageRemover interface {
	// ImageUse says what the engine knows of the local image that ref
	// names: its references and the containers made from it. An image that
	// is not there gives an error wrapping engine.ErrNotPresent.
	ImageUse(ctx context.Context, ref string) (engine.ImageUse, error)
	// RemoveReference removes the reference ref (a digest reference, or
	// prepull's local name), unforced, pruning nothing, and reports whether
	// the image itself was deleted (false: only ref was untagged).
	RemoveReference(ctx context.Context, ref string) (deleted bool, err error)
}

// removal is a released image that keep_images lets go now, and why.
type removal struct {
	ref    string
	reason string
}

// selectRemovals returns, by reference, the released images to remove when
// keep digests of each repository are to stay: those this agent pulled
// (OriginPulled) of which at least keep digests of the same repository are
// newer (kept since a later time) and kept (named and present, or released
// and not yet removed). A released image that a pak or conf names under
// another spelling (pak.SameImage: Docker Hub's names, library/) is the
// same image to the engine and never selected. keep below 1 selects
// nothing.
func selectRemovals(keep int, named, released []ImageState) []removal {
	if keep < 1 {
		return nil
	}
	var kept []ImageState
	for _, im := range named {
		if im.Status == StatusPresent {
			kept = append(kept, im)
		}
	}
	kept = append(kept, released...)
	var out []removal
	for _, r := range released {
		if r.Origin != OriginPulled || r.KeptSince.IsZero() ||
			slices.ContainsFunc(named, func(n ImageState) bool { return pak.SameImage(n.Reference, r.Reference) }) {
			continue
		}
		newer := 0
		for _, k := range kept {
			if !pak.SameImage(k.Reference, r.Reference) && pak.SameRepository(k.Reference, r.Reference) && k.KeptSince.After(r.KeptSince) {
				newer++
			}
		}
		if newer >= keep {
			noun := "digests"
			if newer == 1 {
				noun = "digest"
			}
			out = append(out, removal{ref: r.Reference, reason: fmt.Sprintf("%d newer %s of the repository kept (keep_images: %d)", newer, noun, keep)})
		}
	}
	slices.SortFunc(out, func(x, y removal) int { return strings.Compare(x.ref, y.ref) })
	return out
}

// retain records an image that no pak or conf names any more, when
// keep_images may remove it later: only one this agent pulled. Call with
// a.mu held.
func (a *Agent) retain(im *image) {
	if a.cfg.KeepImages < 1 || im.Origin != OriginPulled {
		return
	}
	r := im.ImageState
	r.Released, r.Removing, r.LastError = time.Now().UTC(), false, ""
	a.released[r.Reference] = &r
	a.wantPrune()
}

// revive takes back a released image that a pak or conf names again, as
// newly kept. Call with a.mu held.
func (a *Agent) revive(ref string, now time.Time) *image {
	r := a.released[ref]
	if r == nil {
		return nil
	}
	delete(a.released, ref)
	im := &image{ImageState: *r, paks: map[string]bool{}, due: now}
	im.Released, im.Removing, im.KeptSince = time.Time{}, false, now.UTC()
	im.verifying = im.Status == StatusPresent
	a.log.Info("a pak or conf names a released image again, keeping it present", zap.String("reference", ref))
	return im
}

// wantPrune asks the pruner to look for images to remove.
func (a *Agent) wantPrune() {
	select {
	case a.pruneCh <- struct{}{}:
	default:
	}
}

// pruner removes released images when asked, one pass at a time, until ctx
// ends.
func (a *Agent) pruner(ctx context.Context) {
	defer a.workers.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.pruneCh:
		}
		for _, c := range a.removals() {
			if ctx.Err() != nil {
				return
			}
			a.remove(ctx, c)
		}
	}
}

// removals returns what selectRemovals picks now, or nothing while the
// answer could be wrong: keep_images off, the engine unreachable at the last
// check, the agent degraded (a state it cannot save, an unsafe folder) or
// stopping.
func (a *Agent) removals() []removal {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.removalsLocked()
}

// removalsLocked is removals. Call with a.mu held.
func (a *Agent) removalsLocked() []removal {
	if a.cfg.KeepImages < 1 || a.remover == nil || a.engineDown || a.engineAt.IsZero() || len(a.degraded()) > 0 || a.stopping {
		return nil
	}
	named := make([]ImageState, 0, len(a.images))
	for _, im := range a.images {
		named = append(named, im.ImageState)
	}
	released := make([]ImageState, 0, len(a.released))
	for _, r := range a.released {
		released = append(released, *r)
	}
	out := selectRemovals(a.cfg.KeepImages, named, released)
	// A removal decided and saved before a crash is finished: the engine
	// may have removed the image already.
	for _, r := range released {
		if r.Removing && !slices.ContainsFunc(out, func(c removal) bool { return c.ref == r.Reference }) {
			out = append(out, removal{ref: r.Reference, reason: "decided before the agent restarted"})
		}
	}
	return out
}

// selected reports whether ref is still one to remove. Call with a.mu held.
func (a *Agent) selected(ref string) bool {
	return slices.ContainsFunc(a.removalsLocked(), func(r removal) bool { return r.ref == ref })
}

// remove removes one released image, after asking the engine whether a
// container uses it, and after saving the decision.
func (a *Agent) remove(ctx context.Context, c removal) {
	use, err := a.remover.ImageUse(ctx, c.ref)
	switch {
	case errors.Is(err, engine.ErrNotPresent):
		a.mu.Lock()
		defer a.mu.Unlock()
		if r := a.released[c.ref]; r != nil {
			outcome := RemovedGone
			if r.Removing {
				outcome = RemovedImage // removed just before a crash
			}
			a.recordRemoval(r, outcome, c.reason)
		}
		return
	case err != nil:
		a.notRemoved(c.ref, err)
		return
	case len(use.Containers) > 0:
		a.notRemoved(c.ref, fmt.Errorf("%w: container %s", engine.ErrInUse, shortID(use.Containers[0])))
		return
	}

	a.mu.Lock()
	r := a.released[c.ref]
	if r == nil || !a.selected(c.ref) {
		a.mu.Unlock()
		return
	}
	r.Removing = true
	if err := a.saveNow(); err != nil {
		r.Removing = false // not decided: nothing is removed unless saved first
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()

	deleted, err := a.removeNames(ctx, c.ref, use.References)
	if err == nil && !deleted {
		deleted, err = a.remover.RemoveReference(ctx, c.ref)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r = a.released[c.ref]
	switch {
	case errors.Is(err, engine.ErrNotPresent):
		if r != nil {
			a.recordRemoval(r, RemovedGone, c.reason)
		}
	case err != nil:
		if r != nil {
			r.Removing = false
			a.markDirty()
		}
		a.notRemovedLocked(c.ref, err)
		return
	default:
		outcome := RemovedUntagged
		if deleted {
			outcome = RemovedImage
		}
		state := r
		if state == nil {
			state = &ImageState{Reference: c.ref}
			if im := a.images[c.ref]; im != nil {
				state.Digest = im.Digest
			}
		}
		a.recordRemoval(state, outcome, c.reason)
		a.log.Info("released image removed from the engine", zap.String("reference", c.ref), zap.String("outcome", outcome),
			zap.String("reason", c.reason), zap.Int("other_references", max(len(use.References)-1, 0)))
	}
	// A pak named it again meanwhile: check it now, and pull it back. A
	// check that runs now may have seen it before it went: the next one
	// starts when that ends.
	if im := a.images[c.ref]; im != nil {
		im.due, im.verifying = time.Now(), true
		a.wake()
	}
}

// removeNames removes prepull's local names of the image ref names, found
// among refs (the image's references), and never a name that someone else
// gave it. It reports whether the image went with them.
func (a *Agent) removeNames(ctx context.Context, ref string, refs []string) (deleted bool, err error) {
	for _, name := range refs {
		if !pull.IsLocalName(name, ref) {
			continue
		}
		d, err := a.remover.RemoveReference(ctx, name)
		if err != nil && !errors.Is(err, engine.ErrNotPresent) {
			return false, err
		}
		deleted = deleted || d
	}
	return deleted, nil
}

// recordRemoval forgets a released image and adds it to the history. Call
// with a.mu held.
func (a *Agent) recordRemoval(r *ImageState, outcome, reason string) {
	delete(a.released, r.Reference)
	a.removed = append(a.removed, Removal{Reference: r.Reference, Digest: r.Digest, Outcome: outcome, Reason: reason, At: time.Now().UTC()})
	if n := len(a.removed) - removedHistory; n > 0 {
		a.removed = slices.Delete(a.removed, 0, n)
	}
	if outcome != RemovedGone {
		a.metrics.removed.Inc()
	}
	if outcome == RemovedGone {
		a.log.Info("released image is no longer in the engine, forgetting it", zap.String("reference", r.Reference))
	}
	a.markDirty()
}

// notRemoved records why a released image stays for now, logging each new
// reason once; it is tried again at the next rescan.
func (a *Agent) notRemoved(ref string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notRemovedLocked(ref, err)
}

// notRemovedLocked is notRemoved. Call with a.mu held.
func (a *Agent) notRemovedLocked(ref string, err error) {
	if errors.Is(err, engine.ErrUnreachable) {
		a.setEngine(err)
	}
	r := a.released[ref]
	if r == nil || r.LastError == err.Error() {
		return
	}
	r.LastError = err.Error()
	a.markDirty()
	if errors.Is(err, engine.ErrInUse) {
		a.log.Info("keeping a released image: a container uses it", zap.String("reference", ref), zap.Error(err))
		return
	}
	a.log.Warn("cannot remove a released image now, will try again", zap.String("reference", ref), zap.Error(err))
}

// shortID is the first 12 characters of an engine ID, as docker ps shows it.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
