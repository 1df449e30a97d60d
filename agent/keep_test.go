package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak/paktest"
)

// TestSelectRemovals is keep_images' choice, rule by rule.
func TestSelectRemovals(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	img := func(ref string, kept int, status, origin string) ImageState {
		return ImageState{Reference: ref, Status: status, Origin: origin, KeptSince: at(kept)}
	}
	const a1, a2, a3, b1 = "r/a@sha256:1", "r/a@sha256:2", "r/a@sha256:3", "r/b@sha256:1"
	tests := []struct {
		name     string
		keep     int
		named    []ImageState
		released []ImageState
		want     []string
	}{
		{"off", 0, []ImageState{img(a2, 2, StatusPresent, OriginPulled)}, []ImageState{img(a1, 1, StatusPresent, OriginPulled)}, nil},
		{"one newer kept", 1, []ImageState{img(a2, 2, StatusPresent, OriginPulled)}, []ImageState{img(a1, 1, StatusPresent, OriginPulled)}, []string{a1}},
		{"the newer one found present counts", 1, []ImageState{img(a2, 2, StatusPresent, OriginFound)}, []ImageState{img(a1, 1, StatusPresent, OriginPulled)}, []string{a1}},
		{"newer one not present yet", 1, []ImageState{img(a2, 2, StatusPulling, OriginPulled)}, []ImageState{img(a1, 1, StatusPresent, OriginPulled)}, nil},
		{"newer one failing", 1, []ImageState{img(a2, 2, StatusFailed, "")}, []ImageState{img(a1, 1, StatusPresent, OriginPulled)}, nil},
		{"two wanted, one newer", 2, []ImageState{img(a2, 2, StatusPresent, OriginPulled)}, []ImageState{img(a1, 1, StatusPresent, OriginPulled)}, nil},
		{"released newer ones count", 2, []ImageState{img(a3, 3, StatusPresent, OriginPulled)},
			[]ImageState{img(a1, 1, StatusPresent, OriginPulled), img(a2, 2, StatusPresent, OriginPulled)}, []string{a1}},
		{"keep the newest when nothing is named", 1, nil,
			[]ImageState{img(a1, 1, StatusPresent, OriginPulled), img(a2, 2, StatusPresent, OriginPulled)}, []string{a1}},
		{"older named one is not newer", 1, []ImageState{img(a1, 1, StatusPresent, OriginPulled)}, []ImageState{img(a2, 2, StatusPresent, OriginPulled)}, nil},
		{"named again later is newer (downgrade)", 1, []ImageState{img(a1, 5, StatusPresent, OriginPulled)}, []ImageState{img(a2, 2, StatusPresent, OriginPulled)}, []string{a2}},
		{"same time is not newer", 1, []ImageState{img(a2, 1, StatusPresent, OriginPulled)}, []ImageState{img(a1, 1, StatusPresent, OriginPulled)}, nil},
		{"found present is never removed", 1, []ImageState{img(a2, 2, StatusPresent, OriginPulled)}, []ImageState{img(a1, 1, StatusPresent, OriginFound)}, nil},
		{"origin unknown is never removed", 1, []ImageState{img(a2, 2, StatusPresent, OriginPulled)}, []ImageState{img(a1, 1, StatusPresent, "")}, nil},
		{"kept since unknown is never removed", 1, []ImageState{img(a2, 2, StatusPresent, OriginPulled)}, []ImageState{{Reference: a1, Status: StatusPresent, Origin: OriginPulled}}, nil},
		{"other repository does not count", 1, []ImageState{img(b1, 2, StatusPresent, OriginPulled)}, []ImageState{img(a1, 1, StatusPresent, OriginPulled)}, nil},
		{"other registry is another repository", 1, []ImageState{img("s/a@sha256:2", 2, StatusPresent, OriginPulled)}, []ImageState{img(a1, 1, StatusPresent, OriginPulled)}, nil},
		// The engine names Docker Hub's images one way: another spelling of
		// a named image is that image, never one to remove.
		{"another Docker Hub spelling of a named image", 1,
			[]ImageState{img("docker.io/vendor/app@sha256:1", 3, StatusPresent, OriginPulled)},
			[]ImageState{img("index.docker.io/vendor/app@sha256:1", 1, StatusPresent, OriginPulled), img("index.docker.io/vendor/app@sha256:2", 2, StatusPresent, OriginPulled)},
			[]string{"index.docker.io/vendor/app@sha256:2"}},
		{"library/ spelled out", 1,
			[]ImageState{img("docker.io/library/app@sha256:1", 3, StatusFailed, "")},
			[]ImageState{img("app@sha256:1", 1, StatusPresent, OriginPulled), img("app@sha256:2", 2, StatusPresent, OriginPulled)}, nil},
		{"newer digests counted across Docker Hub spellings", 1,
			[]ImageState{img("registry-1.docker.io/library/app@sha256:2", 2, StatusPresent, OriginPulled)},
			[]ImageState{img("docker.io/app@sha256:1", 1, StatusPresent, OriginPulled)}, []string{"docker.io/app@sha256:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range selectRemovals(tt.keep, tt.named, tt.released) {
				got = append(got, r.ref)
				if r.reason == "" {
					t.Errorf("%s selected without a reason", r.ref)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("selected %v, want %v", got, tt.want)
			}
		})
	}
}

// inUse marks ref as used by a container of the fake engine, or not.
func (e *fakeEngine) inUse(ref string, used bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.containers == nil {
		e.containers = map[string]bool{}
	}
	e.containers[ref] = used
}

func (e *fakeEngine) ImageUse(_ context.Context, ref string) (engine.ImageUse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.uses++
	switch {
	case e.down:
		return engine.ImageUse{}, errDown
	case e.useErr != nil:
		return engine.ImageUse{}, e.useErr
	case !e.images[ref]:
		return engine.ImageUse{}, fmt.Errorf("%s: %w", ref, engine.ErrNotPresent)
	}
	use := engine.ImageUse{ID: "sha256:" + ref, References: []string{ref}}
	for name, r := range e.names {
		if r == ref {
			use.References = append(use.References, name)
		}
	}
	if e.containers[ref] {
		use.Containers = []string{"0123456789abcdef"}
	}
	return use, nil
}

func (e *fakeEngine) RemoveReference(_ context.Context, ref string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.down:
		return false, errDown
	case e.containers[ref]:
		return false, fmt.Errorf("remove %s: %w", ref, engine.ErrInUse)
	case e.names[ref] != "":
		img := e.names[ref]
		delete(e.names, ref)
		e.removed = append(e.removed, ref)
		return !e.images[img] && !e.namedLocked(img), nil
	case !e.images[ref]:
		return false, fmt.Errorf("%s: %w", ref, engine.ErrNotPresent)
	}
	delete(e.images, ref)
	e.removed = append(e.removed, ref)
	return !e.namedLocked(ref), nil
}

// namedLocked reports whether a tag names ref's image. Call with e.mu held.
func (e *fakeEngine) namedLocked(ref string) bool {
	for _, r := range e.names {
		if r == ref {
			return true
		}
	}
	return false
}

// Name gives ref's image the tag name, as the Docker engine of
// internal/engine does: never moving a name.
func (e *fakeEngine) Name(_ context.Context, ref, name string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.down:
		return false, errDown
	case !e.images[ref]:
		return false, fmt.Errorf("%s: %w", ref, engine.ErrNotPresent)
	case e.names[name] == ref:
		return false, nil
	case e.names[name] != "":
		return false, fmt.Errorf("name %s: %w", name, engine.ErrNameTaken)
	}
	e.names[name] = ref
	return true, nil
}

// tag gives ref's image the tag name, as someone else would, or removes
// name with an empty ref.
func (e *fakeEngine) tag(ref, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ref == "" {
		delete(e.names, name)
		return
	}
	e.names[name] = ref
}

// nameOf returns the reference whose image name names, or "".
func (e *fakeEngine) nameOf(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.names[name]
}

// dropDone drops a pak naming repo (digest of seed) as name and waits
// until it is in done/; it returns the reference.
func (h *harness) dropDone(name, repo, seed string) string {
	h.t.Helper()
	ref := h.drop(name, repo, seed)
	h.eventually(name+" is done", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, name)) })
	return ref
}

// prunePasses waits until the agent has asked the engine n more times
// whether an image is in use, which a prune pass does before it removes.
func (h *harness) prunePasses(n int) {
	h.t.Helper()
	from := h.eng.count(func(e *fakeEngine) int { return e.uses })
	h.eventually(fmt.Sprintf("%d more prune passes", n), func() bool {
		return h.eng.count(func(e *fakeEngine) int { return e.uses }) >= from+n
	})
}

func (e *fakeEngine) has(ref string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.images[ref]
}

// TestKeepImagesRemovesOlderDigest: with keep_images: 1, an image whose
// last pak left done/ is removed once a newer digest of its repository is
// present; one a container uses waits for the container; one the agent
// found present is never removed; status lists what was removed.
func TestKeepImagesRemovesOlderDigest(t *testing.T) {
	h := newHarness(t, "keep_images: 1\n")
	found := paktest.Pak{Registry: registry, Repository: "/proj/app", Digest: paktest.DigestOf("found")}.Reference("")
	h.eng.images[found] = true // pulled by someone else
	h.start()
	done := func(name string) string { return filepath.Join(h.inbox(), DoneDir, name) }
	v0 := h.dropDone("v0.pak", "proj/app", "found")
	v1 := h.dropDone("v1.pak", "proj/app", "1")
	v2 := h.dropDone("v2.pak", "proj/app", "2")
	if v0 != found {
		t.Fatalf("v0 names %s, want %s", v0, found)
	}

	h.eng.inUse(v1, true)
	for _, n := range []string{"v0.pak", "v1.pak"} {
		if err := os.Remove(done(n)); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually("v1 is kept for its container, and says so", func() bool {
		s := h.state()
		return len(s.Released) == 1 && s.Released[0].Reference == v1 && strings.Contains(s.Released[0].LastError, "in use")
	})
	if !h.eng.has(v1) || !h.eng.has(found) || !h.eng.has(v2) {
		t.Fatal("an image went while a container used it, or one the agent did not pull")
	}
	h.eng.inUse(v1, false)
	h.eventually("v1 is removed once no container uses it", func() bool { return !h.eng.has(v1) && len(h.state().Removed) == 1 })
	s := h.state()
	if len(s.Removed) != 1 || s.Removed[0].Reference != v1 || s.Removed[0].Outcome != RemovedImage || len(s.Released) != 0 {
		t.Fatalf("removed %+v, released %+v; want v1 removed and nothing released", s.Removed, s.Released)
	}
	h.rescans(3)
	if !h.eng.has(found) || !h.eng.has(v2) || slices.Contains(h.eng.removed, found) {
		t.Fatalf("removed %v; only %s may go", h.eng.removed, v1)
	}

	// Named again: pulled back, and no longer released.
	h.drop("v1-again.pak", "proj/app", "1")
	h.eventually("v1 is pulled again", func() bool { return exists(done("v1-again.pak")) && h.eng.has(v1) })
}

// TestKeepImagesNothingWhileEngineDown: with the engine down nothing is
// removed; once it answers again the older digest goes.
func TestKeepImagesNothingWhileEngineDown(t *testing.T) {
	h := newHarness(t, "keep_images: 1\n")
	h.start()
	done := func(name string) string { return filepath.Join(h.inbox(), DoneDir, name) }
	v1 := h.dropDone("v1.pak", "proj/app", "1")
	h.dropDone("v2.pak", "proj/app", "2")
	h.eng.setDown(true)
	h.eventually("the agent saw the engine down", func() bool {
		h.agent.mu.Lock()
		defer h.agent.mu.Unlock()
		return h.agent.engineDown
	})
	if err := os.Remove(done("v1.pak")); err != nil {
		t.Fatal(err)
	}
	h.eventually("v1 is released", func() bool { return len(h.state().Released) == 1 })
	h.rescans(3)
	if len(h.eng.removed) != 0 || len(h.state().Removed) != 0 {
		t.Fatalf("removed %v while the engine was down", h.eng.removed)
	}
	h.eng.setDown(false)
	h.eventually("v1 is removed once the engine answers", func() bool { return !h.eng.has(v1) && len(h.state().Removed) == 1 })
}

// listing is the names, sizes and modification times of the files in dir.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d %s %v", e.Name(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano), fi.Mode()))
	}
	return out
}

// TestConfDirKeepsImages: a conf in conf_dirs keeps its image present as a
// pak in done/ does, without anything written there; a conf rewritten for
// a newer digest releases the older one (removed with keep_images: 1); a
// conf deleted lets its image go.
func TestConfDirKeepsImages(t *testing.T) {
	confs := filepath.Join(t.TempDir(), "inbound")
	if err := os.Mkdir(confs, 0o755); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "keep_images: 1\nconf_dirs: ["+confs+"]\n")
	conf := func(seed string) (data []byte, ref string) {
		p := paktest.Pak{Kind: "MyAdapter", Registry: registry, Repository: "/proj/conf", Digest: paktest.DigestOf(seed)}
		return p.Conf(), p.Reference("")
	}
	c1, ref1 := conf("1")
	path := filepath.Join(confs, "MyAdapter.conf")
	if err := os.WriteFile(path, c1, 0o644); err != nil {
		t.Fatal(err)
	}
	before := listing(t, confs)
	h.start()
	h.eventually("the conf's image is present", func() bool { return h.eng.has(ref1) && h.pakStatus("MyAdapter.conf") == StatusPresent })
	h.rescans(3)
	if got := listing(t, confs); !slices.Equal(got, before) {
		t.Fatalf("conf_dir changed: %v, was %v", got, before)
	}

	c2, ref2 := conf("2")
	if err := os.WriteFile(path, c2, 0o644); err != nil {
		t.Fatal(err)
	}
	h.eventually("the rewritten conf's image is present and the older one removed", func() bool {
		s := h.state()
		return h.eng.has(ref2) && !h.eng.has(ref1) && len(s.Removed) == 1 && s.Removed[0].Reference == ref1
	})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	h.eventually("the deleted conf's image is let go", func() bool {
		s := h.state()
		return len(s.Paks) == 0 && len(s.Images) == 0 && len(s.Released) == 1 && s.Released[0].Reference == ref2
	})
	if !h.eng.has(ref2) {
		t.Fatal("the newest digest was removed")
	}
}

// TestConfDirRefusedWhenUnsafeOrMissing: a conf_dir others can write, one
// that does not exist, and watch_dir itself are refused at start.
func TestConfDirRefusedWhenUnsafeOrMissing(t *testing.T) {
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ dir, want string }{
		{open, "lets others drop files into it"},
		{"/nonexistent/prepull-confs", "no such file or directory"},
		{"", "must not be watch_dir"},
	} {
		h := newHarness(t, "")
		dir := tt.dir
		if dir == "" {
			dir = h.inbox()
		}
		h.writeConfig("conf_dirs: [" + dir + "]\n")
		_, err := New(Options{ConfigFile: h.cfgFile, Config: h.cfg, Engine: h.eng, Log: zapNop()})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("conf_dirs %s: %v, want an error naming it with %q", dir, err, tt.want)
		}
	}
}

// TestKeepImagesFinishesRemovalDecidedBeforeCrash: a removal saved as
// decided is finished after a restart, whether or not the engine removed
// the image before the crash; an old state's image that was pulled counts
// as the agent's.
func TestKeepImagesFinishesRemovalDecidedBeforeCrash(t *testing.T) {
	h := newHarness(t, "keep_images: 1\n")
	gone := registry + "/proj/app@" + paktest.DigestOf("gone")
	still := registry + "/proj/app@" + paktest.DigestOf("still")
	h.eng.images[still] = true
	at := time.Now().Add(-time.Hour).UTC()
	s := &State{Version: stateVersion, Released: []ImageState{
		{Reference: gone, Status: StatusPresent, Origin: OriginPulled, KeptSince: at, Removing: true},
		{Reference: still, Status: StatusPresent, Origin: OriginPulled, KeptSince: at, Removing: true},
	}}
	if err := os.MkdirAll(filepath.Join(h.dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeState(openRoot(t, filepath.Join(h.dir, "state")), s); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.eventually("both removals are finished", func() bool { return len(h.state().Removed) == 2 })
	for _, r := range h.state().Removed {
		if r.Outcome != RemovedImage {
			t.Errorf("%s: outcome %q, want %q", r.Reference, r.Outcome, RemovedImage)
		}
	}
	if h.eng.has(still) {
		t.Errorf("%s is still in the engine", still)
	}
}

// TestKeepImagesNothingOnAnEngineError: an engine that answers with an
// error (not a missing image) leaves the image alone, says why, and the
// removal happens once the engine answers properly.
func TestKeepImagesNothingOnAnEngineError(t *testing.T) {
	h := newHarness(t, "keep_images: 1\n")
	h.eng.useErr = errors.New("Error response from daemon: i/o timeout listing containers")
	h.start()
	done := func(name string) string { return filepath.Join(h.inbox(), DoneDir, name) }
	v1 := h.dropDone("v1.pak", "proj/app", "1")
	h.dropDone("v2.pak", "proj/app", "2")
	if err := os.Remove(done("v1.pak")); err != nil {
		t.Fatal(err)
	}
	h.eventually("the released image says why it stays", func() bool {
		s := h.state()
		return len(s.Released) == 1 && strings.Contains(s.Released[0].LastError, "i/o timeout")
	})
	h.prunePasses(2)
	if !h.eng.has(v1) || len(h.eng.removed) != 0 {
		t.Fatalf("removed %v after an engine error", h.eng.removed)
	}
	h.eng.mu.Lock()
	h.eng.useErr = nil
	h.eng.mu.Unlock()
	h.eventually("v1 is removed once the engine answers", func() bool { return !h.eng.has(v1) && len(h.state().Removed) == 1 })
}

// TestAgentLocalName: the agent gives a kept image its local name, puts the
// name back at the next verify when it was removed, and, with local_name
// off, gives none.
func TestAgentLocalName(t *testing.T) {
	h := newHarness(t, "verify_interval: 50ms\n")
	h.start()
	ref := h.drop("v.pak", "proj/v", "v")
	name := "prepull.invalid/proj/v:MyAdapter-" + strings.TrimPrefix(paktest.DigestOf("v"), "sha256:")[:12]
	h.eventually("the image gets its local name", func() bool { return h.eng.nameOf(name) == ref })
	h.eng.tag("", name)
	h.eventually("a verify puts the name back", func() bool { return h.eng.nameOf(name) == ref })
	if n := h.eng.pullCount(ref); n != 1 {
		t.Errorf("pulled %d times, want 1: a removed name is no removed image", n)
	}

	off := newHarness(t, "local_name: false\nverify_interval: 50ms\n")
	off.start()
	ref = off.drop("v.pak", "proj/v", "v")
	off.looks(ref, 3)
	if n := off.eng.count(func(e *fakeEngine) int { return len(e.names) }); n != 0 {
		t.Errorf("local_name: false, and the agent named %v", off.eng.names)
	}
}

// TestKeepImagesRemovesOnlyItsOwnName: keep_images removes prepull's local
// name with the image; an image someone else tagged too keeps that tag and
// stays, and only prepull's names of it go.
func TestKeepImagesRemovesOnlyItsOwnName(t *testing.T) {
	h := newHarness(t, "keep_images: 1\n")
	h.start()
	done := func(name string) string { return filepath.Join(h.inbox(), DoneDir, name) }
	v1 := h.dropDone("v1.pak", "proj/app", "1")
	v2 := h.dropDone("v2.pak", "proj/app", "2")
	v3 := h.dropDone("v3.pak", "proj/app", "3")
	local := func(seed string) string {
		return "prepull.invalid/proj/app:MyAdapter-" + strings.TrimPrefix(paktest.DigestOf(seed), "sha256:")[:12]
	}
	h.eventually("every image has its local name", func() bool {
		return h.eng.nameOf(local("1")) == v1 && h.eng.nameOf(local("2")) == v2 && h.eng.nameOf(local("3")) == v3
	})
	h.eng.tag(v2, "ops/app:pinned") // someone else's name for v2
	for _, n := range []string{"v1.pak", "v2.pak"} {
		if err := os.Remove(done(n)); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually("v1 and v2 are removed", func() bool { return len(h.state().Removed) == 2 })
	outcomes := map[string]string{}
	for _, r := range h.state().Removed {
		outcomes[r.Reference] = r.Outcome
	}
	if outcomes[v1] != RemovedImage || outcomes[v2] != RemovedUntagged {
		t.Errorf("outcomes %v, want v1 %s and v2 %s", outcomes, RemovedImage, RemovedUntagged)
	}
	if h.eng.nameOf(local("1")) != "" || h.eng.nameOf(local("2")) != "" {
		t.Errorf("prepull's names of removed images stay: %v", h.eng.names)
	}
	if h.eng.nameOf("ops/app:pinned") != v2 || h.eng.nameOf(local("3")) != v3 {
		t.Errorf("a name prepull did not give, or a kept image's name, went: %v", h.eng.names)
	}
}
