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
