package mirror

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/registrytest"
)

// source is an in-memory registry on loopback (go-containerregistry's)
// holding one random image, and a pak naming it: for the bundle's logic.
// The end-to-end tests use docker-registry.
type source struct {
	host, pak string
	img       v1.Image
}

func newSource(t *testing.T, kind string) source {
	t.Helper()
	host := registrytest.Start(t, nil)
	img := registrytest.Image(t, 2048, 2, "")
	d := registrytest.Push(t, host+"/proj/x:latest", img)
	file := paktest.Pak{Kind: kind, Version: "1.0.0", Registry: host, Repository: "/proj/x", Digest: d.String()}.WriteFile(t, t.TempDir())
	return source{host: host, pak: file, img: img}
}

// export writes the paks of srcs into the bundle b and returns the bundle
// manifest's SHA-256.
func export(t *testing.T, b BundleRef, srcs ...source) (string, error) {
	t.Helper()
	var paks []ExportPak
	for _, s := range srcs {
		f, err := pak.OpenFile(s.pak)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		tgt, err := f.Image.Resolve("")
		if err != nil {
			t.Fatal(err)
		}
		paks = append(paks, ExportPak{Path: s.pak, Image: f.Image, Target: tgt})
	}
	c := &Copier{}
	e, err := c.PlanExport(context.Background(), paks)
	if err != nil {
		t.Fatal(err)
	}
	return c.Write(context.Background(), e, b, &Counter{})
}

func member(h v1.Hash) string { return "blobs/sha256/" + h.Hex }

func TestBundleRefusesWhatItsManifestDoesNotLeadTo(t *testing.T) {
	src := newSource(t, "Bundled")
	dir := filepath.Join(t.TempDir(), "bundle")
	sum, err := export(t, BundleRef{KindDir, dir}, src)
	if err != nil {
		t.Fatal(err)
	}
	top, _ := src.img.Digest()
	raw, _ := src.img.RawManifest()
	if stored, err := os.ReadFile(filepath.Join(dir, member(top))); err != nil || !bytes.Equal(stored, raw) {
		t.Fatalf("the top manifest is not stored as served (%v)", err)
	}
	b, err := OpenBundle(BundleRef{KindDir, dir}, sum, &Counter{})
	if err != nil {
		t.Fatalf("a bundle as exported: %v", err)
	}
	if b.SHA256 != sum {
		t.Errorf("OpenBundle says SHA-256 %s, the export %s", b.SHA256, sum)
	}
	if s := b.Summary(); s.Images != 1 || s.Manifests != 1 || s.Blobs != 3 {
		t.Errorf("summary %+v, want 1 image, 1 manifest, 3 blobs", s)
	}

	// Another SHA-256 than the export's: refused.
	other := strings.Repeat("0", 64)
	if _, err := OpenBundle(BundleRef{KindDir, dir}, other, &Counter{}); !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), other) {
		t.Errorf("OpenBundle with another SHA-256: %v, want it refused", err)
	}

	// Exported again into the same folder: the same bundle.
	if again, err := export(t, BundleRef{KindDir, dir}, src); err != nil || again != sum {
		t.Fatalf("the same export again: %s, %v; want %s", again, err, sum)
	}
	// An export cut short (a layer half written, no bundle manifest yet)
	// runs again and completes.
	cut := copyTree(t, dir)
	cutLayers, _ := src.img.Layers()
	cutLayer, _ := cutLayers[0].Digest()
	truncate(t, filepath.Join(cut, member(cutLayer)))
	rm(t, filepath.Join(cut, BundleManifestFile))
	if again, err := export(t, BundleRef{KindDir, cut}, src); err != nil || again != sum {
		t.Fatalf("the export cut short, again: %s, %v; want %s", again, err, sum)
	}
	if _, err := OpenBundle(BundleRef{KindDir, cut}, sum, &Counter{}); err != nil {
		t.Fatalf("the export cut short, completed: %v", err)
	}
	// Another export into it is refused: a bundle carries only what it lists.
	if _, err := export(t, BundleRef{KindDir, dir}, newSource(t, "Other")); err == nil || !strings.Contains(err.Error(), "name a new folder") {
		t.Fatalf("another export into the folder: %v, want it refused", err)
	}

	cfg, _ := src.img.ConfigName()
	layers, _ := src.img.Layers()
	layer, _ := layers[1].Digest()
	pakMember := "paks/" + filepath.Base(src.pak)
	tests := []struct {
		name, member string
		alter        func(dir string)
	}{
		{"a layer with a flipped byte", member(layer), func(d string) { flip(t, filepath.Join(d, member(layer))) }},
		{"a layer missing", member(layer), func(d string) { rm(t, filepath.Join(d, member(layer))) }},
		{"a layer cut short", member(layer), func(d string) { truncate(t, filepath.Join(d, member(layer))) }},
		{"the config missing", member(cfg), func(d string) { rm(t, filepath.Join(d, member(cfg))) }},
		{"the manifest altered", member(top), func(d string) { flip(t, filepath.Join(d, member(top))) }},
		{"the pak altered", pakMember, func(d string) { flip(t, filepath.Join(d, pakMember)) }},
		{"the pak missing", pakMember, func(d string) { rm(t, filepath.Join(d, pakMember)) }},
		{"the bundle manifest missing", BundleManifestFile, func(d string) { rm(t, filepath.Join(d, BundleManifestFile)) }},
		{"the bundle manifest with an unknown field", BundleManifestFile, func(d string) {
			p := filepath.Join(d, BundleManifestFile)
			data, _ := os.ReadFile(p)
			write(t, p, bytes.Replace(data, []byte(`"version"`), []byte(`"extra": 1, "version"`), 1))
		}},
		{"index.json without the image", "index.json", func(d string) {
			write(t, filepath.Join(d, "index.json"), []byte(`{"schemaVersion":2,"manifests":[]}`))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := copyTree(t, dir)
			tt.alter(d)
			_, err := OpenBundle(BundleRef{KindDir, d}, "", &Counter{})
			if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), tt.member) {
				t.Fatalf("OpenBundle: %v, want it refused naming %s", err, tt.member)
			}
		})
	}
}

func TestBundleArchiveUnpacksOnlyLayoutMembers(t *testing.T) {
	src := newSource(t, "Archived")
	file := filepath.Join(t.TempDir(), "b.tar")
	sum, err := export(t, BundleRef{KindArchive, file}, src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file + ".partial"); err == nil {
		t.Error("the export left its .partial folder")
	}
	b, err := OpenBundle(BundleRef{KindArchive, file}, "", &Counter{})
	if err != nil {
		t.Fatalf("an archive as exported: %v", err)
	}
	if b.SHA256 != sum {
		t.Errorf("SHA-256 %s, the export said %s", b.SHA256, sum)
	}
	tmp := b.Dir
	b.Close()
	if _, err := os.Stat(tmp); err == nil {
		t.Error("Close left the unpacked archive")
	}

	valid, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "escaped")
	tests := []struct {
		name, member string
		hdr          tar.Header
	}{
		{"a name with ..", "../", tar.Header{Typeflag: tar.TypeReg, Name: "blobs/../../" + filepath.Base(outside), Size: 1}},
		{"an absolute name", outside, tar.Header{Typeflag: tar.TypeReg, Name: outside, Size: 1}},
		{"a symbolic link", "paks/link.pak", tar.Header{Typeflag: tar.TypeSymlink, Name: "paks/link.pak", Linkname: "/etc/passwd"}},
		{"a member twice", "oci-layout", tar.Header{Typeflag: tar.TypeReg, Name: "oci-layout", Size: 1}},
		{"a stray file", "notes.txt", tar.Header{Typeflag: tar.TypeReg, Name: "notes.txt", Size: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.tar")
			write(t, bad, appendMember(t, valid, tt.hdr))
			_, err := OpenBundle(BundleRef{KindArchive, bad}, "", &Counter{})
			if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), tt.member) {
				t.Fatalf("OpenBundle: %v, want it refused naming %s", err, tt.member)
			}
			if _, err := os.Lstat(outside); err == nil {
				t.Fatal("a member was written outside the bundle")
			}
		})
	}
	t.Run("cut short", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "short.tar")
		write(t, bad, valid[:len(valid)*2/3])
		if _, err := OpenBundle(BundleRef{KindArchive, bad}, "", &Counter{}); !errors.Is(err, ErrBundle) {
			t.Fatalf("OpenBundle: %v, want it refused", err)
		}
	})
}

// appendMember returns the tar archive with hdr (and hdr.Size bytes of
// content) added after its last member.
func appendMember(t *testing.T, archive []byte, hdr tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		data := new(bytes.Buffer)
		if _, err := data.ReadFrom(tr); err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data.Bytes())
	}
	if err := tw.WriteHeader(&hdr); err != nil {
		t.Fatal(err)
	}
	tw.Write(bytes.Repeat([]byte("x"), int(hdr.Size)))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func copyTree(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "bundle")
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func flip(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	write(t, path, data)
}

func truncate(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, data[:len(data)-1])
}

func rm(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
