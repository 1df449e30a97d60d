//go:build unix

package pak_test

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/testenv/await"
)

// TestOpenRefusesSpecialFilesAtOnce checks that Open refuses a FIFO and a
// device without blocking: opening a FIFO that no writer holds used to hang
// the one-shot, deaf to SIGTERM, before any error could be given.
func TestOpenRefusesSpecialFilesAtOnce(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.pak")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
	}{
		{"fifo without a writer", fifo},
		{"character device", "/dev/zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := open(tt.path)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, pak.ErrInvalid) || !strings.Contains(err.Error(), tt.path+": not a regular file") {
					t.Fatalf("Open(%s) = %v, want %s: not a regular file", tt.path, err, tt.path)
				}
			case <-time.After(await.Limit(t)):
				t.Fatalf("Open(%s) blocked", tt.path)
			}
		})
	}
}
