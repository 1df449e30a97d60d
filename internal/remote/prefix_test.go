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
