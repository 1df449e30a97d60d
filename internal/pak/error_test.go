package pak_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak"
)

// TestErrorQuotesFileName checks that an error about a file whose name holds
// control characters prints the name quoted: a name must not forge a line
// or send a terminal escape.
func TestErrorQuotesFileName(t *testing.T) {
	name := "/inbox/evil\n\x1b[2Jpulled.pak"
	_, err := pak.Read(name, bytes.NewReader([]byte("junk")), 4)
	if err == nil {
		t.Fatal("junk read without error")
	}
	want := `"/inbox/evil\n\x1b[2Jpulled.pak": not a ZIP archive`
	if !strings.HasPrefix(err.Error(), want) || strings.ContainsAny(err.Error(), "\n\x1b") {
		t.Fatalf("error %q, want it to start with %q and hold no raw control character", err, want)
	}
}
