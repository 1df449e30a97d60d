//go:build !linux

package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// renameNoReplace renames the file oldName in the folder from to newName in
// the folder to, failing with an error that wraps fs.ErrExist when newName
// exists. The agent runs on the Cloud Proxy (Linux): elsewhere it goes by
// the folders' paths, checking first.
func renameNoReplace(from *os.Root, oldName string, to *os.Root, newName string) error {
	src, dst := filepath.Join(from.Name(), oldName), filepath.Join(to.Name(), newName)
	if _, err := to.Lstat(newName); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			err = fs.ErrExist
		}
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return os.Rename(src, dst)
}
