package remote

import (
	"bytes"
	"testing"
)

func TestPrefixWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
		last   string
	}{
		{name: "lines", writes: []string{"one\ntwo\n"}, want: "h: one\nh: two\n", last: "two"},
		{name: "split line", writes: []string{"o", "ne\ntw", "o\n"}, want: "h: one\nh: two\n", last: "two"},
		{name: "no final newline", writes: []string{"one\ntwo"}, want: "h: one\nh: two\n", last: "two"},
		{name: "crlf and blank", writes: []string{"one\r\n\n"}, want: "h: one\nh: \n", last: "one"},
		{name: "zap console fields", writes: []string{"12:00:00\tINFO\tpulling\t{\"progress\": \"1 MB\"}\n"},
			want: "h: 12:00:00\tINFO\tpulling\t{\"progress\": \"1 MB\"}\n", last: `12:00:00 INFO pulling {"progress": "1 MB"}`},
		{name: "utf-8", writes: []string{"Überwachung 監視 Café\n"}, want: "h: Überwachung 監視 Café\n", last: "Überwachung 監視 Café"},
		{name: "cursor moves and screen clear", writes: []string{"ok\x1b[1A\x1b[2K\x1b[2Jdone\n"},
			want: "h: \"ok\\x1b[1A\\x1b[2K\\x1b[2Jdone\"\n", last: "ok\x1b[1A\x1b[2K\x1b[2Jdone"},
		{name: "OSC 0 title and OSC 52 clipboard", writes: []string{"\x1b]0;owned\a\x1b]52;c;ZWNobyBldmls\x1b\\\n"},
			want: "h: \"\\x1b]0;owned\\a\\x1b]52;c;ZWNobyBldmls\\x1b\\\\\"\n", last: "\x1b]0;owned\a\x1b]52;c;ZWNobyBldmls\x1b\\"},
		{name: "bidi override", writes: []string{"gnp.\u202eexe\n"}, want: "h: \"gnp.\\u202eexe\"\n", last: "gnp.\u202eexe"},
		{name: "C1 controls", writes: []string{"a\u009b2Jb\x9bc\n"}, want: "h: \"a\\u009b2Jb\\x9bc\"\n", last: "a\u009b2Jb\x9bc"},
		{name: "lone CR", writes: []string{"pulled\rfailed\n"}, want: "h: \"pulled\\rfailed\"\n", last: "pulled failed"},
		{name: "escape in one field", writes: []string{"12:00:00\tERROR\t\x1b[31mred\n"}, want: "h: 12:00:00\tERROR\t\"\\x1b[31mred\"\n", last: "12:00:00 ERROR \x1b[31mred"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := &prefixWriter{out: &out, prefix: "h: "}
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			w.Flush()
			if out.String() != tt.want {
				t.Fatalf("wrote %q, want %q", out.String(), tt.want)
			}
			if w.Last() != tt.last {
				t.Fatalf("Last = %q, want %q", w.Last(), tt.last)
			}
		})
	}
}

// TestPrefixWriterLines checks that two hosts writing at once never mix
// within a line.
func TestPrefixWriterLines(t *testing.T) {
	var out bytes.Buffer
	shared := &syncWriter{w: &out}
	a := &prefixWriter{out: shared, prefix: "a: "}
	b := &prefixWriter{out: shared, prefix: "b: "}
	done := make(chan struct{})
	go func() {
		for range 200 {
			a.Write([]byte("aaaa"))
			a.Write([]byte("aaaa\n"))
		}
		close(done)
	}()
	for range 200 {
		b.Write([]byte("bb"))
		b.Write([]byte("bbbbbb\n"))
	}
	<-done
	for _, line := range bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n")) {
		if s := string(line); s != "a: aaaaaaaa" && s != "b: bbbbbbbb" {
			t.Fatalf("mixed line %q", s)
		}
	}
}
