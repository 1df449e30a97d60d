package pak

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	safetext "github.com/prepull/prepull/internal/display"
)

// Rewrite writes to dst a copy of the pack img was read from (img must come
// from Open of a .pak) whose adapter .conf names registry and repository
// (with its leading slash) instead: REGISTRY and REPOSITORY are replaced, or
// REGISTRY added where the pack left it out. Every other member of the pak
// and of its adapter archive is copied byte for byte, compressed data and
// headers included, in the same order.
//
// Only unsigned packs as the Integration SDK builds them are rewritten: a
// pack carrying a signature or certificate member is refused, since the
// rewrite would break its signature. dst is written atomically (a temporary
// file in its folder, synced, then renamed) and must not be the pack itself.
func Rewrite(img Image, dst, registry, repository string) error {
	if img.Format != FormatPak {
		return fmt.Errorf("%s: only .pak files can be rewritten (this is %s)", safetext.Text(img.File), img.Format)
	}
	inner, confName, ok := strings.Cut(img.ConfPath, "/")
	if !ok || inner == "" || confName == "" {
		return fmt.Errorf("%s: no adapter .conf to rewrite", safetext.Text(img.File))
	}
	if sameFile(img.File, dst) {
		return fmt.Errorf("%s: the output would replace the pak itself", safetext.Text(dst))
	}

	// The errors of os name the file.
	src, err := os.Open(img.File)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	zr, err := openZip(src, st.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", safetext.Text(img.File), err)
	}
	if m := signatureMember(zr.File); m != "" {
		return fmt.Errorf("%s: holds %s, which looks like a signature or certificate: only unsigned packs built by the Integration SDK can be rewritten, since a rewrite would break a signature", safetext.Text(img.File), display(m))
	}

	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	w := zip.NewWriter(tmp)
	if err := copyRewriting(w, zr, src, inner, confName, registry, repository); err != nil {
		return fmt.Errorf("%s: %w", safetext.Text(img.File), err)
	}
	if err := w.SetComment(zr.Comment); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: %w", safetext.Text(dst), err)
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := readBack(img, tmp, dst, registry, repository); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// readBack reads the rewritten pak in tmp with Read, the strict reader
// every prepull uses, before it is put in place as dst: it must name the
// new registry and repository, and otherwise the image, kind and pack of
// img. A pak Rewrite copied a hostile member into is refused here.
func readBack(img Image, tmp *os.File, dst, registry, repository string) error {
	st, err := tmp.Stat()
	if err != nil {
		return err
	}
	got, err := Read(dst, tmp, st.Size())
	if err != nil {
		return fmt.Errorf("the rewritten pak does not read back: %w", err)
	}
	want := img
	want.Registry, want.Repository = registry, strings.TrimPrefix(repository, "/")
	if !sameImage(got, want) || got.ConfPath != img.ConfPath {
		return fmt.Errorf("%s: the rewritten pak reads as %s %s/%s@%s in %s, not as written", safetext.Text(dst),
			safetext.Text(got.AdapterKind), safetext.Text(got.Registry), safetext.Text(got.Repository), safetext.Text(got.Digest), display(got.ConfPath))
	}
	return nil
}

// copyRewriting copies the members of the pak zr to w, the adapter archive
// inner with its .conf confName rewritten (see rewriteInner). Each error
// names the member.
func copyRewriting(w *zip.Writer, zr *zip.Reader, src *os.File, inner, confName, registry, repository string) error {
	found := false
	for _, f := range zr.File {
		if f.Name != inner {
			if err := w.Copy(f); err != nil {
				return fmt.Errorf("%s: %w", display(f.Name), err)
			}
			continue
		}
		found = true
		if err := rewriteInner(w, src, f, confName, registry, repository); err != nil {
			return fmt.Errorf("%s: %w", display(inner), err)
		}
	}
	if !found {
		return fmt.Errorf("the pak holds no %s", display(inner))
	}
	return nil
}

// rewriteInner writes the adapter archive f with its .conf member rewritten
// as the member of the same name, method, time and attributes in w.
func rewriteInner(w *zip.Writer, src *os.File, f *zip.File, confName, registry, repository string) error {
	izr, closeInner, err := openInner(src, f)
	if err != nil {
		return err
	}
	defer closeInner()

	var buf bytes.Buffer
	iw := zip.NewWriter(&buf)
	done := false
	for _, m := range izr.File {
		if m.Name != confName {
			if err := iw.Copy(m); err != nil {
				return fmt.Errorf("%s: %w", display(m.Name), err)
			}
			continue
		}
		if done {
			return fmt.Errorf("holds %s twice", display(confName))
		}
		done = true
		data, err := readMember(m, maxConfSize)
		if err != nil {
			return fmt.Errorf("%s: %w", display(m.Name), err)
		}
		out, err := RewriteConf(data, registry, repository)
		if err != nil {
			return fmt.Errorf("%s: %w", display(m.Name), err)
		}
		h := rewrittenHeader(m.FileHeader)
		mw, err := iw.CreateHeader(&h)
		if err != nil {
			return err
		}
		if _, err := mw.Write(out); err != nil {
			return err
		}
	}
	if !done {
		return fmt.Errorf("holds no %s", display(confName))
	}
	if err := iw.SetComment(izr.Comment); err != nil {
		return err
	}
	if err := iw.Close(); err != nil {
		return err
	}
	h := rewrittenHeader(f.FileHeader)
	ow, err := w.CreateHeader(&h)
	if err != nil {
		return err
	}
	_, err = ow.Write(buf.Bytes())
	return err
}

// openInner opens the adapter archive f, a member of the archive in src, for
// random access: in place when it is stored, else from a private copy,
// which the returned function removes.
func openInner(src io.ReaderAt, f *zip.File) (*zip.Reader, func(), error) {
	if f.UncompressedSize64 > MaxInnerSize {
		return nil, nil, fmt.Errorf("claims %s uncompressed (limit %s)", bytesize(f.UncompressedSize64), limit(MaxInnerSize))
	}
	var ra io.ReaderAt
	var size int64
	closeInner := func() {}
	switch f.Method {
	case zip.Store:
		off, err := f.DataOffset()
		if err != nil {
			return nil, nil, err
		}
		ra, size = io.NewSectionReader(src, off, int64(f.CompressedSize64)), int64(f.CompressedSize64)
	default:
		// A deflated archive is read at random from a private copy.
		spool, err := os.CreateTemp("", "prepull-adapter-*.zip")
		if err != nil {
			return nil, nil, err
		}
		closeInner = func() { spool.Close(); os.Remove(spool.Name()) }
		rc, err := f.Open()
		if err == nil {
			size, err = io.Copy(spool, io.LimitReader(rc, MaxInnerSize+1))
			rc.Close()
		}
		if err == nil && size > MaxInnerSize {
			err = fmt.Errorf("larger than %s uncompressed", limit(MaxInnerSize))
		}
		if err != nil {
			closeInner()
			return nil, nil, err
		}
		ra = spool
	}
	izr, err := openZip(ra, size)
	if err != nil {
		closeInner()
		return nil, nil, fmt.Errorf("not a readable ZIP archive: %w", err)
	}
	return izr, closeInner, nil
}

// rewrittenHeader keeps a member's name, method, time, comment and
// attributes for new content. The writer computes the sizes and checksum;
// the extra fields go, since they may carry the old zip64 sizes.
func rewrittenHeader(h zip.FileHeader) zip.FileHeader {
	h.Extra = nil
	return h
}

// maxConfSize bounds a .conf read for a rewrite; a real one is a few hundred
// bytes.
const maxConfSize = 1 << 20

// readMember reads a whole member of at most limit bytes.
func readMember(f *zip.File, max int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %s", limit(uint64(max)))
	}
	return data, nil
}

// RewriteConf returns the .conf data with REGISTRY and REPOSITORY set to
// registry and repository, every other line, comment and line ending as it
// was. A missing REGISTRY line (a pack built with --use-default-registry) is
// added just before REPOSITORY. The result must parse back to those values.
func RewriteConf(data []byte, registry, repository string) ([]byte, error) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var out bytes.Buffer
	sawRegistry, sawRepository := false, false
	for _, line := range lines {
		if len(line) == 0 {
			continue
		}
		body := bytes.TrimRight(line, "\r\n")
		eol := line[len(body):]
		key, _, ok := bytes.Cut(body, []byte("="))
		switch k := string(bytes.TrimSpace(key)); {
		case ok && k == "REGISTRY":
			sawRegistry = true
			fmt.Fprintf(&out, "REGISTRY=%s%s", registry, eol)
		case ok && k == "REPOSITORY":
			if !sawRegistry {
				fmt.Fprintf(&out, "REGISTRY=%s%s", registry, orLF(eol))
				sawRegistry = true
			}
			sawRepository = true
			fmt.Fprintf(&out, "REPOSITORY=%s%s", repository, eol)
		default:
			out.Write(line)
		}
	}
	if !sawRepository {
		return nil, errors.New("REPOSITORY is missing")
	}
	c, err := ParseConf(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("rewritten: %w", err)
	}
	if c.Registry != registry || "/"+c.Repository != repository && c.Repository != repository {
		return nil, fmt.Errorf("rewritten, it reads REGISTRY=%s REPOSITORY=%s", quote(c.Registry), quote(c.Repository))
	}
	return out.Bytes(), nil
}

func orLF(eol []byte) []byte {
	if len(eol) == 0 {
		return []byte("\n")
	}
	return eol
}

// signatureMember returns the first member at the pak's root (or under
// META-INF/) that looks like a signature or a certificate, which packs built
// by the Integration SDK never hold there, or "".
func signatureMember(files []*zip.File) string {
	for _, f := range files {
		name := strings.ToLower(f.Name)
		base := path.Base(name)
		switch {
		case strings.Contains(strings.TrimSuffix(name, "/"), "/") && !strings.HasPrefix(name, "meta-inf/"):
			continue
		case strings.HasPrefix(name, "meta-inf/"),
			strings.Contains(base, "signature"),
			strings.HasSuffix(base, ".sig"), strings.HasSuffix(base, ".sign"),
			strings.HasSuffix(base, ".cert"), strings.HasSuffix(base, ".crt"),
			strings.HasSuffix(base, ".pem"), strings.HasSuffix(base, ".p7s"),
			strings.HasSuffix(base, ".p7b"), strings.HasSuffix(base, ".jws"),
			strings.HasSuffix(base, ".asc"), strings.HasSuffix(base, ".mf"):
			return f.Name
		}
	}
	return ""
}

// sameFile tells whether a and b name the same existing file.
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}
