package agent

import (
	"errors"
	"os"
)

// checkSafe stands in for safe_unix.go's: the agent does not run on Windows.
func checkSafe(what, dir string) error {
	return errors.New(what + " " + dir + ": the agent needs the Cloud Proxy (Linux)")
}

// openSafe stands in for safe_unix.go's, as checkSafe does.
func openSafe(what, dir string) (*os.Root, error) { return nil, checkSafe(what, dir) }
