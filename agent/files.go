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

// openPrivate makes sure dir exists (creating it, mode 0700, when missing)
// and is safe, and returns it open: see openSafe. The error wraps
// config.ErrInvalid: it is the administrator's to fix.
func openPrivate(what, dir string) (*os.Root, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %w", what, dir, config.ErrInvalid, err)
	}
	return openSafe(what, dir)
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
// takes: a .pak, or a slimmed pak (pak.SlimSuffix, what prepull keep
// writes), that is not a dot-file (editors, rsync and many copy tools write
// partial copies under a dot-name and rename them when complete).
func eligibleName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	lower := strings.ToLower(name)
	for _, suffix := range []string{".pak", pak.SlimSuffix} {
		if strings.HasSuffix(lower, suffix) && len(name) > len(suffix) {
			return true
		}
	}
	return false
}

// eligibleConf reports whether a file name in one of conf_dirs is one the
// agent reads: a .conf that is not a dot-file.
func eligibleConf(name string) bool {
	return !strings.HasPrefix(name, ".") && strings.HasSuffix(strings.ToLower(name), ".conf") && len(name) > len(".conf")
}

// checkConfDir checks a folder of conf_dirs without changing anything in
// it: it must exist, be a folder, and be safe as watch_dir must (see
// checkSafe), for whoever can write a conf there can make the agent pull
// with its credentials. It must not be watch_dir or a folder inside it.
func checkConfDir(dir, watchDir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("conf_dirs %s: %w: %w", dir, config.ErrInvalid, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("conf_dirs %s: %w: not a directory", dir, config.ErrInvalid)
	}
	if dir == watchDir || strings.HasPrefix(dir, watchDir+string(filepath.Separator)) {
		return fmt.Errorf("conf_dirs %s: %w: must not be watch_dir %s or a folder inside it", dir, config.ErrInvalid, watchDir)
	}
	return checkSafe("conf_dirs", dir)
}

// fileID is what tells whether a file changed: size, modification time and
// inode.
type fileID struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func idOf(fi fs.FileInfo) fileID {
	return fileID{size: fi.Size(), mtime: fi.ModTime(), ino: fileIno(fi)}
}

// errChanged means a file changed while it was being read.
var errChanged = errors.New("file changed while it was read")

// errNotRegular means a name in watch_dir is a symlink, folder or other
// special file. The agent never follows symlinks out of watch_dir.
var errNotRegular = errors.New("not a regular file")

// readPak reads the pak at path without following symlinks, hashing its
// bytes and reading its image through pak.Read, the one pak reader. want, when
// not zero, is the identity the file had when it settled; a file that differs
// from it, or changes during the read, gives errChanged (with the identity
// it has now in found.id). A pak that names no pullable image is no error:
// found.perr says why; err is for failures to read the file at all.
//
// It opens the file itself rather than with pak.OpenFile, which follows
// symlinks as a command line does: the agent never follows a symlink out of
// watch_dir, and it hashes the very bytes it reads.
func readPak(path string, want fileID) (found, error) {
	return readOpen(path, want, func(flag int) (*os.File, error) { return os.OpenFile(path, flag, 0) })
}

// readPakIn is readPak for the file name in the folder root, the one the
// watcher checked and holds: path only names it. Within root a symlink
// never leads out of it; it is read only when it leads to the very file
// that settled (want's inode).
func readPakIn(root *os.Root, name, path string, want fileID) (found, error) {
	return readOpen(path, want, func(flag int) (*os.File, error) { return root.OpenFile(name, flag, 0) })
}

// readOpen is readPak and readPakIn, the file opened by open.
func readOpen(path string, want fileID, open func(flag int) (*os.File, error)) (found, error) {
	f, err := open(os.O_RDONLY | oNoFollow | syscall.O_NONBLOCK)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			err = errNotRegular
		}
		return found{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return found{}, err
	}
	if !fi.Mode().IsRegular() {
		return found{}, errNotRegular
	}
	r := found{path: path, id: idOf(fi)}
	if want != (fileID{}) && r.id != want {
		return found{id: r.id}, errChanged
	}
	if r.sha, err = hashOpen(f, r.id.size); err != nil {
		return found{id: r.id}, err
	}
	r.img, r.perr = pak.Read(filepath.Base(path), f, r.id.size)
	if fi, err := f.Stat(); err != nil || idOf(fi) != r.id {
		return found{id: r.id}, errChanged
	}
	return r, nil
}

// hashFile returns the sha256 of the regular file at path, as readPak
// does, without following a symlink.
func hashFile(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", errNotRegular
	}
	return hashOpen(f, fi.Size())
}

// hashOpen returns "sha256:" and the hex sha256 of f's first size bytes.
func hashOpen(f *os.File, size int64) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
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
// saying why p cannot be used and the one thing to do about it.
func writeErrorFile(pakPath string, p *PakState, now time.Time) error {
	what, advice := "it does not name a pullable image", "Fix the pak, then copy it into the inbox again.\n"
	switch {
	case p.ErrorKind == ErrorPlatform:
		// The reason ends with how to rebuild the image: the pak is fine.
		what, advice = "its image cannot run on this proxy", ""
	case strings.Contains(p.LastError, pak.ErrNoRegistry.Error()):
		advice = "Set default_registry in the configuration (or give the pak a REGISTRY), then copy the pak into the inbox again.\n"
	}
	text := fmt.Sprintf("%s\n\nprepull agent gave up on this pak at %s: %s.\nsha256: %s\n%s",
		p.LastError, now.Format(time.RFC3339), what, strings.TrimPrefix(p.SHA256, "sha256:"), advice)
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
