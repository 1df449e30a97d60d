//go:build linux

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/prepull/prepull/internal/pak/paktest"
)

// TestSudoHelpWarns checks that --sudo's help says what sudo gives away.
func TestSudoHelpWarns(t *testing.T) {
	out, _, code := runCLI(t, "", "remote", "--help")
	if code != ExitOK || !strings.Contains(out, "--sudo") || !strings.Contains(out, "obtain the registry secret") {
		t.Fatalf("remote --help (exit %d) should warn that --sudo gives the registry secret away:\n%s", code, out)
	}
}

func TestBuildOf(t *testing.T) {
	tagged := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}}
	checkout := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-05T09:18:07Z"}, {Key: "vcs.modified", Value: "true"}}}
	sys := " " + runtime.GOOS + "/" + runtime.GOARCH
	for _, tt := range []struct {
		version, commit, date string
		info                  *debug.BuildInfo
		want                  string
	}{
		{"v1.3.0-4-gabc", "", "", tagged, "prepull v1.3.0-4-gabc (go1.26.8)"}, // -ldflags wins
		{"", "", "", tagged, "prepull v1.2.0 (go1.26.8)"},                     // go install ...@v1.2.0
		{"", "", "", checkout, "prepull dev (commit 0123456789ab, 2026-12-05T09:18:07Z, modified, go1.26.8)"},
		{"1.4.0", "fedcba9876543210", "2026-12-01T00:00:00Z", checkout, "prepull 1.4.0 (commit fedcba987654, 2026-12-01T00:00:00Z, modified, go1.26.8)"}, // release.sh
		{"", "", "", nil, "prepull dev"},
	} {
		if got := buildOf(tt.version, tt.commit, tt.date, tt.info).line(); got != tt.want+sys {
			t.Errorf("buildOf(%q, %q, %q, %+v) = %q, want %q", tt.version, tt.commit, tt.date, tt.info, got, tt.want+sys)
		}
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
	out, _, code = runCLI(t, "", "version", "--json")
	var b buildInfo
	if err := json.Unmarshal([]byte(out), &b); code != ExitOK || err != nil || b.Version != "1.2.3" || b.OS != runtime.GOOS || b.Arch != runtime.GOARCH || b.Go != runtime.Version() {
		t.Fatalf("version --json: exit %d, %v:\n%s", code, err, out)
	}
	for _, args := range [][]string{{"version", "extra"}, {"status", "x"}, {"agent", "x"}} {
		if _, errOut, code := runCLI(t, "", args...); code != ExitUsage || !strings.Contains(errOut, "takes no arguments") {
			t.Errorf("%q: exit %d, %q; want a usage error", args, code, errOut)
		}
	}
}

// openPTY returns the terminal end of a new pseudo-terminal.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty
}

// TestPakArgsUsageErrors checks that what cannot be a pak at all is a usage
// error (2) before anything is read or contacted, in every command that
// takes paks: a missing path, a directory, a path through a file, and
// standard input that is a terminal.
func TestPakArgsUsageErrors(t *testing.T) {
	dir := t.TempDir()
	good := paktest.Pak{Registry: paktest.Registry}.WriteFile(t, dir)
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("docker_host: unix:///nonexistent.sock\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tty := openPTY(t)
	tests := []struct {
		name   string
		arg    string
		stderr string
	}{
		{"missing", filepath.Join(dir, "nope.pak"), "nope.pak: no such file"},
		{"directory", dir, dir + " is a directory: name the pak files in it (e.g. " + dir + "/*.pak)"},
		{"through a file", filepath.Join(good, "x.pak"), "x.pak: no such file"},
		{"terminal on stdin", "-", "standard input (-) is a terminal: redirect or pipe a pak into it"},
	}
	for _, cmd := range [][]string{{}, {"inspect"}, {"mirror", "--to", "reg.example"}, {"remote", "-H", "proxy.invalid"}} {
		for _, tt := range tests {
			if len(cmd) > 0 && cmd[0] == "remote" && tt.arg == "-" {
				continue // remote refuses - for its own reason
			}
			t.Run(strings.Join(append(cmd, tt.name), " "), func(t *testing.T) {
				var out, errOut bytes.Buffer
				g := &globals{stdin: tty, stdout: &out, stderr: &errOut, stderrFile: os.Stderr}
				code := run(context.Background(), g, append(append([]string{"--config", cfg}, cmd...), good, tt.arg))
				if code != ExitUsage || !strings.Contains(errOut.String(), tt.stderr) || out.Len() != 0 {
					t.Fatalf("exit %d, stdout %q, stderr %q; want a usage error with %q and nothing tried", code, out.String(), errOut.String(), tt.stderr)
				}
			})
		}
	}
}

// TestInspectTableKeepsFailedRows checks that a pak that fails keeps its
// row in inspect's table, with the reason, among the good ones.
func TestInspectTableKeepsFailedRows(t *testing.T) {
	dir := t.TempDir()
	good := paktest.Pak{Registry: paktest.Registry}.WriteFile(t, dir)
	bad := filepath.Join(dir, "broken.pak")
	if err := os.WriteFile(bad, []byte("KINDKEY=X\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := runCLI(t, "", "inspect", "--config", cfg, good, bad)
	if code != ExitBadPak {
		t.Fatalf("exit %d, want %d", code, ExitBadPak)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], bad+" ") || !strings.Contains(lines[2], "failed: not a ZIP archive, and not a valid .conf: REPOSITORY is missing") {
		t.Fatalf("table:\n%s\nwant a header, the good pak, and the broken one with its reason", out)
	}
}

// TestInspectOneUnreadablePak checks that inspect of one pak that fails
// prints its failed row, as with two; on a terminal that row alone says it.
func TestInspectOneUnreadablePak(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.pak")
	if err := os.WriteFile(bad, []byte("KINDKEY=X\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, terminal := range []bool{false, true} {
		g := &globals{terminal: terminal}
		out, stderr, code := runWith(context.Background(), t, g, "inspect", "--config", "/dev/null", bad)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if code != ExitBadPak || len(lines) != 2 || !strings.HasPrefix(lines[1], bad+" ") || !strings.Contains(lines[1], "failed: not a ZIP archive") {
			t.Errorf("terminal %v: exit %d, table:\n%s\nwant a header and the broken pak's row", terminal, code, out)
		}
		if said := strings.Contains(stderr, "not a ZIP archive"); said == terminal {
			t.Errorf("terminal %v: stderr %q: the reason must be on stderr too only off a terminal", terminal, stderr)
		}
	}
}
