package pak

import (
	"archive/zip"
	"path"
	"strings"
)

// The member names of both archives, the pak and the adapter archive inside
// it, are held to one rule, so that what prepull reads is what unzip -o
// extracts on the proxy: unzip drops a leading "/" or "../", reads "./x"
// and "x" as one path, and may take a backslash for a folder separator, so
// of two members that name one path it extracts the last while prepull
// would read the first.

// checkNames refuses an archive whose member names, in the order the
// archive lists them, two readers could take differently: two names that
// clean to one path (both are named), then any name that is not plain.
func checkNames(names []string) error {
	seen := make(memberNames, len(names))
	for _, n := range names {
		if err := seen.add(n); err != nil {
			return err
		}
	}
	for _, n := range names {
		if err := checkMemberName(n); err != nil {
			return err
		}
	}
	return nil
}

// fileNames lists the names of an archive's members.
func fileNames(files []*zip.File) []string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	return names
}

// memberNames maps each cleaned member name seen to the name as written.
type memberNames map[string]string

// add records name, refusing it when an earlier member cleans to the same
// path.
func (m memberNames) add(name string) error {
	c := cleanName(name)
	prev, ok := m[c]
	switch {
	case !ok:
		m[c] = name
		return nil
	case prev == name:
		return invalidf("two members named %s", quote(name))
	}
	return invalidf("two members named %s and %s, one path once extracted: readers would disagree on which one counts", quote(prev), quote(name))
}

// cleanName is the path a member name stands for once extracted: separators
// unified, a trailing "/" (a folder) dropped, and "." and ".." resolved
// without leaving the archive's root, as unzip does.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(name, `\`, "/")), "/")
}

// checkMemberName refuses a member name that is not a plain relative path.
func checkMemberName(name string) error {
	bad := ""
	switch {
	case name == "":
		bad = "is empty"
	case strings.HasPrefix(name, "/"):
		bad = `starts with "/"`
	case strings.HasPrefix(name, "./"):
		bad = `starts with "./"`
	case strings.ContainsRune(name, 0):
		bad = "holds a NUL byte"
	case strings.ContainsRune(name, '\\'):
		bad = "holds a backslash"
	case strings.Contains(name, "//"):
		bad = `holds "//"`
	case hasDotDot(name):
		bad = `holds a ".." path component`
	default:
		return nil
	}
	return &Error{Members: []string{name}, Err: invalidf("member name %s: only plain relative paths are accepted, since extracting tools would place it elsewhere", bad)}
}

// hasDotDot tells whether a slash-separated name has a ".." component,
// leading ("../") included.
func hasDotDot(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}
