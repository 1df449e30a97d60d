package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFileNamesPrintedSafely runs inspect and the one-shot on a pak whose
// name holds a newline and a terminal escape: stdout and stderr name it
// quoted, and hold no raw control character.
func TestFileNamesPrintedSafely(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "evil\n\x1b[2Jpulled.pak")
	if err := os.WriteFile(name, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		lines int // stdout's lines: inspect's header and row, the one-shot's result
	}{
		{"inspect", []string{"inspect", "--config", cfg, name}, 2},
		{"one-shot", []string{"--config", cfg, "--docker-host", "unix://" + filepath.Join(dir, "none.sock"), name}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, "", tt.args...)
			if code != ExitBadPak {
				t.Fatalf("exit %d, want %d\nstdout: %q\nstderr: %q", code, ExitBadPak, out, errOut)
			}
			if !strings.Contains(out+errOut, strconv.Quote(name)) {
				t.Errorf("output does not name %s quoted:\nstdout: %q\nstderr: %q", strconv.Quote(name), out, errOut)
			}
			if strings.Contains(out+errOut, "\x1b") || strings.Contains(out, "\n\x1b") || strings.Count(out, "\n") != tt.lines {
				t.Errorf("output holds raw control characters:\nstdout: %q\nstderr: %q", out, errOut)
			}
		})
	}
}
