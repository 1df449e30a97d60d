package agent

import "errors"

// checkSafe stands in for safe_unix.go's: the agent does not run on Windows.
func checkSafe(what, dir string) error {
	return errors.New(what + " " + dir + ": the agent needs the Cloud Proxy (Linux)")
}
