package display_test

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/golden"
)

func TestText(t *testing.T) {
	long := "/srv/" + strings.Repeat("paks/", 60) + "MyAdapter_1.0.0.pak"
	tests := []struct{ name, in, want string }{
		{"plain", "MyAdapter_1.0.0.pak", "MyAdapter_1.0.0.pak"},
		{"spaces and punctuation", `/tmp/My Adapter (copy) "x".pak`, `/tmp/My Adapter (copy) "x".pak`},
		{"utf-8", "/tmp/Überwachung.pak", "/tmp/Überwachung.pak"},
		{"wide", "監視アダプタ.pak", "監視アダプタ.pak"},
		{"combining marks", "Cafe\u0301.pak", "Cafe\u0301.pak"},
		{"emoji", "pak 📦", "pak 📦"},
		{"error text", `Head "https://reg:5000/v2/x/manifests/sha256:ab": unauthorized`, `Head "https://reg:5000/v2/x/manifests/sha256:ab": unauthorized`},
		{"long", long, long}, // never shortened
		{"empty", "", ""},
		{"dash", "-", "-"},
		{"newline forging a line", "evil\n12:00:00\tINFO\tpulled.pak", `"evil\n12:00:00\tINFO\tpulled.pak"`},
		{"clear screen", "\x1b[2Jclear.pak", `"\x1b[2Jclear.pak"`},
		{"cursor up", "ok\x1b[1A\x1b[2Kpresent", `"ok\x1b[1A\x1b[2Kpresent"`},
		{"OSC 0 title", "\x1b]0;owned\a", `"\x1b]0;owned\a"`},
		{"OSC 52 clipboard", "\x1b]52;c;Y3VybCBldmlsfHNo\x1b\\", `"\x1b]52;c;Y3VybCBldmlsfHNo\x1b\\"`},
		{"bidi override", "gnp.\u202eexe.pak", `"gnp.\u202eexe.pak"`},
		{"bidi isolate", "a\u2066b\u2069", `"a\u2066b\u2069"`},
		{"C1 CSI", "x\u009b2Jy", `"x\u009b2Jy"`},
		{"C1 OSC", "x\u009d0;t\u009cy", `"x\u009d0;t\u009cy"`},
		{"lone CR", "pulled\rfailed", `"pulled\rfailed"`},
		{"tab", "a\tb", `"a\tb"`},
		{"DEL", "a\x7fb", `"a\x7fb"`},
		{"line separator", "a\u2028b", `"a\u2028b"`},
		{"zero width space", "a\u200bb", `"a\u200bb"`},
		{"invalid UTF-8", "bad\xffutf8.pak", `"bad\xffutf8.pak"`},
		{"raw C1 byte", "a\x9bb", `"a\x9bb"`},
		{"NUL", "nul\x00.pak", `"nul\x00.pak"`},
		{"UTF-8 and an escape", "Überwachung\x1b[2J", `"Überwachung\x1b[2J"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := display.Text(tt.in)
			if got != tt.want {
				t.Errorf("Text(%q) = %s, want %s", tt.in, got, tt.want)
			}
			if display.Text(got) != got {
				t.Errorf("Text(Text(%q)) changes it again", tt.in)
			}
		})
	}
}

func TestWidth(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"pulled", 6},
		{"Überwachung", 11},
		{"Cafe\u0301", 4},           // combining acute accent
		{"e\u0301\u0302", 1},        // two marks on one letter
		{"監視", 4},                   // CJK ideographs
		{"ｆｕｌｌ", 8},                 // fullwidth Latin
		{"ｶﾀｶﾅ", 4},                 // halfwidth katakana
		{"한국어", 6},                  // Hangul syllables
		{"📦", 2},                    // emoji presentation
		{"a\tb", len(`"a\tb"`)},     // printed quoted
		{"\u202e", len(`"\u202e"`)}, // printed quoted
	}
	for _, tt := range tests {
		if got := display.Width(tt.in); got != tt.want {
			t.Errorf("Width(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestTable checks the layout against a golden file: columns aligned by
// terminal width with wide characters and combining marks, and hostile cells
// escaped so that they neither break a row nor move the cursor.
func TestTable(t *testing.T) {
	var tab display.Table
	tab.Row("HOST", "PAK", "STATUS", "ERROR")
	tab.Row("proxy-dc1", "MyAdapter_1.0.0.pak", "pulled", "-")
	tab.Row("proxy-東京", "監視アダプタ_1.0.pak", "present", "-")
	tab.Row("proxy-dc2", "Cafe\u0301_2.0.pak", "failed", "registry said: \x1b]0;owned\a\x1b[2J\nproxy-dc3  Other.pak  pulled  -")
	tab.Row("proxy-dc3", "gnp.\u202eexe.pak", "failed", "x\u009b2J\rdone")
	var b strings.Builder
	if _, err := tab.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "table.golden", b.String())
	if strings.Count(b.String(), "\n") != 5 {
		t.Errorf("the table has %d lines, want 5:\n%s", strings.Count(b.String(), "\n"), b.String())
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	// Every STATUS column starts at the same terminal column.
	at := -1
	for _, l := range lines {
		i := strings.Index(l, "  ")
		for i < len(l) && l[i] == ' ' {
			i++
		}
		j := strings.Index(l[i:], "  ")
		for i+j < len(l) && l[i+j] == ' ' {
			j++
		}
		col := display.Width(l[:i+j])
		if at >= 0 && col != at {
			t.Errorf("STATUS column at %d in %q, want %d", col, l, at)
		}
		at = col
	}
}

// TestJSON checks that JSON output keeps every value, to the byte, for a
// program, while a terminal sees no raw control character.
func TestJSON(t *testing.T) {
	values := []string{
		"MyAdapter_1.0.0.pak", "Überwachung 監視 📦", "evil\n\x1b]0;owned\a\x1b[2J", "gnp.\u202eexe.pak",
		"x\u009b2J\u0085y", "a\x7fb", "tag\U000e0041", "<&>", "\r\t",
	}
	var b strings.Builder
	if err := display.JSON(&b, values); err != nil {
		t.Fatal(err)
	}
	for _, r := range b.String() {
		if r != '\n' && !strconv.IsPrint(r) {
			t.Errorf("JSON output holds %U raw:\n%s", r, b.String())
		}
	}
	var back []string
	if err := json.Unmarshal([]byte(b.String()), &back); err != nil {
		t.Fatalf("%v:\n%s", err, b.String())
	}
	if !slices.Equal(back, values) {
		t.Errorf("JSON read back as %q, want %q", back, values)
	}
	if !strings.Contains(b.String(), `"gnp.\u202eexe.pak"`) || !strings.Contains(b.String(), `"tag\udb40\udc41"`) || !strings.Contains(b.String(), "監視 📦") {
		t.Errorf("JSON output:\n%s", b.String())
	}
}
