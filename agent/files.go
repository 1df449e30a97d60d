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

// inbox is watch_dir and its done/ and failed/ folders, open: the agent
// reads, moves and writes finished paks relative to them, so that a rename
// or symlink swap of watch_dir after its check cannot redirect it.
type inbox struct {
	dir                 string // watch_dir, as configured
	watch, done, failed *os.Root
}

// openInbox checks watch_dir as openSafe does, opens it, and opens its
// done/ and failed/ relative to it, making them when missing. made names
// the folders it made.
func openInbox(dir string) (b *inbox, made []string, err error) {
	w, err := openSafe("watch_dir", dir)
	if err != nil {
		return nil, nil, err
	}
	b = &inbox{dir: dir, watch: w}
	for _, sub := range []string{DoneDir, FailedDir} {
		r, fresh, err := openSub(w, sub)
		if err != nil {
			b.close()
			return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, sub), err)
		}
		if fresh {
			made = append(made, filepath.Join(dir, sub))
		}
		if sub == DoneDir {
			b.done = r
		} else {
			b.failed = r
		}
	}
	return b, made, nil
}

// openSub opens the folder name in watch, making it (mode 0700) when
// missing, and refuses a symlink or anything else that is not a plain
// folder. fresh says it was made.
func openSub(watch *os.Root, name string) (r *os.Root, fresh bool, err error) {
	err = watch.Mkdir(name, 0o700)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	fresh = err == nil
	fi, err := watch.Lstat(name)
	if err != nil {
		return nil, false, err
	}
	if !fi.IsDir() {
		return nil, false, fmt.Errorf("%w: must be a directory, not a symlink or file", config.ErrInvalid)
	}
	if r, err = watch.OpenRoot(name); err != nil {
		return nil, false, err
	}
	// Only root or the agent's user can write watch_dir (openSafe), so the
	// folder cannot be swapped for a link since the Lstat; check anyway.
	if got, err := r.Stat("."); err != nil || fileIno(got) != fileIno(fi) {
		r.Close()
		return nil, false, fmt.Errorf("%w: it was replaced while it was opened", config.ErrInvalid)
	}
	return r, fresh, nil
}

// folder returns the open folder that dir, one of the agent's three, names;
// nil for any other.
func (b *inbox) folder(dir string) *os.Root {
	switch dir {
	case b.dir:
		return b.watch
	case filepath.Join(b.dir, DoneDir):
		return b.done
	case filepath.Join(b.dir, FailedDir):
		return b.failed
	}
	return nil
}

func (b *inbox) close() {
	for _, r := range []*os.Root{b.watch, b.done, b.failed} {
		if r != nil {
			r.Close()
		}
	}
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

// readPakIn reads the pak called name in the folder root, without following
// symlinks, hashing its bytes and reading its image through pak.Read, the
// one pak reader; path only names it. want, when not zero, is the identity
// the file had when it settled; a file that differs from it, or changes
// during the read, gives errChanged (with the identity it has now in
// found.id). A pak that names no pullable image is no error: found.perr
// says why; err is for failures to read the file at all.
//
// It opens the file itself rather than with pak.OpenFile, which follows
// symlinks as a command line does: the agent never follows a symlink out of
// the folder it checked and holds, and it hashes the very bytes it reads.
func readPakIn(root *os.Root, name, path string, want fileID) (found, error) {
	return readOpen(path, want, func(flag int) (*os.File, error) { return root.OpenFile(name, flag, 0) })
}

// readOpen is readPakIn, the file opened by open.
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

// hashIn returns the sha256 of the regular file name in root, as readPakIn
// does, without following a symlink.
func hashIn(root *os.Root, name string) (string, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|oNoFollow|syscall.O_NONBLOCK, 0)
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

// freeName returns a name in the folder dir for a file called name that no
// file takes yet: name itself, else NAME.2.pak, NAME.3.pak and so on.
// Nothing is ever replaced.
func freeName(dir *os.Root, name string) string {
	base, ext := name, ""
	if i := strings.LastIndex(name, "."); i > 0 {
		base, ext = name[:i], name[i:]
	}
	for n := 1; ; n++ {
		candidate := name
		if n > 1 {
			candidate = base + "." + strconv.Itoa(n) + ext
		}
		if _, err := dir.Lstat(candidate); errors.Is(err, fs.ErrNotExist) {
			if _, err := dir.Lstat(candidate + errorSuffix); errors.Is(err, fs.ErrNotExist) {
				return candidate
			}
		}
	}
}

// moveFile moves the file name in the folder from to the folder to, as dst,
// a name freeName chose, without ever replacing a file: when dst was taken
// meanwhile it moves to the next free name. It returns the name it got.
func moveFile(from *os.Root, name string, to *os.Root, dst string) (string, error) {
	for range 100 {
		err := renameNoReplace(from, name, to, dst)
		if err == nil {
			return dst, syncRoot(to)
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("move %s: %w", filepath.Join(from.Name(), name), err)
		}
		dst = freeName(to, name)
	}
	return "", fmt.Errorf("move %s: no free name in %s", filepath.Join(from.Name(), name), to.Name())
}

// writeErrorFile writes NAME.pak.error in the folder dir, beside where the
// failed pak called name goes, saying why p cannot be used and the one
// thing to do about it. It never replaces a file.
func writeErrorFile(dir *os.Root, name string, p *PakState, now time.Time) error {
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
	f, err := dir.OpenFile(name+errorSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.WriteString(text)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir.Name(), name+errorSuffix), err)
	}
	return nil
}
