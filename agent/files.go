package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/pak"
)

// The folders inside watch_dir that hold paks the agent is finished with.
const (
	DoneDir   = "done"
	FailedDir = "failed"
)

// errorSuffix is appended to a failed pak's name for the file that says why.
const errorSuffix = ".error"

// checkPrivate makes sure dir exists as a folder that only this process's
// user can write to, creating it (mode 0700) when missing. Anyone who can
// drop a pak into watch_dir can make the agent pull with its credentials, and
// anyone who can write state_dir can forge the state. The error wraps
// config.ErrInvalid: it is the administrator's to fix.
func checkPrivate(what, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%s %s: %w: %v", what, dir, config.ErrInvalid, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %v", what, dir, config.ErrInvalid, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s: %w: not a directory", what, dir, config.ErrInvalid)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s %s: %w: owned by uid %d, not by the agent's user (uid %d): chown it to the agent's user",
			what, dir, config.ErrInvalid, st.Uid, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s %s: %w: mode %04o lets others drop files into it: chmod go-w %s",
			what, dir, config.ErrInvalid, perm, dir)
	}
	return nil
}

// makeSubdir makes watch_dir's done/ or failed/ folder, refusing a symlink
// or anything else that is not a plain folder.
func makeSubdir(watchDir, name string) (string, error) {
	dir := filepath.Join(watchDir, name)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("make %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("make %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s: %w: must be a directory, not a symlink or file", dir, config.ErrInvalid)
	}
	return dir, nil
}

// eligibleName reports whether a file name in watch_dir is one the agent
// takes: a .pak that is not a dot-file (editors, rsync and many copy tools
// write partial copies under a dot-name and rename them when complete).
func eligibleName(name string) bool {
	return !strings.HasPrefix(name, ".") && strings.HasSuffix(strings.ToLower(name), ".pak") && len(name) > len(".pak")
}

// fileID is what tells whether a file changed: size, modification time and
// inode.
type fileID struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func idOf(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	return id
}

// errChanged means a file changed while it was being read.
var errChanged = errors.New("file changed while it was read")

// errNotRegular means a name in watch_dir is a symlink, folder or other
// special file. The agent never follows symlinks out of watch_dir.
var errNotRegular = errors.New("not a regular file")

// readPak reads the pak at path without following symlinks, hashing its
// bytes and reading its image through pak.Read, the one pak reader. want, when
// not zero, is the identity the file had when it settled; a file that differs
// from it, or changes during the read, gives errChanged. The pak error (which
// wraps pak.ErrInvalid) is returned in perr; err is for failures to read the
// file at all.
func readPak(path string, want fileID) (sha string, img pak.Image, id fileID, perr, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			err = errNotRegular
		}
		return "", pak.Image{}, fileID{}, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", pak.Image{}, fileID{}, nil, err
	}
	if !fi.Mode().IsRegular() {
		return "", pak.Image{}, fileID{}, nil, errNotRegular
	}
	id = idOf(fi)
	if want != (fileID{}) && id != want {
		return "", pak.Image{}, id, nil, errChanged
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, id.size)); err != nil {
		return "", pak.Image{}, id, nil, err
	}
	img, perr = pak.Read(filepath.Base(path), f, id.size)
	if fi, err := f.Stat(); err != nil || idOf(fi) != id {
		return "", pak.Image{}, id, nil, errChanged
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), img, id, perr, nil
}

// freeName returns a path in dir for a file called name that no file takes
// yet: name itself, else NAME.2.pak, NAME.3.pak and so on. Nothing is ever
// replaced.
func freeName(dir, name string) string {
	base, ext := name, ""
	if i := strings.LastIndex(name, "."); i > 0 {
		base, ext = name[:i], name[i:]
	}
	for n := 1; ; n++ {
		candidate := name
		if n > 1 {
			candidate = base + "." + strconv.Itoa(n) + ext
		}
		p := filepath.Join(dir, candidate)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Lstat(p + errorSuffix); errors.Is(err, fs.ErrNotExist) {
				return p
			}
		}
	}
}

// moveFile moves src to dst, a path freeName chose, without ever replacing a
// file: when dst was taken meanwhile it moves to the next free name. It
// returns where the file went.
func moveFile(src, dst string) (string, error) {
	for range 100 {
		err := renameNoReplace(src, dst)
		if err == nil {
			return dst, syncDir(filepath.Dir(dst))
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("move %s: %w", src, err)
		}
		dst = freeName(filepath.Dir(dst), filepath.Base(src))
	}
	return "", fmt.Errorf("move %s: no free name in %s", src, filepath.Dir(dst))
}

// writeErrorFile writes NAME.pak.error beside where a failed pak goes,
// saying why the pak cannot be used.
func writeErrorFile(pakPath, sha string, reason error, now time.Time) error {
	text := fmt.Sprintf("%s\n\nprepull agent gave up on this pak at %s: it does not name a pullable image.\nsha256: %s\nFix the pak (or default_registry), then copy it into the inbox again.\n",
		reason, now.Format(time.RFC3339), strings.TrimPrefix(sha, "sha256:"))
	if err := os.WriteFile(pakPath+errorSuffix, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", pakPath+errorSuffix, err)
	}
	return nil
}

// renameChecked renames src to dst unless dst exists. Between the check and
// the rename another process could create dst; only the agent writes into
// done/ and failed/, so that does not happen in practice.
func renameChecked(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: fs.ErrExist}
	}
	return os.Rename(src, dst)
}
