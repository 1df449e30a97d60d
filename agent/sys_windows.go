package agent

import (
	"errors"
	"io/fs"
	"os"
)

// The agent does not run on Windows (the command line refuses agent, keep
// and status there); these stand-ins of sys_unix.go let the package build.

const oNoFollow = 0

func fileIno(fs.FileInfo) uint64 { return 0 }

var errNoLock = errors.New("state_dir locks need the Cloud Proxy (Linux)")

func tryLock(*os.File, bool) (bool, error) { return false, errNoLock }

func unlock(*os.File) {}

func monotonicUsec() (int64, bool) { return 0, false }
