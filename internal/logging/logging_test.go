//go:build unix

package logging

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
)

// logOnce logs one info and one warning line to a file through New and
// returns what was written.
func logOnce(t *testing.T, format string, quiet bool, journal func(f *os.File) string) string {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Setenv("JOURNAL_STREAM", journal(f))
	log := New(f, format, quiet)
	log.Info("pak taken", zap.String("pak", "a.pak"))
	log.Warn("cannot pull", zap.String("pak", "a.pak"))
	log.Sync()
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func noJournal(*os.File) string { return "" }

// sameFile returns f's JOURNAL_STREAM value, as systemd sets it.
func sameFile(f *os.File) string {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func otherFile(*os.File) string { return "1:2" }

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		quiet   bool
		journal func(*os.File) string
		json    bool
		lines   int
	}{
		{"auto on a plain stream is console", "auto", false, noJournal, false, 2},
		{"auto on the journal stream is JSON", "auto", false, sameFile, true, 2},
		{"auto with another journal stream is console", "auto", false, otherFile, false, 2},
		{"json", "json", false, noJournal, true, 2},
		{"console on the journal stream", "console", false, sameFile, false, 2},
		{"quiet keeps warnings only", "json", true, noJournal, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := logOnce(t, tt.format, tt.quiet, tt.journal)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != tt.lines {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), tt.lines, out)
			}
			var m map[string]any
			isJSON := json.Unmarshal([]byte(lines[0]), &m) == nil
			if isJSON != tt.json {
				t.Fatalf("JSON = %v, want %v:\n%s", isJSON, tt.json, out)
			}
			if !strings.Contains(out, "a.pak") {
				t.Errorf("the pak field is missing:\n%s", out)
			}
		})
	}
}

// TestNewEscapesFieldValues logs an error text a hostile registry could send,
// in both formats: no control character, bidi override or C1 control
// reaches the log raw, and the JSON lines still read back to the same value.
func TestNewEscapesFieldValues(t *testing.T) {
	hostile := "denied: \x1b]0;owned\a\x1b[2J\npresent forged.pak gnp.\u202eexe \u009b2J\rdone Überwachung 監視"
	for _, format := range []string{"console", "json"} {
		t.Run(format, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "log"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			t.Setenv("JOURNAL_STREAM", "")
			log := New(f, format, false)
			log.Error("pull failed", zap.String("pak", "a.pak"), zap.Error(errors.New(hostile)))
			data, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			line := strings.TrimSuffix(string(data), "\n")
			for _, r := range line {
				if r != '\t' && !strconv.IsPrint(r) {
					t.Errorf("log line holds %U raw: %q", r, line)
				}
			}
			if !strings.Contains(line, "Überwachung 監視") {
				t.Errorf("log line lost the UTF-8 text: %q", line)
			}
			if format == "json" {
				var entry map[string]any
				if err := json.Unmarshal([]byte(line), &entry); err != nil || entry["error"] != hostile {
					t.Errorf("JSON line %q reads back as %q (%v)", line, entry["error"], err)
				}
			}
		})
	}
}
