package remote

import (
	"os/exec"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"--json", "--json"},
		{"-", "-"},
		{"/opt/prepull/bin/prepull", "/opt/prepull/bin/prepull"},
		{"harbor.example.com:8443", "harbor.example.com:8443"},
		{"10m0s", "10m0s"},
		{"", "''"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$(reboot)", "'$(reboot)'"},
		{"`id`", "'`id`'"},
		{"a;b", "'a;b'"},
		{"~root", "'~root'"},
		{"*.pak", "'*.pak'"},
		{"line\nbreak", "'line\nbreak'"},
		{`back\slash`, `'back\slash'`},
		{"''", `''\'''\'''`},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestQuoteShell checks with a real POSIX shell that each quoted word comes
// back as one argument, unchanged.
func TestQuoteShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	words := []string{"plain", "", "a b", "it's", "$(echo pwned)", "`id`", "a;b&c|d", "~", "*", "x\ny", `"\`, "'", "-n", "ünïcode", "$HOME", "!!"}
	line := CommandLine(`printf '%s\0'`, words...)
	out, err := exec.Command(sh, "-c", line).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", line, err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(got) != len(words) {
		t.Fatalf("sh saw %d words %q, want %d", len(got), got, len(words))
	}
	for i := range words {
		if got[i] != words[i] {
			t.Errorf("word %d: sh saw %q, want %q", i, got[i], words[i])
		}
	}
}

func TestCommandLine(t *testing.T) {
	got := CommandLine("prepull --config /etc/prepull/fleet.yaml", "--json", "--default-registry", "h a", "-")
	want := "prepull --config /etc/prepull/fleet.yaml --json --default-registry 'h a' -"
	if got != want {
		t.Fatalf("CommandLine = %q, want %q", got, want)
	}
}
