package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
