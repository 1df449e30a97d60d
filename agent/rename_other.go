//go:build !linux

package agent

// renameNoReplace renames src to dst, failing with an error that wraps
// fs.ErrExist when dst exists.
func renameNoReplace(src, dst string) error { return renameChecked(src, dst) }
