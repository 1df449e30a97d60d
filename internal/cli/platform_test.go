package cli

import (
	"context"
	"strings"
	"testing"
)

// TestProxyOnly checks that agent, keep and status refuse to run on a
// workstation's system with exit 2 and say where they run, whatever their
// arguments, and that Linux runs them.
func TestProxyOnly(t *testing.T) {
	cfg := isolatedConfig(t, t.TempDir(), "")
	for _, goos := range []string{"windows", "darwin"} {
		for _, args := range [][]string{{"agent"}, {"status", "--json"}, {"keep", "--wait", "1s", `C:\paks\a.pak`}, {"keep"}} {
			t.Run(goos+"/"+strings.Join(args, " "), func(t *testing.T) {
				out, errOut, code := runWith(context.Background(), t, &globals{goos: goos}, append(args, "--config", cfg)...)
				want := "prepull " + args[0] + " runs on the Cloud Proxy (Linux), not on " + goos
				if code != ExitUsage || out != "" || !strings.Contains(errOut, want) {
					t.Errorf("exit %d, want %d with %q on stderr:\n%s%s", code, ExitUsage, want, out, errOut)
				}
			})
		}
	}
	if _, errOut, code := runWith(context.Background(), t, &globals{goos: "linux"}, "status", "--config", cfg); strings.Contains(errOut, "Cloud Proxy (Linux)") || code == ExitUsage {
		t.Errorf("status on linux: exit %d\n%s", code, errOut)
	}
}
