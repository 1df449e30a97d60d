package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/config"
)

// TestCheckSafeSymlinks points watch_dir through symlinks at a safe,
// root-owned inbox. A link that another user owns, or that sits in another
// user's folder, could be repointed by that user between the check and
// the read: refused, naming the link or folder. Links that only root (or
// the agent's user) can change are followed, absolute or relative.
func TestCheckSafeSymlinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test changes owners: run it as root")
	}
	const nobody = 65534
	tests := []struct {
		name string
		// link makes, in the test's folder root, the path to check.
		link func(t *testing.T, root, inbox string) string
		bad  string // a part of the error; "" when safe
	}{
		{"root's link, absolute", func(t *testing.T, root, inbox string) string {
			return symlinkAs(t, inbox, filepath.Join(root, "link"), 0)
		}, ""},
		{"root's link, relative, through ..", func(t *testing.T, root, inbox string) string {
			mkdirAs(t, filepath.Join(root, "sub"), 0o755, 0)
			return symlinkAs(t, "../srv/inbox", filepath.Join(root, "sub", "link"), 0)
		}, ""},
		{"root's links in a chain, then a folder below", func(t *testing.T, root, inbox string) string {
			symlinkAs(t, filepath.Join(root, "srv"), filepath.Join(root, "a"), 0)
			symlinkAs(t, "a", filepath.Join(root, "b"), 0)
			return filepath.Join(root, "b", "inbox")
		}, ""},
		{"another user's link in that user's folder", func(t *testing.T, root, inbox string) string {
			home := mkdirAs(t, filepath.Join(root, "home"), 0o755, nobody)
			return symlinkAs(t, inbox, filepath.Join(home, "inbox"), nobody)
		}, "folder " + "ROOT/home is owned by uid 65534"},
		{"root's link in another user's folder", func(t *testing.T, root, inbox string) string {
			home := mkdirAs(t, filepath.Join(root, "home"), 0o755, nobody)
			return symlinkAs(t, inbox, filepath.Join(home, "inbox"), 0)
		}, "folder ROOT/home is owned by uid 65534"},
		{"another user's link in root's folder", func(t *testing.T, root, inbox string) string {
			return symlinkAs(t, inbox, filepath.Join(root, "link"), nobody)
		}, "symlink ROOT/link is owned by uid 65534"},
		{"root's link through another user's link", func(t *testing.T, root, inbox string) string {
			symlinkAs(t, filepath.Join(root, "srv"), filepath.Join(root, "theirs"), nobody)
			return symlinkAs(t, "theirs/inbox", filepath.Join(root, "link"), 0)
		}, "symlink ROOT/theirs is owned by uid 65534"},
		{"a link to a world-writable folder", func(t *testing.T, root, inbox string) string {
			open := mkdirAs(t, filepath.Join(root, "open"), 0o777, 0)
			return symlinkAs(t, open, filepath.Join(root, "link"), 0)
		}, "mode 0777 lets others drop files into it"},
		{"a link to a file", func(t *testing.T, root, inbox string) string {
			if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return symlinkAs(t, filepath.Join(root, "file"), filepath.Join(root, "link"), 0)
		}, "ROOT/file is not a directory"},
		{"a loop", func(t *testing.T, root, inbox string) string {
			symlinkAs(t, "loop", filepath.Join(root, "loop"), 0)
			return filepath.Join(root, "loop")
		}, "more than 40 symlinks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.Chmod(root, 0o755); err != nil {
				t.Fatal(err)
			}
			mkdirAs(t, filepath.Join(root, "srv"), 0o755, 0)
			inbox := mkdirAs(t, filepath.Join(root, "srv", "inbox"), 0o700, 0)
			dir := tt.link(t, root, inbox)
			err := checkSafe("watch_dir", dir)
			bad := strings.ReplaceAll(tt.bad, "ROOT", root)
			switch {
			case tt.bad == "" && err != nil:
				t.Errorf("checkSafe(%s): %v, want nil", dir, err)
			case tt.bad != "" && (!errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), bad)):
				t.Errorf("checkSafe(%s): %v, want an error saying %q", dir, err, bad)
			}
		})
	}
}

// mkdirAs makes the folder dir with mode perm, owned by uid.
func mkdirAs(t *testing.T, dir string, perm os.FileMode, uid int) string {
	t.Helper()
	if err := os.Mkdir(dir, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// symlinkAs makes the symlink link to target, owned by uid.
func symlinkAs(t *testing.T, target, link string, uid int) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, uid, uid); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestWatcherKeepsCheckedFolder checks watch_dir (a folder, then a root's
// symlink to one) and finds a pak there, then swaps what the path leads
// to for a world-writable folder holding another pak of the same name: by
// renaming folders, then by repointing the link. The watcher reads the
// folder it checked, never the one swapped in, however often it tries
// (three settle checks, then a rescan that finds the path unsafe and three
// more): one pak delivered, the checked one.
func TestWatcherKeepsCheckedFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test checks owners: run it as root")
	}
	swaps := []struct {
		name string
		// watch returns the path watch_dir names, leading to checked;
		// swap makes it lead to evil.
		watch func(t *testing.T, base, checked string) string
		swap  func(t *testing.T, base, checked, evil string)
	}{
		{"rename", func(t *testing.T, base, checked string) string { return checked },
			func(t *testing.T, base, checked, evil string) {
				rename(t, checked, checked+".old")
				rename(t, evil, checked)
			}},
		{"symlink", func(t *testing.T, base, checked string) string {
			return symlinkAs(t, checked, filepath.Join(base, "link"), 0)
		}, func(t *testing.T, base, checked, evil string) {
			symlinkAs(t, evil, filepath.Join(base, "link.new"), 0)
			rename(t, filepath.Join(base, "link.new"), filepath.Join(base, "link"))
		}},
	}
	for _, tt := range swaps {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			checked := mkdirAs(t, filepath.Join(base, "inbox"), 0o700, 0)
			evil := mkdirAs(t, filepath.Join(base, "evil"), 0o777, 0)
			for dir, body := range map[string]string{checked: "the checked pak", evil: "the swapped-in pak"} {
				if err := os.WriteFile(filepath.Join(dir, "x.pak"), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			watch := tt.watch(t, base, checked)
			var got []found
			w := newWatcher(watch, timing{rescan: time.Hour}, zap.NewNop(), func(f found) { got = append(got, f) })
			w.open = func() (*os.Root, error) { return openSafe("watch_dir", watch) }
			defer w.release()
			w.scan()
			if w.unsafe || len(w.cands) != 1 {
				t.Fatalf("before the swap: unsafe %v, candidates %v; want safe with x.pak", w.unsafe, w.cands)
			}
			tt.swap(t, base, checked, evil)
			for range 3 {
				w.checkSettled()
			}
			w.scan()
			if !w.unsafe {
				t.Error("the rescan found the swapped-in world-writable folder safe")
			}
			for range 3 {
				w.checkSettled()
			}
			sum := sha256.Sum256([]byte("the checked pak"))
			want := "sha256:" + hex.EncodeToString(sum[:])
			if len(got) != 1 || got[0].sha != want {
				var shas []string
				for _, f := range got {
					shas = append(shas, f.sha)
				}
				t.Fatalf("delivered %v, want only the checked pak %s", shas, want)
			}
		})
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// TestStateDirKeptAfterSwap locks a checked state_dir, then renames it away
// and puts a world-writable folder in its place: the state is still saved
// into the folder checked and locked, never the one swapped in.
func TestStateDirKeptAfterSwap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test checks owners: run it as root")
	}
	state := filepath.Join(t.TempDir(), "state")
	root, err := openPrivate("state_dir", state)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lockStateDir(root)
	if err != nil {
		root.Close()
		t.Fatal(err)
	}
	defer l.close()
	rename(t, state, state+".old")
	mkdirAs(t, state, 0o777, 0)
	if err := writeState(l.dir, &State{Version: stateVersion}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(state, StateFile)); err == nil {
		t.Error("the state was written into the folder swapped in")
	}
	if _, err := os.Lstat(filepath.Join(state+".old", StateFile)); err != nil {
		t.Errorf("the state is not in the folder checked and locked: %v", err)
	}
}

// TestMovesStayInCheckedWatchDir swaps watch_dir, while a pak's image is
// pulled, for a world-writable folder holding the same pak: the finished
// pak is moved nowhere (the swapped-in folder is not safe), and nothing is
// made in or moved into the folder swapped in. Once the checked folder is
// back, the pak moves into its done/.
func TestMovesStayInCheckedWatchDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test checks owners: run it as root")
	}
	h := newHarness(t, "")
	h.eng.pullWait = make(chan struct{})
	ref := h.drop("m.pak", "proj/m", "m")
	inbox := h.inbox()
	body, err := os.ReadFile(filepath.Join(inbox, "m.pak"))
	if err != nil {
		t.Fatal(err)
	}
	h.start()
	h.eventually("the pull started", func() bool { return h.eng.pullCount(ref) == 1 })
	rename(t, inbox, inbox+".checked")
	mkdirAs(t, inbox, 0o777, 0)
	if err := os.WriteFile(filepath.Join(inbox, "m.pak"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	close(h.eng.pullWait)
	h.eventually("the finished pak was refused a move, or moved", func() bool {
		return strings.Contains(h.logText(), "cannot open watch_dir to move finished paks") || exists(filepath.Join(inbox, DoneDir))
	})
	if entries, _ := os.ReadDir(inbox); len(entries) != 1 || entries[0].Name() != "m.pak" {
		t.Fatalf("the folder swapped in holds %v, want m.pak alone", entries)
	}
	if !exists(filepath.Join(inbox+".checked", "m.pak")) {
		t.Fatal("the pak left the checked folder")
	}
	rename(t, inbox, inbox+".evil")
	rename(t, inbox+".checked", inbox)
	h.eventually("the pak is in the checked folder's done/", func() bool { return exists(filepath.Join(inbox, DoneDir, "m.pak")) })
}

// TestFinishedPakWorkKeepsCheckedFolders opens watch_dir for a round of
// moves, then swaps it for a folder whose done/ and failed/ are symlinks
// to a victim folder: the move and the .error file still land in the
// folders checked and opened, never through the links.
func TestFinishedPakWorkKeepsCheckedFolders(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test checks owners: run it as root")
	}
	base := t.TempDir()
	watch := mkdirAs(t, filepath.Join(base, "inbox"), 0o700, 0)
	victim := mkdirAs(t, filepath.Join(base, "victim"), 0o700, 0)
	for _, name := range []string{"good.pak", "bad.pak"} {
		if err := os.WriteFile(filepath.Join(watch, name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, made, err := openInbox(watch)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if len(made) != 2 {
		t.Errorf("made %v, want done/ and failed/", made)
	}
	rename(t, watch, watch+".checked")
	mkdirAs(t, watch, 0o700, 0)
	for _, sub := range []string{DoneDir, FailedDir} {
		symlinkAs(t, victim, filepath.Join(watch, sub), 0)
	}
	if _, err := moveFile(b.watch, "good.pak", b.done, freeName(b.done, "good.pak")); err != nil {
		t.Fatal(err)
	}
	dst := freeName(b.failed, "bad.pak")
	if err := writeErrorFile(b.failed, dst, &PakState{LastError: "DIGEST is missing"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := moveFile(b.watch, "bad.pak", b.failed, dst); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(victim); len(entries) != 0 {
		t.Errorf("the victim folder holds %v", entries)
	}
	for _, want := range []string{"done/good.pak", "failed/bad.pak", "failed/bad.pak.error"} {
		if !exists(filepath.Join(watch+".checked", want)) {
			t.Errorf("%s is not in the checked folder", want)
		}
	}
}
