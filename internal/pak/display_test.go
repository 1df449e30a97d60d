package pak_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak"
)

func TestDisplay(t *testing.T) {
	long := "/srv/" + strings.Repeat("paks/", 60) + "MyAdapter_1.0.0.pak"
	tests := []struct{ name, want string }{
		{"MyAdapter_1.0.0.pak", "MyAdapter_1.0.0.pak"},
		{"/tmp/My Adapter (copy).pak", "/tmp/My Adapter (copy).pak"},
		{"/tmp/Überwachung.pak", "/tmp/Überwachung.pak"},
		{long, long}, // never shortened
		{"-", "-"},
		{"evil\n12:00:00\tINFO\tpulled.pak", `"evil\n12:00:00\tINFO\tpulled.pak"`},
		{"\x1b[2Jclear.pak", `"\x1b[2Jclear.pak"`},
		{"bad\xffutf8.pak", `"bad\xffutf8.pak"`},
		{"nul\x00.pak", `"nul\x00.pak"`},
	}
	for _, tt := range tests {
		if got := pak.Display(tt.name); got != tt.want {
			t.Errorf("Display(%q) = %s, want %s", tt.name, got, tt.want)
		}
	}
}

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
