package pak

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"strings"

	safetext "github.com/prepull/prepull/internal/display"
)

// slim returns what a Cloud Proxy needs of the file of size bytes in r that
// img was read from, to pull its image: for a pak or an adapter archive,
// a small adapter archive holding only the adapter .conf and the
// manifest.txt (the pak's own, or the archive's copy), each copied byte for
// byte, compressed data and headers included; for a .conf, the file itself.
//
// Read takes the result as an adapter archive (or a .conf) and finds in it
// the same adapter kind, pack name and version, REGISTRY, REPOSITORY and
// DIGEST as in the file: slim checks that before returning it. Every prepull
// reads it, on a path or on standard input, with the same checks as the
// file. Its size does not grow with the pak's: a .conf and a manifest are a
// few KiB, whatever content/ holds.
func slim(img Image, r io.ReaderAt, size int64) ([]byte, error) {
	var out []byte
	var err error
	switch img.Format {
	case FormatConf:
		if size > MaxConfSize {
			return nil, fmt.Errorf("%s: larger than %s", safetext.Text(img.File), limit(MaxConfSize))
		}
		out = make([]byte, size)
		_, err = io.ReadFull(io.NewSectionReader(r, 0, size), out)
	case FormatPak, FormatAdapterZip:
		out, err = slimZip(img, r, size)
	default:
		err = fmt.Errorf("unknown format %q", img.Format)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", safetext.Text(img.File), err)
	}
	got, err := Read(img.File, bytes.NewReader(out), int64(len(out)))
	if err != nil {
		return nil, fmt.Errorf("the slim copy does not read back: %w", err)
	}
	if !sameImage(got, img) {
		return nil, fmt.Errorf("%s: the slim copy reads as %s %s/%s@%s, not as the file", safetext.Text(img.File),
			safetext.Text(got.AdapterKind), safetext.Text(got.Registry), safetext.Text(got.Repository), safetext.Text(got.Digest))
	}
	return out, nil
}

// sameImage tells whether a and b name the same image for the same adapter
// and pack, wherever they were read from.
func sameImage(a, b Image) bool {
	return a.AdapterKind == b.AdapterKind && a.PackName == b.PackName && a.PackVersion == b.PackVersion &&
		a.Registry == b.Registry && a.Repository == b.Repository && a.Digest == b.Digest
}

// slimZip writes the adapter archive of Slim for a pak or an adapter archive
// of size bytes in src.
func slimZip(img Image, src io.ReaderAt, size int64) ([]byte, error) {
	zr, err := openZip(src, size)
	if err != nil {
		return nil, err
	}
	manifest := member(zr.File, manifestName)
	files, confName := zr.File, img.ConfPath
	if img.Format == FormatPak {
		inner, name, ok := strings.Cut(img.ConfPath, "/")
		if !ok {
			return nil, fmt.Errorf("no adapter .conf in %s", display(img.ConfPath))
		}
		af := member(zr.File, inner)
		if af == nil {
			return nil, fmt.Errorf("no member %s", display(inner))
		}
		izr, closeInner, err := openInner(src, af)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", display(inner), err)
		}
		defer closeInner()
		files, confName = izr.File, name
	}
	conf := member(files, confName)
	if conf == nil {
		return nil, fmt.Errorf("no member %s", display(img.ConfPath))
	}
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	// The .conf first, as the Integration SDK writes it.
	for _, m := range []*zip.File{conf, manifest} {
		if m == nil {
			continue
		}
		if err := w.Copy(m); err != nil {
			return nil, fmt.Errorf("%s: %w", display(m.Name), err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
