//go:build unix

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/prepull/prepull/internal/config"
)

// maxLinks bounds the symlinks followed in one folder path, as the kernel's
// ELOOP does.
const maxLinks = 40

// checkSafe checks dir and every folder on the way to it, as OpenSSH's
// StrictModes checks a home. Anyone who can drop a pak into watch_dir can
// make the agent pull with its credentials, and anyone who can write
// state_dir can forge the state; anyone who can write a folder on the way,
// or repoint a symlink on it, can replace them. So dir must end at a folder
// owned by root or this process's user that neither group nor others can
// write, and each folder passed through, from /, must be owned by root or
// this user and not writable by group or others unless sticky (as /tmp is).
//
// The path is walked as written, one component at a time, each opened with
// openat(O_NOFOLLOW) in the folder checked before it, so that what is
// checked is what is opened. A component that is a symlink is followed only
// when the link itself is owned by root or this user (the folder holding it,
// checked already, keeps others from replacing it), and its target is
// walked the same way. The error wraps config.ErrInvalid and names the
// folder or link at fault.
func checkSafe(what, dir string) error {
	r, err := openSafe(what, dir)
	if err == nil {
		r.Close()
	}
	return err
}

// openSafe checks dir as checkSafe does and returns the very folder it
// checked, open, so that the caller works relative to it: a later rename or
// symlink swap on the path cannot redirect it. The error wraps
// config.ErrInvalid.
func openSafe(what, dir string) (*os.Root, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s %s: %w: "+format, append([]any{what, dir, config.ErrInvalid}, args...)...)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fail("%w", err)
	}
	w := &safeWalk{euid: os.Geteuid()}
	defer w.close()
	if err := w.walk(abs, fail); err != nil {
		return nil, err
	}
	r, err := bindRoot(abs, w.top().fd)
	if err != nil {
		return nil, fail("%w", err)
	}
	return r, nil
}

// bindRoot returns an os.Root on the folder open at fd, which abs named
// when it was walked. os.Root opens by name, so it opens abs again and
// keeps it only when it is the same folder (device and inode) as fd: a swap
// since the walk is refused, not followed.
func bindRoot(abs string, fd int) (*os.Root, error) {
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, err
	}
	var want unix.Stat_t
	if err := unix.Fstat(fd, &want); err != nil {
		r.Close()
		return nil, err
	}
	fi, err := r.Stat(".")
	if err != nil {
		r.Close()
		return nil, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || uint64(st.Dev) != uint64(want.Dev) || st.Ino != want.Ino {
		r.Close()
		return nil, fmt.Errorf("%s was replaced while it was checked", abs)
	}
	return r, nil
}

// walk walks abs from /, leaving its folder the current one.
func (w *safeWalk) walk(abs string, fail func(string, ...any) error) error {
	if err := w.enter(unix.AT_FDCWD, "/", "/", abs == "/"); err != nil {
		return fail("%w", err)
	}
	todo := strings.Split(abs, "/")
	for links := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			w.up()
			continue
		}
		top := w.top()
		p := filepath.Join(top.path, c)
		var st unix.Stat_t
		if err := unix.Fstatat(top.fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fail("%s: %w", p, err)
		}
		if uint32(st.Mode)&unix.S_IFMT != unix.S_IFLNK {
			if err := w.enter(top.fd, c, p, last(todo)); err != nil {
				return fail("%w", err)
			}
			continue
		}
		if links++; links > maxLinks {
			return fail("more than %d symlinks on the way", maxLinks)
		}
		if st.Uid != 0 && int(st.Uid) != w.euid {
			return fail("symlink %s is owned by uid %d, not by root or the agent's user (uid %d): its owner can point it elsewhere: name the folder it points to, or chown -h it", p, st.Uid, w.euid)
		}
		target, err := readlinkat(top.fd, c)
		if err != nil {
			return fail("%s: %w", p, err)
		}
		if strings.HasPrefix(target, "/") {
			w.toRoot()
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return nil
}

// last tells whether no component but "" and "." is left: the folder just
// entered is the one asked for.
func last(todo []string) bool {
	for _, c := range todo {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}

// safeWalk holds the folders walked so far, / first, each open.
type safeWalk struct {
	euid    int
	folders []walked
}

// walked is a folder walked: its descriptor and its path.
type walked struct {
	fd   int
	path string
}

func (w *safeWalk) top() walked { return w.folders[len(w.folders)-1] }

// enter opens name in the folder at dirfd, without following a symlink,
// checks it as the folder asked for (final) or one on the way, and makes it
// the current folder.
func (w *safeWalk) enter(dirfd int, name, path string, final bool) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%s is not a directory", path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	w.folders = append(w.folders, walked{fd: fd, path: path})
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if st.Uid != 0 && int(st.Uid) != w.euid {
		return fmt.Errorf("folder %s is owned by uid %d, not by root or the agent's user (uid %d): chown it", path, st.Uid, w.euid)
	}
	perm := uint32(st.Mode) & 0o777
	switch {
	case final && perm&0o022 != 0:
		return fmt.Errorf("mode %04o lets others drop files into it: chmod go-w %s", perm, path)
	case perm&0o022 != 0 && uint32(st.Mode)&unix.S_ISVTX == 0:
		return fmt.Errorf("folder %s above it has mode %04o: others can replace what is inside it: chmod go-w %s (or chmod +t)", path, perm, path)
	}
	return nil
}

// up goes back to the folder above the current one; / stays /.
func (w *safeWalk) up() {
	if len(w.folders) > 1 {
		unix.Close(w.top().fd)
		w.folders = w.folders[:len(w.folders)-1]
	}
}

// toRoot goes back to /, for an absolute symlink target.
func (w *safeWalk) toRoot() {
	for len(w.folders) > 1 {
		w.up()
	}
}

func (w *safeWalk) close() {
	for _, f := range w.folders {
		unix.Close(f.fd)
	}
}

// readlinkat reads the symlink name in the folder at dirfd.
func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
