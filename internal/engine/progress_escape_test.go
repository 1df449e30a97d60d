package engine

import (
	"bytes"
	"strings"
	"testing"
)

// TestTerminalProgressEscapes feeds the terminal renderer what a hostile
// registry could put in the engine's progress stream: Docker's own cursor
// moves stay, the registry's escapes are shown as text.
func TestTerminalProgressEscapes(t *testing.T) {
	var out bytes.Buffer
	sink, done := TerminalProgress(&out)
	sink(Progress{Status: "Pulling from \x1b]0;owned\a\u202eproj"})
	sink(Progress{Layer: "ff3d\x1b[2J", Status: "Downloading \x1b]52;c;ZWNobw==\a", Current: 1, Total: 2})
	done()
	text := out.String()
	for _, bad := range []string{"\x1b]", "\a", "\u202e", "\x1b[2J"} {
		if strings.Contains(text, bad) {
			t.Errorf("terminal output holds %q raw:\n%q", bad, text)
		}
	}
	for _, want := range []string{`"Pulling from \x1b]0;owned\a\u202eproj"`, `"ff3d\x1b[2J"`, `"Downloading \x1b]52;c;ZWNobw==\a"`} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal output lacks %s:\n%q", want, text)
		}
	}
}
