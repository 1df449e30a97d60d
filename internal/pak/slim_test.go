package pak_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

// TestSlim checks what prepull remote sends a proxy: for every release's
// layout, a stored or deflated adapter archive, a big content/, an adapter
// archive or a .conf on its own, it reads back (on standard input, as the
// proxy reads it) as the same adapter, pack and image; a pak or adapter
// archive becomes an adapter archive of the .conf and manifest.txt, byte for
// byte, whatever the pak's size.
func TestSlim(t *testing.T) {
	type input struct {
		name  string
		write func(t *testing.T, dir string) string
	}
	var inputs []input
	for _, r := range paktest.Releases {
		p := paktest.Pak{Release: r, Registry: paktest.Registry}
		inputs = append(inputs, input{"release " + string(r), func(t *testing.T, dir string) string { return p.WriteFile(t, dir) }})
	}
	for _, p := range []paktest.Pak{
		{Registry: paktest.Registry, ContentBytes: 8 << 20},
		{Registry: "a.example.com:8443", CRLF: true, StoreAdapterZip: true},
		{}, // no REGISTRY line
		{Registry: paktest.Registry, ConfName: "odd-name.conf", Inner: []paktest.Member{{Name: "big.bin", Data: bytes.Repeat([]byte("x"), 1<<20)}}},
		{Registry: paktest.Registry, Inner: []paktest.Member{{Name: "x.txt", Data: []byte("x"), Descriptor: true}}},
	} {
		inputs = append(inputs, input{"pak " + p.ConfName + p.Registry, func(t *testing.T, dir string) string { return p.WriteFile(t, dir) }})
	}
	inputs = append(inputs,
		input{"adapter.zip", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "adapter.zip")
			writeBytes(t, path, paktest.Pak{Registry: paktest.Registry, Inner: []paktest.Member{{Name: "big.bin", Data: bytes.Repeat([]byte("y"), 1<<20)}}}.AdapterZip())
			return path
		}},
		input{".conf", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "MyAdapter.conf")
			writeBytes(t, path, paktest.Pak{Registry: paktest.Registry}.Conf())
			return path
		}},
	)
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			path := in.write(t, t.TempDir())
			f, err := pak.OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img := f.Image
			slim, err := f.Slim()
			if err != nil {
				t.Fatal(err)
			}
			if len(slim) > 16<<10 {
				t.Errorf("slim copy of %d bytes, want a few KiB", len(slim))
			}
			got, err := pak.Read("-", bytes.NewReader(slim), int64(len(slim)))
			if err != nil {
				t.Fatal(err)
			}
			want := img
			want.File, want.Format, want.ConfPath = "-", pak.FormatAdapterZip, img.ConfPath[strings.LastIndex(img.ConfPath, "/")+1:]
			if img.Format == pak.FormatConf {
				want.Format, want.ConfPath = pak.FormatConf, "-"
			}
			if got != want {
				t.Errorf("the slim copy reads\n%+v\nwant\n%+v", got, want)
			}
			if img.Format == pak.FormatConf {
				if !bytes.Equal(slim, readFile(t, path)) {
					t.Error("a .conf is not sent as it is")
				}
				return
			}
			// The .conf and the manifest, byte for byte.
			orig := members(t, readFile(t, path))
			if img.Format == pak.FormatPak {
				outer := orig
				orig = innerMembers(t, readFile(t, path), img.ConfPath[:strings.Index(img.ConfPath, "/")])
				orig["manifest.txt"] = outer["manifest.txt"]
			}
			sm := members(t, slim)
			if len(sm) != 2 {
				t.Errorf("slim copy holds %d members, want the .conf and manifest.txt", len(sm))
			}
			for name, m := range sm {
				o, ok := orig[name]
				if !ok || o.crc != m.crc || o.method != m.method || o.modified != m.modified || !bytes.Equal(o.raw, m.raw) {
					t.Errorf("member %s is not the original's, byte for byte", name)
				}
			}
			if m, ok := sm[want.ConfPath]; !ok || m.order != 0 {
				t.Errorf("the .conf %s is not the first member", want.ConfPath)
			}
		})
	}
}

func writeBytes(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
