package pak_test

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

func TestRewriteConf(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"current", "KINDKEY=K\nREGISTRY=a.example.com\nREPOSITORY=/p/k\nDIGEST=" + paktest.Digest + "\n",
			"KINDKEY=K\nREGISTRY=m.example.com:5000\nREPOSITORY=/mirror/p/k\nDIGEST=" + paktest.Digest + "\n"},
		{"no REGISTRY line", "KINDKEY=K\nREPOSITORY=/p/k\nDIGEST=" + paktest.Digest + "\n",
			"KINDKEY=K\nREGISTRY=m.example.com:5000\nREPOSITORY=/mirror/p/k\nDIGEST=" + paktest.Digest + "\n"},
		{"CRLF and hand edits", "# comment\r\nREGISTRY = a.example.com\r\n\r\nREPOSITORY=/p/k\r\nDIGEST=" + paktest.Digest + "\r\n",
			"# comment\r\nREGISTRY=m.example.com:5000\r\n\r\nREPOSITORY=/mirror/p/k\r\nDIGEST=" + paktest.Digest + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pak.RewriteConf([]byte(tt.in), "m.example.com:5000", "/mirror/p/k")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	if _, err := pak.RewriteConf([]byte("REGISTRY=a.example.com\nDIGEST="+paktest.Digest+"\n"), "m.example.com", "/x"); err == nil {
		t.Error("a .conf without REPOSITORY was rewritten")
	}
}

// members returns each member of a ZIP with its header and raw (compressed) bytes.
func members(t *testing.T, data []byte) map[string]zipMember {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]zipMember{}
	for i, f := range zr.File {
		rc, err := f.OpenRaw()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = zipMember{order: i, method: f.Method, modified: f.Modified.Unix(), crc: f.CRC32, raw: raw}
	}
	return out
}

type zipMember struct {
	order    int
	method   uint16
	modified int64
	crc      uint32
	raw      []byte
}

func TestRewriteKeepsEveryOtherMemberByteForByte(t *testing.T) {
	for _, p := range []paktest.Pak{
		{Registry: paktest.Registry, ContentBytes: 64 << 10},
		{Registry: "a.example.com:8443", CRLF: true, StoreAdapterZip: true},
		{}, // no REGISTRY line
	} {
		dir := t.TempDir()
		src := p.WriteFile(t, dir)
		img, err := open(src)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), filepath.Base(src))
		if err := pak.Rewrite(img, out, "127.0.0.1:5000", "/mirror/my-project/myadapter"); err != nil {
			t.Fatal(err)
		}
		got, err := open(out)
		if err != nil {
			t.Fatal(err)
		}
		if got.Registry != "127.0.0.1:5000" || got.Repository != "mirror/my-project/myadapter" || got.Digest != img.Digest || got.AdapterKind != img.AdapterKind {
			t.Errorf("rewritten pak reads %+v", got)
		}

		before, after := readFile(t, src), readFile(t, out)
		mb, ma := members(t, before), members(t, after)
		if len(mb) != len(ma) {
			t.Fatalf("%d members before, %d after", len(mb), len(ma))
		}
		inner := strings.Split(img.ConfPath, "/")[0]
		for name, b := range mb {
			a, ok := ma[name]
			switch {
			case !ok:
				t.Errorf("member %s lost", name)
			case a.order != b.order || a.method != b.method || a.modified != b.modified:
				t.Errorf("member %s: order, method or time changed", name)
			case name != inner && (a.crc != b.crc || !bytes.Equal(a.raw, b.raw)):
				t.Errorf("member %s changed", name)
			}
		}
		innerBefore, innerAfter := innerMembers(t, before, inner), innerMembers(t, after, inner)
		conf := strings.Split(img.ConfPath, "/")[1]
		for name, b := range innerBefore {
			a := innerAfter[name]
			if name != conf && (a.order != b.order || !bytes.Equal(a.raw, b.raw)) {
				t.Errorf("adapter archive member %s changed", name)
			}
		}
	}
}

func innerMembers(t *testing.T, pakData []byte, inner string) map[string]zipMember {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(pakData), int64(len(pakData)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == inner {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			return members(t, data)
		}
	}
	t.Fatalf("no %s", inner)
	return nil
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRewriteRefuses(t *testing.T) {
	dir := t.TempDir()
	signed := filepath.Join(dir, "Signed.pak")
	paktest.AddMember(t, paktest.Pak{}.Bytes(), signed, "signature.jws")
	img, err := open(signed)
	if err != nil {
		t.Fatal(err)
	}
	err = pak.Rewrite(img, filepath.Join(t.TempDir(), "x.pak"), "m.example.com", "/x")
	if err == nil || !strings.Contains(err.Error(), "signature.jws") {
		t.Errorf("signed pak: %v", err)
	}

	plain := paktest.Pak{Name: "Other"}.WriteFile(t, dir)
	img, err = open(plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := pak.Rewrite(img, plain, "m.example.com", "/x"); err == nil {
		t.Error("rewrote a pak over itself")
	}

	// A pak whose adapter archive holds a second .conf spelled
	// ./MyAdapter.conf, given to Rewrite as if Open had read it: the copy
	// would carry the member unzip extracts, so the read-back refuses it
	// and nothing is put in place.
	z := rawZip(rawEntry{name: "MyAdapter.conf", data: paktest.Pak{Registry: paktest.Registry}.Conf(), method: 8},
		rawEntry{name: "./MyAdapter.conf", data: paktest.Pak{Registry: "evil.example.com"}.Conf(), method: 8})
	evil := filepath.Join(dir, "Evil.pak")
	if err := os.WriteFile(evil, paktest.Pak{RawAdapterZip: z}.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := open(evil); err == nil {
		t.Error("Open read a pak with ./MyAdapter.conf")
	}
	out := filepath.Join(t.TempDir(), "Evil.pak")
	img = pak.Image{File: evil, Format: pak.FormatPak, AdapterKind: paktest.Kind, ConfPath: "adapter.zip/MyAdapter.conf", Registry: paktest.Registry, Repository: "my-project/myadapter", Digest: paktest.Digest}
	err = pak.Rewrite(img, out, "m.example.com", "/x")
	if want := `the rewritten pak does not read back: ` + out + `: adapter.zip: two members named "MyAdapter.conf" and "./MyAdapter.conf"`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Rewrite error %v, want %q", err, want)
	}
	if left, _ := os.ReadDir(filepath.Dir(out)); len(left) != 0 {
		t.Errorf("Rewrite left %v", left)
	}

	conf := filepath.Join(dir, "x.conf")
	if err := os.WriteFile(conf, paktest.Pak{}.Conf(), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err = open(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := pak.Rewrite(img, filepath.Join(t.TempDir(), "x.conf"), "m.example.com", "/x"); err == nil {
		t.Error("rewrote a .conf given on its own")
	}
}
