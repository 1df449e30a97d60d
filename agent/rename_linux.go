package agent

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames the file oldName in the folder from to newName in
// the folder to, failing with an error that wraps fs.ErrExist when newName
// exists. It uses renameat2(RENAME_NOREPLACE) on the folders' descriptors,
// and on a file system without it checks first and renames (renameat):
// only the agent writes into done/ and failed/, so nothing creates the name
// in between.
func renameNoReplace(from *os.Root, oldName string, to *os.Root, newName string) error {
	fail := func(err error) error {
		return &os.LinkError{Op: "rename", Old: filepath.Join(from.Name(), oldName), New: filepath.Join(to.Name(), newName), Err: err}
	}
	src, err := from.Open(".")
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	dst, err := to.Open(".")
	if err != nil {
		return fail(err)
	}
	defer dst.Close()
	srcFd, dstFd := int(src.Fd()), int(dst.Fd())
	err = unix.Renameat2(srcFd, oldName, dstFd, newName, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		var st unix.Stat_t
		if err = unix.Fstatat(dstFd, newName, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			err = unix.EEXIST
		} else if errors.Is(err, unix.ENOENT) {
			err = unix.Renameat(srcFd, oldName, dstFd, newName)
		}
	}
	if err != nil {
		return fail(err)
	}
	return nil
}
