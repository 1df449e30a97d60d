package pak

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak/paktest"
)

// TestSkipInflateLimit checks that inflating entries only to skip them is
// bounded: a small archive of highly compressed data descriptor entries must
// not cost unbounded CPU.
func TestSkipInflateLimit(t *testing.T) {
	defer func(old int64) { maxSkipInflate = old }(maxSkipInflate)
	maxSkipInflate = 1 << 20
	zeros := make([]byte, 600<<10)
	p := paktest.Pak{Registry: paktest.Registry, Inner: []paktest.Member{
		{Name: "a.bin", Data: zeros, Descriptor: true},
		{Name: "b.bin", Data: zeros, Descriptor: true},
	}}
	b := p.Bytes()
	_, err := Read("x.pak", bytes.NewReader(b), int64(len(b)))
	want := "x.pak: adapter.zip: b.bin: more than the 1 MiB limit inflated only to skip entries with data descriptors"
	if err == nil || err.Error() != want || !errors.Is(err, ErrInvalid) {
		t.Errorf("Read error %v, want %q", err, want)
	}
}

func TestLimitReader(t *testing.T) {
	tests := []struct {
		data    string
		limit   int64
		want    string
		wantErr error
	}{
		{"abc", 3, "abc", nil},
		{"abc", 5, "abc", nil},
		{"abcd", 3, "abc", errTooLarge},
		{"", 0, "", nil},
		{"a", 0, "", errTooLarge},
	}
	for _, tt := range tests {
		got, err := io.ReadAll(&limitReader{r: strings.NewReader(tt.data), left: tt.limit})
		if string(got) != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("limitReader(%q, %d) = %q, %v; want %q, %v", tt.data, tt.limit, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{bytesize(0), "0 B"},
		{bytesize(1023), "1023 B"},
		{bytesize(1024), "1.0 KiB"},
		{bytesize(4 << 30), "4.0 GiB"},
		{bytesize(1<<20 + 1<<19), "1.5 MiB"},
		{limit(64 << 10), "64 KiB"},
		{limit(256 << 20), "256 MiB"},
		{limit(1000), "1000 B"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
