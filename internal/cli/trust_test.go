package cli

import (
	"strings"
	"testing"
)

// TestSudoHelpWarns checks that --sudo's help says what sudo gives away.
func TestSudoHelpWarns(t *testing.T) {
	out, _, code := runCLI(t, "", "remote", "--help")
	if code != ExitOK || !strings.Contains(out, "--sudo") || !strings.Contains(out, "obtain the registry secret") {
		t.Fatalf("remote --help (exit %d) should warn that --sudo gives the registry secret away:\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runCLI(t, "", "version")
	if code != ExitOK || !strings.HasPrefix(out, "prepull ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("version: exit %d, %q", code, out)
	}
	if flag, _, code := runCLI(t, "", "--version"); code != ExitOK || flag != out {
		t.Fatalf("--version: exit %d, %q; want %q as version prints", code, flag, out)
	}
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "1.2.3"
	if out, _, _ := runCLI(t, "", "version"); !strings.HasPrefix(out, "prepull 1.2.3") {
		t.Fatalf("version with a version set at build time: %q", out)
	}
	for _, args := range [][]string{{"version", "extra"}, {"status", "x"}, {"agent", "x"}} {
		if _, errOut, code := runCLI(t, "", args...); code != ExitUsage || !strings.Contains(errOut, "takes no arguments") {
			t.Errorf("%q: exit %d, %q; want a usage error", args, code, errOut)
		}
	}
}
