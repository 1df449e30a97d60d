package pak

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// The input formats, as Image.Format reports them.
const (
	FormatPak        = "pak"         // a management pack: outer ZIP with manifest.txt and an adapter archive
	FormatAdapterZip = "adapter.zip" // the inner adapter archive on its own
	FormatConf       = "conf"        // the adapter .conf file on its own
)

const manifestName = "manifest.txt"

// Read reads a .pak, an adapter.zip or a .conf file of size bytes from r;
// name is how errors and Image.File name it ("-" for standard input). A ZIP
// is told by its signature; anything else is read as a .conf. Only the parts
// needed are read: the outer central directory, manifest.txt and the inner
// adapter archive; never content/. Every error is an *Error
// and wraps ErrInvalid.
func Read(name string, r io.ReaderAt, size int64) (Image, error) {
	switch {
	case size == 0:
		return Image{}, invalid(name, nil, "empty file")
	case size < 0:
		return Image{}, invalid(name, nil, "unknown size")
	}
	var head [4]byte
	n, err := r.ReadAt(head[:], 0)
	if n < len(head) && int64(n) < size {
		return Image{}, invalid(name, nil, "cannot read: %w", err)
	}
	if isZip(head[:n]) {
		return readZip(name, r, size)
	}
	return readConf(name, r, size)
}

// isZip tells whether head starts like a ZIP archive: a local file header, an
// empty archive's end record, or a spanning marker.
func isZip(head []byte) bool {
	return bytes.HasPrefix(head, []byte("PK\x03\x04")) ||
		bytes.HasPrefix(head, []byte("PK\x05\x06")) ||
		bytes.HasPrefix(head, []byte("PK\x07\x08"))
}

// readConf reads input that is not a ZIP as a .conf file.
func readConf(name string, r io.ReaderAt, size int64) (Image, error) {
	if size > MaxConfSize {
		return Image{}, invalid(name, nil, "not a ZIP archive, and too large for a .conf (%s; limit %s)", sizeOf(size), limit(MaxConfSize))
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(r, 0, size), data); err != nil {
		return Image{}, invalid(name, nil, "cannot read: %w", err)
	}
	c, err := ParseConf(data)
	if err != nil {
		if !strings.HasSuffix(strings.ToLower(name), ".conf") {
			err = invalidf("not a ZIP archive, and not a valid .conf: %w", err)
		}
		return Image{}, &Error{File: name, Err: err}
	}
	if c.KindKey == "" {
		return Image{}, invalid(name, nil, "KINDKEY is missing")
	}
	return imageOf(name, FormatConf, filepath.Base(name), c.KindKey, c), nil
}

// imageOf builds the Image a .conf describes.
func imageOf(file, format, confPath, kind string, c Conf) Image {
	return Image{
		File:        file,
		Format:      format,
		AdapterKind: kind,
		ConfPath:    confPath,
		Registry:    c.Registry,
		Repository:  c.Repository,
		Digest:      c.Digest,
	}
}

// readZip reads a ZIP that is either a pak or an adapter archive.
func readZip(name string, r io.ReaderAt, size int64) (Image, error) {
	zr, err := openZip(r, size)
	switch {
	case errors.Is(err, ErrInvalid):
		return Image{}, &Error{File: name, Err: err}
	case err != nil:
		return Image{}, invalid(name, nil, "not a readable ZIP archive (truncated or damaged?): %w", err)
	}
	if err := checkNames(fileNames(zr.File)); err != nil {
		return Image{}, rebase(err, name, nil)
	}
	mf := member(zr.File, manifestName)
	// A pak's manifest names an adapter archive it holds; an adapter
	// archive's copy of the manifest names one it does not hold.
	if mf != nil {
		if m, err := readManifest(mf); err == nil && len(m.Adapters) > 0 {
			if af := member(zr.File, m.Adapters[0]); af != nil {
				return readPak(name, r, zr, mf)
			}
		}
	}
	roots, jar := rootConfs(zr.File)
	switch {
	case len(roots) > 0:
		return readAdapterZip(name, r, size, zr)
	case mf != nil:
		return readPak(name, r, zr, mf)
	case jar != "":
		return Image{}, &Error{File: name, Err: classicError(jar)}
	}
	return Image{}, invalid(name, nil, "a ZIP archive, but neither a pak (no manifest.txt) nor an adapter archive (no .conf at its root)")
}

// openZip opens a ZIP archive reading at most MaxDirectorySize bytes of
// central directory, so that an archive of millions of tiny entries is
// refused before archive/zip holds them all in memory. An insecure member
// path is no error: nothing is extracted.
func openZip(r io.ReaderAt, size int64) (*zip.Reader, error) {
	br := &budgetReaderAt{r: r, left: MaxDirectorySize + maxEndSearch}
	zr, err := zip.NewReader(br, size)
	br.off = true // reads of members later are bounded elsewhere
	switch {
	case errors.Is(err, errTooLarge):
		return nil, invalidf("central directory larger than %s: more entries than a pak holds", limit(MaxDirectorySize))
	case errors.Is(err, zip.ErrInsecurePath):
		return zr, nil
	}
	return zr, err
}

// maxEndSearch is what archive/zip may read, beyond the central directory,
// to find the end of central directory record: a comment of up to 64 KiB and
// the zip64 records.
const maxEndSearch = 68 << 10

// budgetReaderAt fails with errTooLarge once more than left bytes were read,
// until off is set.
type budgetReaderAt struct {
	r    io.ReaderAt
	left int64
	off  bool
}

func (b *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if b.off {
		return b.r.ReadAt(p, off)
	}
	if int64(len(p)) > b.left {
		return 0, errTooLarge
	}
	n, err := b.r.ReadAt(p, off)
	b.left -= int64(n)
	return n, err
}

// readPak reads a management pack: its manifest, then the .conf inside the
// adapter archive the manifest names.
func readPak(name string, r io.ReaderAt, zr *zip.Reader, mf *zip.File) (Image, error) {
	m, err := readManifest(mf)
	if err != nil {
		return Image{}, &Error{File: name, Members: []string{manifestName}, Err: err}
	}
	kind, err := m.kind()
	if err != nil {
		return Image{}, &Error{File: name, Members: []string{manifestName}, Err: err}
	}
	if len(m.Adapters) == 0 {
		return Image{}, invalid(name, []string{manifestName}, "adapters is empty or missing: no adapter archive named")
	}
	inner := m.Adapters[0]
	af := member(zr.File, inner)
	if af == nil {
		return Image{}, invalid(name, []string{manifestName}, "names adapter archive %s, which the pak does not hold", quote(inner))
	}
	members := []string{inner}
	if af.UncompressedSize64 > MaxInnerSize {
		return Image{}, invalid(name, members, "claims %s uncompressed (limit %s)", bytesize(af.UncompressedSize64), limit(MaxInnerSize))
	}

	if af.Method == zip.Store && af.CompressedSize64 != af.UncompressedSize64 {
		return Image{}, invalid(name, members, "stored uncompressed, but its sizes differ (%d and %d bytes)", af.CompressedSize64, af.UncompressedSize64)
	}
	found, err := readAdapterArchive(af, kind)
	if errors.Is(err, errNoConf) {
		if found.jar != "" || inner == "adapters.zip" {
			err = classicError(found.jar)
		} else {
			err = invalidf("no .conf file at its root")
		}
	}
	if err != nil {
		return Image{}, rebase(err, name, members)
	}
	c, err := ParseConf(found.data)
	if err != nil {
		return Image{}, &Error{File: name, Members: []string{inner, found.name}, Err: err}
	}
	img := imageOf(name, FormatPak, inner+"/"+found.name, kind, c)
	img.PackName, img.PackVersion = m.name(), m.version()
	return img, nil
}

// classicError tells that a pack is a classic one; jar is a .jar member seen,
// if any.
func classicError(jar string) error {
	if jar == "" {
		return invalidf("%w (no .conf)", ErrClassic)
	}
	return invalidf("%w (found %s and no .conf)", ErrClassic, display(jar))
}

// readAdapterArchive reads the adapter archive af, stored or deflated, through
// readInner. archive/zip checks its size and CRC as it is read to the end.
func readAdapterArchive(af *zip.File, kind string) (conf, error) {
	switch af.Method {
	case zip.Store, zip.Deflate:
	default:
		return conf{}, invalidf("compressed with unsupported method %d", af.Method)
	}
	rc, err := af.Open()
	if err != nil {
		return conf{}, invalidf("cannot read: %w", err)
	}
	defer rc.Close()
	return readInner(rc, kind)
}

// readAdapterZip reads an adapter archive given on its own. Its kind comes
// from the manifest.txt copy inside it when that names exactly one kind, else
// from the .conf's KINDKEY, else from the .conf's name.
func readAdapterZip(name string, r io.ReaderAt, size int64, zr *zip.Reader) (Image, error) {
	var m manifest
	kind := ""
	if mf := member(zr.File, manifestName); mf != nil {
		if mm, err := readManifest(mf); err == nil {
			m = mm
			if k, err := m.kind(); err == nil {
				kind = k
			}
		}
	}
	found, err := readInner(io.NewSectionReader(r, 0, size), kind)
	if errors.Is(err, errNoConf) { // cannot happen: readZip saw a root .conf
		err = invalidf("no .conf file at its root")
	}
	if err != nil {
		return Image{}, rebase(err, name, nil)
	}
	c, err := ParseConf(found.data)
	if err != nil {
		return Image{}, &Error{File: name, Members: []string{found.name}, Err: err}
	}
	if kind == "" {
		kind = c.KindKey
	}
	if kind == "" {
		kind = strings.TrimSuffix(strings.TrimSuffix(found.name, ".conf"), "_adapter3")
		if err := checkKind(kind); err != nil {
			return Image{}, invalid(name, []string{found.name}, "KINDKEY is missing, and the file name gives no adapter kind")
		}
	}
	img := imageOf(name, FormatAdapterZip, found.name, kind, c)
	img.PackName, img.PackVersion = m.name(), m.version()
	return img, nil
}

// conf is a .conf member found in an adapter archive.
type conf struct {
	name string // member name
	data []byte
	jar  string // a .jar member seen, for telling classic packs
}

// errNoConf means an adapter archive has no .conf at its root.
var errNoConf = invalidf("no .conf file")

// rootConfs lists the .conf members at the root of an archive, and returns
// the first .jar member, if any.
func rootConfs(files []*zip.File) (roots []string, jar string) {
	for _, f := range files {
		if isRootConf(f.Name) {
			roots = append(roots, f.Name)
		}
		jar = preferJar(jar, f.Name)
	}
	return roots, jar
}

// isRootConf tells whether a member name is a .conf at the archive root.
func isRootConf(name string) bool {
	return len(name) > len(".conf") && strings.HasSuffix(name, ".conf") && !strings.ContainsAny(name, "/\\")
}

// preferJar returns the .jar to mention when telling a classic pack: the
// first at the archive root, else the first anywhere. cur is the one so far.
func preferJar(cur, name string) string {
	if !strings.HasSuffix(strings.ToLower(name), ".jar") {
		return cur
	}
	if cur == "" || (strings.Contains(cur, "/") && !strings.Contains(name, "/")) {
		return name
	}
	return cur
}

// choose applies the lookup order to the root .conf names of an adapter
// archive: <kind>.conf, then <kind>_adapter3.conf, then the only .conf. count
// is how many root .conf members there are; names may list fewer.
func choose(kind string, names []string, count int) (string, error) {
	if kind != "" {
		for _, want := range []string{kind + ".conf", kind + "_adapter3.conf"} {
			for _, n := range names {
				if n == want {
					return want, nil
				}
			}
		}
	}
	switch count {
	case 0:
		return "", errNoConf
	case 1:
		return names[0], nil
	}
	const show = 5
	shown := make([]string, 0, show)
	for _, n := range names[:min(len(names), show)] {
		shown = append(shown, display(n))
	}
	list := strings.Join(shown, ", ")
	if count > len(shown) {
		list += ", ..."
	}
	hint := ""
	if kind != "" {
		hint = fmt.Sprintf(" and none named %s.conf or %s_adapter3.conf", kind, kind)
	}
	return "", invalidf("%d .conf files at its root (%s)%s: cannot tell which one to use", count, list, hint)
}

// member finds the member with exactly this name; nil when there is none.
// Its archive passed checkNames: no two members name one path.
func member(files []*zip.File, name string) *zip.File {
	for _, f := range files {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// rebase turns an error about the inside of an archive into an *Error about
// file, with members prepended to the member names it holds.
func rebase(err error, file string, members []string) error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{File: file, Members: append(append([]string(nil), members...), e.Members...), Err: e.Err}
	}
	return &Error{File: file, Members: members, Err: err}
}

// manifest is the part of a pak's manifest.txt that matters here.
type manifest struct {
	Name         json.RawMessage `json:"name"`
	Version      json.RawMessage `json:"version"`
	Adapters     []string        `json:"adapters"`
	AdapterKinds []string        `json:"adapter_kinds"`
}

// readManifest reads and decodes manifest.txt, within MaxManifestSize.
func readManifest(f *zip.File) (manifest, error) {
	var m manifest
	if f.UncompressedSize64 > MaxManifestSize {
		return m, invalidf("claims %s uncompressed (limit %s)", bytesize(f.UncompressedSize64), limit(MaxManifestSize))
	}
	rc, err := f.Open()
	if err != nil {
		return m, invalidf("cannot read: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxManifestSize+1))
	if err != nil {
		return m, invalidf("cannot read: %w", err)
	}
	if len(data) > MaxManifestSize {
		return m, invalidf("larger than the %s limit uncompressed", limit(MaxManifestSize))
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if err := json.Unmarshal(data, &m); err != nil {
		return m, invalidf("not valid JSON: %w", err)
	}
	return m, nil
}

// kind returns the single adapter kind the manifest names.
func (m manifest) kind() (string, error) {
	switch n := len(m.AdapterKinds); n {
	case 0:
		return "", invalidf("adapter_kinds is empty or missing: exactly one adapter kind is needed")
	case 1:
	default:
		shown := make([]string, 0, 5)
		for _, k := range m.AdapterKinds[:min(n, 5)] {
			shown = append(shown, quote(k))
		}
		return "", invalidf("adapter_kinds lists %d kinds (%s): exactly one is supported", n, strings.Join(shown, ", "))
	}
	kind := m.AdapterKinds[0]
	if err := checkKind(kind); err != nil {
		return "", invalidf("adapter kind %w", err)
	}
	return kind, nil
}

// name returns the manifest's pack name as printable text.
func (m manifest) name() string { return jsonText(m.Name) }

// version returns the manifest's pack version as printable text.
func (m manifest) version() string { return jsonText(m.Version) }

// jsonText turns a JSON string or number into printable text, dropping
// control characters; other JSON values give "".
func jsonText(raw json.RawMessage) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if len(raw) == 0 || dec.Decode(&v) != nil {
		return ""
	}
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	default:
		return ""
	}
	if len(s) > 256 {
		s = s[:256]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

// sizeOf is bytesize for a signed count.
func sizeOf(n int64) string { return bytesize(uint64(max(n, 0))) }
