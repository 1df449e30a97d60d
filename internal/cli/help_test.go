package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak/paktest"
)

// TestHelpFitsTheCommand checks that each command's --help lists the
// global flags that apply to it and no other, and that giving one that does
// not apply is a usage error.
func TestHelpFitsTheCommand(t *testing.T) {
	tests := []struct {
		args        []string
		has, hasNot []string
	}{
		{[]string{"--help"}, []string{"completion", "pull ", "--verbose"}, nil},
		{[]string{"version", "--help"}, []string{"--json"}, []string{"--config", "--docker-host", "--quiet", "--verbose"}},
		{[]string{"agent", "--help"}, []string{"--config", "--docker-host", "--quiet"}, []string{"--json"}},
		{[]string{"status", "--help"}, []string{"--config", "--json"}, []string{"--docker-host", "--quiet"}},
		{[]string{"remote", "--help"}, []string{"--json", "--quiet"}, nil},
		{[]string{"inspect", "--help"}, []string{"--json"}, []string{"--docker-host"}},
		{[]string{"keep", "--help"}, []string{"taken or kept", "not-taken (no agent runs"}, []string{"--docker-host", "6  Docker Engine unreachable"}},
		{[]string{"pull", "--help"}, []string{"--dry-run", "--password-stdin", "Exit codes"}, nil},
	}
	for _, tt := range tests {
		out, errOut, code := runCLI(t, "", tt.args...)
		if code != ExitOK {
			t.Errorf("%v: exit %d\n%s", tt.args, code, errOut)
		}
		for _, s := range tt.has {
			if !strings.Contains(out, s) {
				t.Errorf("%v does not show %q:\n%s", tt.args, s, out)
			}
		}
		for _, s := range tt.hasNot {
			// A flag shows as a line of the flag lists.
			if strings.HasPrefix(s, "--") && regexp.MustCompile(`(?m)^ +(-\w, )?`+s+` `).MatchString(out) || !strings.HasPrefix(s, "--") && strings.Contains(out, s) {
				t.Errorf("%v shows %q, which does not apply:\n%s", tt.args, s, out)
			}
		}
	}
	for _, args := range [][]string{{"agent", "--json"}, {"version", "--config", "x"}, {"status", "--docker-host", "unix:///x"}} {
		_, errOut, code := runCLI(t, "", args...)
		if code != ExitUsage || !strings.Contains(errOut, "does not apply to") {
			t.Errorf("%v: exit %d, want %d saying the flag does not apply:\n%s", args, code, ExitUsage, errOut)
		}
	}
}

// TestPullCommandIsTheOneShot checks that prepull pull X.pak, the docker
// CLI's habit, pulls as prepull X.pak does.
func TestPullCommandIsTheOneShot(t *testing.T) {
	dir := t.TempDir()
	cfg := isolatedConfig(t, dir, "")
	file := paktest.Pak{Kind: "Pulled", Registry: paktest.Registry}.WriteFile(t, dir)
	eng := newFakeEngine()
	g := &globals{newEngine: func(string) (dockerEngine, error) { return eng, nil }}
	out, errOut, code := runWith(context.Background(), t, g, "pull", "--config", cfg, "--quiet", "--force", file)
	if code != ExitOK || !strings.HasPrefix(out, "pulled ") || eng.pullCount() != 1 {
		t.Fatalf("prepull pull: exit %d, %d pulls:\n%s\n%s", code, eng.pullCount(), out, errOut)
	}
}

// TestPakArgumentsComplete checks that PAK arguments complete to .pak
// files, and prepull's first argument to a command when one starts so.
func TestPakArgumentsComplete(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "inspect", ""}, "pak\nzip\nconf\n:8\n"},
		{[]string{"__complete", "remote", "-H", "x", ""}, "pak\nzip\nconf\n:8\n"},
		{[]string{"__complete", "My"}, "pak\nzip\nconf\n:8\n"},
		{[]string{"__complete", "rem"}, "remote\tPre-pull on one Cloud Proxy or a fleet, over SSH, from a workstation\n:4\n"},
	} {
		out, _, _ := runCLI(t, "", tt.args...)
		if out != tt.want {
			t.Errorf("%v:\n%q\nwant\n%q", tt.args, out, tt.want)
		}
	}
}
