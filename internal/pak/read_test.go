package pak_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

// readBytes reads b as a file of that name would be read.
func readBytes(name string, b []byte) (pak.Image, error) {
	return pak.Read(name, bytes.NewReader(b), int64(len(b)))
}

// want returns the Image a default paktest pak with these settings reads as.
func want(format, confPath, registry, repository string) pak.Image {
	img := pak.Image{
		File: "in", Format: format, AdapterKind: paktest.Kind, ConfPath: confPath,
		Registry: registry, Repository: repository, Digest: paktest.Digest,
	}
	if format != pak.FormatConf {
		img.PackName, img.PackVersion = "iSDK_MyAdapter", paktest.Version
	}
	return img
}

const repo = "my-project/myadapter"

func TestReadPak(t *testing.T) {
	hand := "# edited by hand\r\n\r\n  KINDKEY = MyAdapter\r\n  REGISTRY = harbor.example.com  \r\n" +
		"REPOSITORY=/my-project/myadapter\r\n# DIGEST=sha256:old\r\nDIGEST = " + digest + "\r\n"
	other := paktest.Pak{Registry: "other.example.com"}.Conf()
	tests := []struct {
		name string
		p    paktest.Pak
		want pak.Image
	}{
		{"current", paktest.Pak{Registry: paktest.Registry}, want("pak", "adapter.zip/MyAdapter.conf", paktest.Registry, repo)},
		{"no registry", paktest.Pak{}, want("pak", "adapter.zip/MyAdapter.conf", "", repo)},
		{"http", paktest.Pak{Registry: paktest.Registry, HTTP: true}, want("pak", "adapter.zip/MyAdapter.conf", paktest.Registry, repo)},
		{"port", paktest.Pak{Registry: "harbor.example.com:8443", Repository: "/proj/sub/myadapter"},
			want("pak", "adapter.zip/MyAdapter.conf", "harbor.example.com:8443", "proj/sub/myadapter")},
		{"docker.io", paktest.Pak{Registry: "docker.io", Repository: "/myorg/myadapter"},
			want("pak", "adapter.zip/MyAdapter.conf", "docker.io", "myorg/myadapter")},
		{"adapter3", paktest.Pak{Registry: paktest.Registry, Adapter3: true}, want("pak", "adapter.zip/MyAdapter_adapter3.conf", paktest.Registry, repo)},
		{"crlf", paktest.Pak{Registry: paktest.Registry, CRLF: true}, want("pak", "adapter.zip/MyAdapter.conf", paktest.Registry, repo)},
		{"hand edited", paktest.Pak{RawConf: []byte(hand)}, want("pak", "adapter.zip/MyAdapter.conf", paktest.Registry, repo)},
		{"single conf of another name", paktest.Pak{Registry: paktest.Registry, ConfName: "Something.conf"},
			want("pak", "adapter.zip/Something.conf", paktest.Registry, repo)},
		{"kind conf wins over adapter3 conf", paktest.Pak{Registry: paktest.Registry,
			Inner: []paktest.Member{{Name: "MyAdapter_adapter3.conf", Data: other}, {Name: "Other.conf", Data: other}}},
			want("pak", "adapter.zip/MyAdapter.conf", paktest.Registry, repo)},
		{"adapter3 conf wins over others", paktest.Pak{Registry: paktest.Registry, Adapter3: true,
			Inner: []paktest.Member{{Name: "Other.conf", Data: other}}},
			want("pak", "adapter.zip/MyAdapter_adapter3.conf", paktest.Registry, repo)},
		{"confs below the root do not count", paktest.Pak{Registry: paktest.Registry, ConfName: "Something.conf",
			Inner: []paktest.Member{{Name: "MyAdapter/MyAdapter.conf", Data: other}, {Name: "sub/MyAdapter.conf", Data: other}}},
			want("pak", "adapter.zip/Something.conf", paktest.Registry, repo)},
		{"stored adapter.zip", paktest.Pak{Registry: paktest.Registry, StoreAdapterZip: true}, want("pak", "adapter.zip/MyAdapter.conf", paktest.Registry, repo)},
		{"stored adapter.zip, adapter3", paktest.Pak{Registry: paktest.Registry, StoreAdapterZip: true, Adapter3: true,
			Inner: []paktest.Member{{Name: "Other.conf", Data: other}}},
			want("pak", "adapter.zip/MyAdapter_adapter3.conf", paktest.Registry, repo)},
		{"deflated entry with data descriptor first", paktest.Pak{Registry: paktest.Registry,
			Inner: []paktest.Member{{Name: "lib/big.bin", Data: bytes.Repeat([]byte("0123456789"), 10000), Descriptor: true}}},
			want("pak", "adapter.zip/MyAdapter.conf", paktest.Registry, repo)},
		{"adapter3 after entries with data descriptors", paktest.Pak{Registry: paktest.Registry, Adapter3: true,
			Inner: []paktest.Member{{Name: "a.bin", Data: []byte("a"), Descriptor: true}, {Name: "b/", Data: nil, Store: true}, {Name: "c.bin", Data: nil, Descriptor: true}}},
			want("pak", "adapter.zip/MyAdapter_adapter3.conf", paktest.Registry, repo)},
		{"other adapter archive name", paktest.Pak{Registry: paktest.Registry, Adapters: []string{"adapters/my.zip", "second.zip"}},
			want("pak", "adapters/my.zip/MyAdapter.conf", paktest.Registry, repo)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readBytes("in", tt.p.Bytes())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if got != tt.want {
				t.Errorf("Read =\n%+v, want\n%+v", got, tt.want)
			}
		})
	}
}

// TestReadCraftedAdapterZip reads paks whose adapter archive is laid out by
// hand, for what ordinary writers do not produce.
func TestReadCraftedAdapterZip(t *testing.T) {
	c := paktest.Pak{Registry: paktest.Registry}.Conf()
	junk := bytes.Repeat([]byte("junk data "), 5000)
	tests := []struct {
		name    string
		entries []rawEntry
	}{
		{"stored conf", []rawEntry{{name: "MyAdapter.conf", data: c, method: 0}}},
		{"deflated conf", []rawEntry{{name: "MyAdapter.conf", data: c, method: 8}}},
		{"conf with data descriptor", []rawEntry{{name: "MyAdapter.conf", data: c, method: 8, descriptor: true}}},
		{"conf with data descriptor without signature", []rawEntry{{name: "MyAdapter.conf", data: c, method: 8, descriptor: true, noSig: true}}},
		{"conf with zip64 data descriptor", []rawEntry{{name: "MyAdapter.conf", data: c, method: 8, descriptor: true, zip64: true}}},
		{"conf with zip64 sizes", []rawEntry{{name: "MyAdapter.conf", data: c, method: 8, zip64: true}}},
		{"junk with data descriptor first", []rawEntry{{name: "junk", data: junk, method: 8, descriptor: true}, {name: "MyAdapter.conf", data: c, method: 8}}},
		{"junk with descriptor without signature first", []rawEntry{{name: "junk", data: junk, method: 8, descriptor: true, noSig: true}, {name: "MyAdapter.conf", data: c, method: 8}}},
		{"junk with zip64 descriptor first", []rawEntry{{name: "junk", data: junk, method: 8, descriptor: true, zip64: true}, {name: "MyAdapter.conf", data: c, method: 8}}},
		{"junk of unknown method first", []rawEntry{{name: "junk", data: junk, method: 12}, {name: "MyAdapter.conf", data: c, method: 8}}},
		{"encrypted junk first", []rawEntry{{name: "junk", data: junk, method: 0, flags: 0x1}, {name: "MyAdapter.conf", data: c, method: 8}}},
		{"empty junk first", []rawEntry{{name: "junk/", method: 0}, {name: "empty", method: 8}, {name: "MyAdapter.conf", data: c, method: 8}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := paktest.Pak{RawAdapterZip: rawZip(tt.entries...)}
			got, err := readBytes("in", p.Bytes())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if w := want("pak", "adapter.zip/MyAdapter.conf", paktest.Registry, repo); got != w {
				t.Errorf("Read =\n%+v, want\n%+v", got, w)
			}
		})
	}
}

func TestReadAdapterZip(t *testing.T) {
	noKind := []byte("REGISTRY=harbor.example.com\nREPOSITORY=/my-project/myadapter\nDIGEST=" + digest + "\n")
	onlyConf := func(name string, data []byte) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.Create(name)
		w.Write(data)
		zw.Close()
		return b.Bytes()
	}
	tests := []struct {
		name string
		zip  []byte
		want pak.Image
	}{
		{"sdk", paktest.Pak{Registry: paktest.Registry}.AdapterZip(), want("adapter.zip", "MyAdapter.conf", paktest.Registry, repo)},
		{"adapter3", paktest.Pak{Registry: paktest.Registry, Adapter3: true}.AdapterZip(), want("adapter.zip", "MyAdapter_adapter3.conf", paktest.Registry, repo)},
		{"two confs, kind from the manifest copy", paktest.Pak{Registry: paktest.Registry,
			Inner: []paktest.Member{{Name: "Other.conf", Data: paktest.Pak{Kind: "Other"}.Conf()}}}.AdapterZip(),
			want("adapter.zip", "MyAdapter.conf", paktest.Registry, repo)},
		{"kind from KINDKEY", onlyConf("whatever.conf", paktest.Pak{Registry: paktest.Registry}.Conf()),
			pak.Image{File: "in", Format: "adapter.zip", AdapterKind: "MyAdapter", ConfPath: "whatever.conf", Registry: paktest.Registry, Repository: repo, Digest: digest}},
		{"kind from the file name", onlyConf("MyAdapter_adapter3.conf", noKind),
			pak.Image{File: "in", Format: "adapter.zip", AdapterKind: "MyAdapter", ConfPath: "MyAdapter_adapter3.conf", Registry: paktest.Registry, Repository: repo, Digest: digest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readBytes("in", tt.zip)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if got != tt.want {
				t.Errorf("Read =\n%+v, want\n%+v", got, tt.want)
			}
		})
	}
}

func TestReadConf(t *testing.T) {
	for _, name := range []string{"MyAdapter.conf", "-", "conf.txt"} {
		got, err := readBytes(name, paktest.Pak{Registry: paktest.Registry, CRLF: true}.Conf())
		if err != nil {
			t.Fatalf("Read(%s): %v", name, err)
		}
		w := want("conf", name, paktest.Registry, repo)
		w.File = name
		if got != w {
			t.Errorf("Read(%s) =\n%+v, want\n%+v", name, got, w)
		}
	}
}

// zipOf builds a ZIP holding the named members, deflated, in order.
func zipOf(members ...string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i+1 < len(members); i += 2 {
		w, _ := zw.Create(members[i])
		w.Write([]byte(members[i+1]))
	}
	zw.Close()
	return b.Bytes()
}

// nested builds a ZIP holding adapter.zip holding adapter.zip ... depth
// times, with no .conf anywhere.
func nested(depth int) []byte {
	b := zipOf("describe.xml", "<x/>")
	for range depth {
		var out bytes.Buffer
		zw := zip.NewWriter(&out)
		w, _ := zw.Create("adapter.zip")
		w.Write(b)
		zw.Close()
		b = out.Bytes()
	}
	return b
}

func TestReadErrors(t *testing.T) {
	good := paktest.Pak{Registry: paktest.Registry}
	goodBytes := good.Bytes()
	conf := good.Conf()
	flipped := bytes.Clone(goodBytes)
	// Damage the deflated adapter.zip: it is the last member, its data ends
	// before the central directory.
	zr, _ := zip.NewReader(bytes.NewReader(goodBytes), int64(len(goodBytes)))
	last := zr.File[len(zr.File)-1]
	off, _ := last.DataOffset()
	for i := range 16 {
		flipped[off+10+int64(i)] ^= 0x55
	}
	bigInner := paktest.Pak{Registry: paktest.Registry, ClaimAdapterZipSize: 1 << 10,
		Inner: []paktest.Member{{Name: "junk.bin", Data: bytes.Repeat([]byte("x"), 100<<10)}}}

	tests := []struct {
		name    string
		file    string
		data    []byte
		want    string // the whole message, or a part of it when partial
		partial bool
		classic bool
	}{
		{"empty file", "x.pak", nil, "x.pak: empty file", false, false},
		{"non-zip binary", "x.pak", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "x.pak: not a ZIP archive, and not a valid .conf: contains a NUL byte at offset 8: not a text file", false, false},
		{"non-zip text", "notes.txt", []byte("hello world\n"), `notes.txt: not a ZIP archive, and not a valid .conf: line 1: not a KEY=VALUE line`, false, false},
		{"large non-zip", "x.pak", bytes.Repeat([]byte("a"), 100<<10), "x.pak: not a ZIP archive, and too large for a .conf (100.0 KiB; limit 64 KiB)", false, false},
		{"conf without kindkey", "x.conf", []byte("REPOSITORY=/a\nDIGEST=" + digest), "x.conf: KINDKEY is missing", false, false},
		{"conf without digest", "x.conf", []byte("KINDKEY=A\nREPOSITORY=/a\n"), "x.conf: DIGEST is missing", false, false},
		{"truncated", "x.pak", goodBytes[:len(goodBytes)/2], "x.pak: not a readable ZIP archive (truncated or damaged?): zip: not a valid zip file", false, false},
		{"truncated by one byte", "x.pak", goodBytes[:len(goodBytes)-1], "x.pak: not a readable ZIP archive", true, false},
		{"only a local header signature", "x.pak", []byte("PK\x03\x04"), "x.pak: not a readable ZIP archive", true, false},
		{"damaged adapter.zip", "x.pak", flipped, "x.pak: adapter.zip: ", true, false},
		{"empty zip", "x.zip", zipOf(), "x.zip: a ZIP archive, but neither a pak (no manifest.txt) nor an adapter archive (no .conf at its root)", false, false},
		{"zip of a jar", "x.zip", zipOf("MyAdapter.jar", "PK"), "x.zip: not a containerized management pack (classic adapter, no container image) (found MyAdapter.jar and no .conf)", false, true},
		{"classic pak", "MyAdapter_1.0.0.pak", paktest.Pak{Classic: true}.Bytes(),
			"MyAdapter_1.0.0.pak: adapters.zip: not a containerized management pack (classic adapter, no container image) (found MyAdapter_adapter3.jar and no .conf)", false, true},
		{"classic pak, stored", "x.pak", paktest.Pak{Classic: true, StoreAdapterZip: true}.Bytes(), "x.pak: adapters.zip: not a containerized management pack", true, true},
		{"no digest", "MyAdapter_1.0.0.pak", paktest.Pak{RawConf: []byte("KINDKEY=MyAdapter\nREGISTRY=a.example.com\nREPOSITORY=/a\n")}.Bytes(),
			"MyAdapter_1.0.0.pak: adapter.zip: MyAdapter.conf: DIGEST is missing", false, false},
		{"digest without sha256", "x.pak", paktest.Pak{Digest: strings.TrimPrefix(digest, "sha256:")}.Bytes(),
			`x.pak: adapter.zip: MyAdapter.conf: DIGEST "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" has no sha256: prefix`, false, false},
		{"digest of the wrong length", "x.pak", paktest.Pak{Digest: "sha256:0123"}.Bytes(),
			`x.pak: adapter.zip: MyAdapter.conf: DIGEST "sha256:0123" has 4 characters after sha256:, want 64 hex digits`, false, false},
		{"digest in upper case", "x.pak", paktest.Pak{Digest: strings.ToUpper(digest[:8]) + digest[8:]}.Bytes(), "must start with sha256: in lower case", true, false},
		{"two confs", "x.pak", paktest.Pak{ConfName: "Other.conf", Inner: []paktest.Member{{Name: "Third.conf", Data: conf}}}.Bytes(),
			"x.pak: adapter.zip: 2 .conf files at its root (Third.conf, Other.conf) and none named MyAdapter.conf or MyAdapter_adapter3.conf: cannot tell which one to use", false, false},
		{"two confs, stored", "x.pak", paktest.Pak{StoreAdapterZip: true, ConfName: "Other.conf", Inner: []paktest.Member{{Name: "Third.conf", Data: conf}}}.Bytes(),
			"x.pak: adapter.zip: 2 .conf files at its root (Third.conf, Other.conf) and none named", true, false},
		{"two adapter3 confs", "x.pak", paktest.Pak{Adapter3: true, Inner: []paktest.Member{{Name: "MyAdapter_adapter3.conf", Data: conf}}}.Bytes(),
			`x.pak: adapter.zip: two members named "MyAdapter_adapter3.conf"`, false, false},
		{"two confs in an adapter.zip", "adapter.zip", zipOf("A.conf", string(conf), "B.conf", string(conf)),
			"adapter.zip: 2 .conf files at its root (A.conf, B.conf): cannot tell which one to use", false, false},
		{"no conf", "x.pak", paktest.Pak{RawAdapterZip: zipOf("MyAdapter/conf/describe.xml", "<x/>")}.Bytes(), "x.pak: adapter.zip: no .conf file at its root", false, false},
		{"deeply nested junk", "x.pak", paktest.Pak{RawAdapterZip: nested(20)}.Bytes(), "x.pak: adapter.zip: no .conf file at its root", false, false},
		{"adapter archive not a zip", "x.pak", paktest.Pak{RawAdapterZip: []byte("not a zip at all")}.Bytes(), "x.pak: adapter.zip: no ZIP header at offset 0 (after 0 entries)", false, false},
		{"adapter archive empty", "x.pak", paktest.Pak{RawAdapterZip: []byte{}}.Bytes(), "x.pak: adapter.zip: truncated: ends before its central directory", false, false},
		{"adapter archive not a zip, stored", "x.pak", paktest.Pak{RawAdapterZip: []byte("not a zip at all"), StoreAdapterZip: true}.Bytes(),
			"x.pak: adapter.zip: no ZIP header at offset 0 (after 0 entries)", false, false},
		{"empty adapter_kinds", "x.pak", paktest.Pak{AdapterKinds: []string{}}.Bytes(),
			"x.pak: manifest.txt: adapter_kinds is empty or missing: exactly one adapter kind is needed", false, false},
		{"several adapter_kinds", "x.pak", paktest.Pak{AdapterKinds: []string{"A", "B"}}.Bytes(),
			`x.pak: manifest.txt: adapter_kinds lists 2 kinds ("A", "B"): exactly one is supported`, false, false},
		{"bad adapter kind", "x.pak", paktest.Pak{AdapterKinds: []string{"../etc"}}.Bytes(), `x.pak: manifest.txt: adapter kind "../etc" has "/"`, true, false},
		{"no adapters", "x.pak", paktest.Pak{Adapters: []string{}}.Bytes(), "x.pak: manifest.txt: adapters is empty or missing: no adapter archive named", false, false},
		{"missing adapter archive", "x.pak", paktest.Pak{RawManifest: []byte(`{"adapters":["nope.zip"],"adapter_kinds":["MyAdapter"]}`)}.Bytes(),
			`x.pak: manifest.txt: names adapter archive "nope.zip", which the pak does not hold`, false, false},
		{"manifest not json", "x.pak", paktest.Pak{RawManifest: []byte("name=x")}.Bytes(), "x.pak: manifest.txt: not valid JSON: invalid character", true, false},
		{"manifest wrong types", "x.pak", paktest.Pak{RawManifest: []byte(`{"adapters":"adapter.zip","adapter_kinds":["MyAdapter"]}`)}.Bytes(), "x.pak: manifest.txt: not valid JSON: json: cannot unmarshal", true, false},
		{"manifest too big", "x.pak", paktest.Pak{RawManifest: append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), 1<<20)...)}.Bytes(),
			"x.pak: manifest.txt: claims 1.0 MiB uncompressed (limit 1 MiB)", false, false},
		{"inner archive claims gigabytes", "X.pak", paktest.Pak{ClaimAdapterZipSize: 4 << 30}.Bytes(), "X.pak: adapter.zip: claims 4.0 GiB uncompressed (limit 256 MiB)", false, false},
		{"inner archive larger than it claims", "x.pak", bigInner.Bytes(), "x.pak: adapter.zip: damaged or larger than its header claims: zip: not a valid zip file", false, false},
		{"conf too big", "x.pak", paktest.Pak{RawConf: append(conf, bytes.Repeat([]byte("#\n"), 40<<10)...)}.Bytes(),
			"x.pak: adapter.zip: MyAdapter.conf: claims 80.2 KiB uncompressed (limit 64 KiB)", false, false},
		{"conf too big, stored", "x.pak", paktest.Pak{StoreAdapterZip: true, RawConf: append(conf, bytes.Repeat([]byte("#\n"), 40<<10)...)}.Bytes(),
			"x.pak: adapter.zip: MyAdapter.conf: claims 80.2 KiB uncompressed (limit 64 KiB)", false, false},
		{"conf with NUL", "x.pak", paktest.Pak{RawConf: []byte("KINDKEY=MyAdapter\x00\n")}.Bytes(), "x.pak: adapter.zip: MyAdapter.conf: contains a NUL byte at offset 17: not a text file", false, false},
		{"conf with invalid UTF-8", "x.pak", paktest.Pak{RawConf: append(bytes.Clone(conf), "X=\xc3\x28\n"...)}.Bytes(), "x.pak: adapter.zip: MyAdapter.conf: line 8: invalid UTF-8", false, false},
		{"conf with an overlong line", "x.pak", paktest.Pak{RawConf: append(bytes.Clone(conf), strings.Repeat("#", 5000)...)}.Bytes(), "x.pak: adapter.zip: MyAdapter.conf: line 8: longer than 4096 bytes", false, false},
		{"repository injection", "x.pak", paktest.Pak{Repository: "/a;$(reboot)"}.Bytes(), `x.pak: adapter.zip: MyAdapter.conf: REPOSITORY "a;$(reboot)" has ";", not allowed in a repository path`, false, false},
		{"registry injection", "x.pak", paktest.Pak{Registry: "harbor.example.com;reboot"}.Bytes(), `x.pak: adapter.zip: MyAdapter.conf: REGISTRY "harbor.example.com;reboot" is not a valid registry host`, true, false},
		{"upper-case repository", "x.pak", paktest.Pak{Repository: "/My/Adapter"}.Bytes(), `REPOSITORY "My/Adapter" must be lower case`, true, false},
		{"stored entry with data descriptor", "x.pak", paktest.Pak{Inner: []paktest.Member{{Name: "lib/a.bin", Data: []byte("abc"), Store: true, Descriptor: true}}}.Bytes(),
			"x.pak: adapter.zip: lib/a.bin: stored with a data descriptor: unsupported, its end cannot be found without inflating", false, false},
		{"two adapter.zip members", "x.pak", zipOf("manifest.txt", string(good.Manifest()), "adapter.zip", string(good.AdapterZip()), "adapter.zip", "x"),
			`x.pak: two members named "adapter.zip"`, false, false},
		{"two manifests", "x.pak", zipOf("manifest.txt", string(good.Manifest()), "manifest.txt", "{}"), `x.pak: two members named "manifest.txt"`, false, false},
		{"./adapter.zip beside adapter.zip", "x.pak", zipOf("manifest.txt", string(good.Manifest()), "adapter.zip", string(good.AdapterZip()), "./adapter.zip", string(paktest.Pak{Registry: "evil.example.com"}.AdapterZip())),
			`x.pak: two members named "adapter.zip" and "./adapter.zip", one path once extracted`, true, false},
		{"./manifest.txt beside manifest.txt", "x.pak", zipOf("manifest.txt", string(good.Manifest()), "adapter.zip", string(good.AdapterZip()), "./manifest.txt", "{}"),
			`x.pak: two members named "manifest.txt" and "./manifest.txt"`, true, false},
		{"a pak member that leaves the folder", "x.pak", zipOf("manifest.txt", string(good.Manifest()), "adapter.zip", string(good.AdapterZip()), "content/../../etc/x", ""),
			`x.pak: content/../../etc/x: member name holds a ".." path component`, true, false},
		{"an absolute pak member", "x.pak", zipOf("manifest.txt", string(good.Manifest()), "adapter.zip", string(good.AdapterZip()), "/etc/x", ""),
			`x.pak: /etc/x: member name starts with "/"`, true, false},
		{"a backslash in a pak member", "x.pak", zipOf("manifest.txt", string(good.Manifest()), "adapter.zip", string(good.AdapterZip()), `content\x`, ""),
			`x.pak: content\x: member name holds a backslash`, true, false},

		{"control characters in member names", "x.pak", paktest.Pak{ConfName: "A\nB.conf", Inner: []paktest.Member{{Name: "C\x1b[31m.conf", Data: conf}}}.Bytes(),
			`x.pak: adapter.zip: 2 .conf files at its root ("C\x1b[31m.conf", "A\nB.conf")`, true, false},
		{"member names with colons", "x.pak", paktest.Pak{RawConf: []byte("x"), ConfName: "a: b.conf"}.Bytes(), `x.pak: adapter.zip: "a: b.conf": line 1: not a KEY=VALUE line`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readBytes(tt.file, tt.data)
			if err == nil {
				t.Fatalf("Read succeeded, want %q", tt.want)
			}
			var pe *pak.Error
			if !errors.As(err, &pe) || pe.File != tt.file {
				t.Errorf("error %q is not a *pak.Error naming %s", err, tt.file)
			}
			if !errors.Is(err, pak.ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			if errors.Is(err, pak.ErrClassic) != tt.classic {
				t.Errorf("errors.Is(%q, ErrClassic) = %v, want %v", err, !tt.classic, tt.classic)
			}
			if msg := err.Error(); tt.partial && !strings.Contains(msg, tt.want) || !tt.partial && msg != tt.want {
				t.Errorf("error\n%q, want\n%q", msg, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r\x00\x1b") {
				t.Errorf("error %q holds raw control characters", err)
			}
		})
	}
}

func TestReadCraftedErrors(t *testing.T) {
	c := paktest.Pak{Registry: paktest.Registry}.Conf()
	junk := bytes.Repeat([]byte("junk data "), 5000)
	many := make([]rawEntry, pak.MaxInnerEntries+1)
	for i := range many {
		many[i] = rawEntry{name: "x", method: 0}
	}
	tests := []struct {
		name    string
		entries []rawEntry
		want    string
	}{
		{"conf claims a gigabyte", []rawEntry{{name: "MyAdapter.conf", data: c, method: 8, claimSize: 1 << 30}},
			"adapter.zip: MyAdapter.conf: claims 1.0 GiB uncompressed (limit 64 KiB)"},
		{"conf larger than it claims", []rawEntry{{name: "MyAdapter.conf", data: c, method: 8, claimSize: 10}},
			"adapter.zip: MyAdapter.conf: holds 208 bytes, not the 10 its header claims"},
		{"conf with a bad checksum", []rawEntry{{name: "MyAdapter.conf", data: c, method: 8, badCRC: true}},
			"adapter.zip: MyAdapter.conf: checksum error: damaged"},
		{"conf with a bad descriptor", []rawEntry{{name: "MyAdapter.conf", data: c, method: 8, descriptor: true, badCRC: true}},
			"adapter.zip: MyAdapter.conf: data descriptor does not match the data (damaged)"},
		{"junk with a bad descriptor", []rawEntry{{name: "junk", data: junk, method: 8, descriptor: true, badCRC: true}, {name: "MyAdapter.conf", data: c, method: 8}},
			"adapter.zip: junk: data descriptor does not match the data (damaged)"},
		{"stored junk with descriptor", []rawEntry{{name: "junk", data: junk, method: 0, descriptor: true}, {name: "MyAdapter.conf", data: c, method: 8}},
			"adapter.zip: junk: stored with a data descriptor: unsupported"},
		{"junk of unknown method with descriptor", []rawEntry{{name: "junk", data: junk, method: 12, descriptor: true}, {name: "MyAdapter.conf", data: c, method: 8}},
			"adapter.zip: junk: has a data descriptor and method 12: unsupported, its end cannot be found"},
		{"conf of unknown method", []rawEntry{{name: "MyAdapter.conf", data: c, method: 12}},
			"adapter.zip: MyAdapter.conf: compressed with unsupported method 12"},
		{"encrypted conf", []rawEntry{{name: "MyAdapter.conf", data: c, method: 0, flags: 0x1}},
			"adapter.zip: MyAdapter.conf: is encrypted"},
		{"name too long", []rawEntry{{name: strings.Repeat("n", 5000), method: 0}},
			"adapter.zip: entry 1: name longer than 4096 bytes"},
		{"too many entries", many, "adapter.zip: more than 100000 entries"},
	}
	// A conf whose deflate data is garbage: stored bytes, labelled deflated.
	bad := rawZip(rawEntry{name: "MyAdapter.conf", data: []byte{0xff, 0xff, 0xff, 0xff}, method: 0})
	bad[8] = 8 // method
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readBytes("x.pak", paktest.Pak{RawAdapterZip: rawZip(tt.entries...)}.Bytes())
			if err == nil || !strings.Contains(err.Error(), "x.pak: "+tt.want) || !errors.Is(err, pak.ErrInvalid) {
				t.Errorf("Read error %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("garbage deflate data", func(t *testing.T) {
		_, err := readBytes("x.pak", paktest.Pak{RawAdapterZip: bad}.Bytes())
		if err == nil || !strings.Contains(err.Error(), "x.pak: adapter.zip: MyAdapter.conf: damaged compressed data") {
			t.Errorf("Read error %v", err)
		}
	})
	t.Run("truncated inside an entry", func(t *testing.T) {
		z := rawZip(rawEntry{name: "junk", data: junk, method: 8}, rawEntry{name: "MyAdapter.conf", data: c, method: 8})
		_, err := readBytes("x.pak", paktest.Pak{RawAdapterZip: z[:100]}.Bytes())
		if err == nil || !strings.Contains(err.Error(), "x.pak: adapter.zip: junk: truncated: ends inside this entry") {
			t.Errorf("Read error %v", err)
		}
	})
	t.Run("junk after the entries", func(t *testing.T) {
		z := rawZip(rawEntry{name: "a.conf", data: c, method: 8})
		z = append(z[:len(z)-22], "garbage"...)
		_, err := readBytes("x.pak", paktest.Pak{RawAdapterZip: z}.Bytes())
		if err == nil || !strings.Contains(err.Error(), "x.pak: adapter.zip: no ZIP header at offset") {
			t.Errorf("Read error %v", err)
		}
	})
}

// open reads the file at path through OpenFile, as the commands do, and
// closes it.
func open(path string) (pak.Image, error) {
	f, err := pak.OpenFile(path)
	if err != nil {
		return pak.Image{}, err
	}
	defer f.Close()
	return f.Image, nil
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	p := paktest.Pak{Registry: paktest.Registry}
	path := p.WriteFile(t, dir)
	if filepath.Base(path) != "MyAdapter_1.0.0.pak" {
		t.Errorf("WriteFile wrote %s", path)
	}
	inputs := map[string][]byte{"adapter.zip": p.AdapterZip(), "MyAdapter.conf": p.Conf(), "renamed.bin": p.Bytes()}
	for name, data := range inputs {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ file, format string }{
		{"MyAdapter_1.0.0.pak", "pak"}, {"adapter.zip", "adapter.zip"}, {"MyAdapter.conf", "conf"}, {"renamed.bin", "pak"},
	} {
		img, err := open(filepath.Join(dir, tt.file))
		if err != nil {
			t.Errorf("Open(%s): %v", tt.file, err)
			continue
		}
		if img.Format != tt.format || img.File != filepath.Join(dir, tt.file) || img.Digest != paktest.Digest {
			t.Errorf("Open(%s) = %+v", tt.file, img)
		}
	}

	missing := filepath.Join(dir, "missing.pak")
	_, err := open(missing)
	if err == nil || err.Error() != missing+": cannot open: no such file or directory" || !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, pak.ErrInvalid) {
		t.Errorf("Open(missing) error %v", err)
	}
	_, err = open(dir)
	if err == nil || err.Error() != dir+": is a directory" || !errors.Is(err, pak.ErrInvalid) {
		t.Errorf("Open(dir) error %v", err)
	}
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r *os.File
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// TestReadSkipsContent checks that a big pak is read without touching its
// content/: only the directory, manifest.txt and the head of adapter.zip.
func TestReadSkipsContent(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 64 MiB pak")
	}
	p := paktest.Pak{Registry: paktest.Registry, ContentBytes: 64 << 20}
	path := p.WriteFile(t, t.TempDir())
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 64<<20 {
		t.Fatalf("pak is only %d bytes", st.Size())
	}
	cr := &countingReaderAt{r: f}
	img, err := pak.Read(path, cr, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != paktest.Digest {
		t.Errorf("Read = %+v", img)
	}
	if n := cr.n.Load(); n > 128<<10 {
		t.Errorf("read %d bytes of a %d-byte pak, want under 128 KiB", n, st.Size())
	}

	// The filler really is in the pak, and really is incompressible.
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var content uint64
	for _, zf := range zr.File {
		if strings.HasPrefix(zf.Name, "content/files/") && !zf.FileInfo().IsDir() {
			content += zf.CompressedSize64
			if zf.Name == "content/files/filler-000.bin" {
				rc, err := zf.Open()
				if err != nil {
					t.Fatal(err)
				}
				var sum int64
				buf := make([]byte, 1<<20)
				for {
					n, err := rc.Read(buf)
					sum += int64(n)
					if err != nil {
						break
					}
				}
				if err := rc.Close(); err != nil || sum != 64<<20 {
					t.Errorf("filler-000.bin: read %d bytes, close error %v", sum, err)
				}
			}
		}
	}
	if content < 64<<20 {
		t.Errorf("content/ holds %d compressed bytes", content)
	}
}

// TestReadPythonBuiltPak reads a pak written by Python's zipfile with the
// same calls, in the same order, as the SDK's mp_build.py (a 2 KiB fixture,
// content/ included), so that the reader is checked against a writer other
// than paktest's.
func TestReadPythonBuiltPak(t *testing.T) {
	img, err := open(filepath.Join("testdata", "PyAdapter_2.1.0.pak"))
	if err != nil {
		t.Fatal(err)
	}
	want := pak.Image{
		File: filepath.Join("testdata", "PyAdapter_2.1.0.pak"), Format: "pak", PackName: "iSDK_PyAdapter", PackVersion: "2.1.0",
		AdapterKind: "PyAdapter", ConfPath: "adapter.zip/PyAdapter.conf", Registry: "harbor.example.com:8443",
		Repository: "proj/sub/pyadapter", Digest: "sha256:" + strings.Repeat("ab", 32),
	}
	if img != want {
		t.Errorf("Open =\n%+v, want\n%+v", img, want)
	}
	target, err := img.Resolve("")
	if err != nil || target.Reference != "harbor.example.com:8443/proj/sub/pyadapter@"+want.Digest {
		t.Errorf("Resolve = %q, %v", target.Reference, err)
	}
}

// TestReadTellsPakFromAdapterZip checks that a pak is told by its manifest
// naming an adapter archive it holds, even with a stray .conf at its root.
func TestReadTellsPakFromAdapterZip(t *testing.T) {
	p := paktest.Pak{Registry: paktest.Registry}
	b := zipOf("manifest.txt", string(p.Manifest()), "stray.conf", "junk", "adapter.zip", string(p.AdapterZip()))
	img, err := readBytes("in", b)
	if err != nil {
		t.Fatal(err)
	}
	if w := want("pak", "adapter.zip/MyAdapter.conf", paktest.Registry, repo); img != w {
		t.Errorf("Read =\n%+v, want\n%+v", img, w)
	}
}

// failingReaderAt fails every read past the first n bytes.
type failingReaderAt struct {
	data []byte
	n    int64
}

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.n {
		return 0, errors.New("input/output error")
	}
	return copy(p, f.data[off:]), nil
}

func TestReadIOError(t *testing.T) {
	b := paktest.Pak{Registry: paktest.Registry}.Bytes()
	for _, n := range []int64{0, 4, int64(len(b)) / 2} {
		_, err := pak.Read("x.pak", failingReaderAt{data: b, n: n}, int64(len(b)))
		if err == nil || !errors.Is(err, pak.ErrInvalid) || !strings.Contains(err.Error(), "input/output error") || !strings.HasPrefix(err.Error(), "x.pak: ") {
			t.Errorf("Read failing after %d bytes: error %v", n, err)
		}
	}
}
