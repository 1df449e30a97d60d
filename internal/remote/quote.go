package remote

import "strings"

// Quote returns s as one word of a POSIX shell command line. Words made only
// of characters no shell treats specially are left as they are; anything
// else is put in single quotes, and each single quote inside ends the
// quoted part, is added escaped with a backslash, and starts a new one.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// CommandLine returns the shell command line that runs base, the user's own
// shell text used as given, with args appended, each one quoted.
func CommandLine(base string, args ...string) string {
	var b strings.Builder
	b.WriteString(base)
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(Quote(a))
	}
	return b.String()
}
