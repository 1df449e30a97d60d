package mirror

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
)

// BundleError says which member of a bundle is wrong and how.
type BundleError struct {
	Member, Problem string
}

func (e *BundleError) Error() string { return display.Text(e.Member) + ": " + e.Problem }

// Is makes every BundleError an ErrBundle.
func (e *BundleError) Is(target error) bool { return target == ErrBundle }

func refused(member, format string, args ...any) error {
	return &BundleError{Member: member, Problem: fmt.Sprintf(format, args...)}
}

// Bundle is a bundle that was checked whole: every pak against its
// SHA-256, every manifest and blob against its digest.
type Bundle struct {
	Ref      BundleRef
	Dir      string // the layout: the folder, or an archive's unpacked copy
	Manifest BundleManifest
	// SHA256 is the bundle manifest's, to compare with what the export
	// printed.
	SHA256 string
	trees  map[v1.Hash]*imageTree
	temp   string // removed by Close
}

// Close removes what opening an archive unpacked.
func (b *Bundle) Close() error {
	if b.temp == "" {
		return nil
	}
	return os.RemoveAll(b.temp)
}

// Summary says what a push of the whole bundle moves at most.
func (b *Bundle) Summary() Summary { return summarize(len(b.Manifest.Paks), b.trees) }

// OpenBundle opens the bundle ref names and checks all of it: the bundle
// manifest, every pak against the SHA-256 it lists, and every manifest and
// blob of every image against its digest. An archive is unpacked into a
// temporary folder first (Close removes it). With want, the hex SHA-256
// the export printed, a bundle manifest with another SHA-256 is refused
// before anything else is read. A bundle that fails is refused with an
// error that wraps ErrBundle and names the member.
func OpenBundle(ref BundleRef, want string, cnt *Counter) (*Bundle, error) {
	b := &Bundle{Ref: ref, Dir: ref.Path}
	fail := func(err error) (*Bundle, error) {
		b.Close()
		return nil, fmt.Errorf("%s: %w", display.Text(ref.String()), err)
	}
	if ref.Kind == KindArchive {
		tmp, err := os.MkdirTemp("", "prepull-bundle-")
		if err != nil {
			return fail(err)
		}
		b.temp, b.Dir = tmp, tmp
		if err := unpackArchive(ref.Path, tmp); err != nil {
			return fail(err)
		}
	} else if st, err := os.Stat(ref.Path); err != nil || !st.IsDir() {
		return fail(fmt.Errorf("not a folder"))
	}
	if err := b.check(want, cnt); err != nil {
		return fail(err)
	}
	return b, nil
}

// check checks the unpacked bundle in b.Dir.
func (b *Bundle) check(want string, cnt *Counter) error {
	if _, err := os.Stat(filepath.Join(b.Dir, "oci-layout")); err != nil {
		return refused("oci-layout", "missing: not an OCI image layout")
	}
	data, err := os.ReadFile(filepath.Join(b.Dir, BundleManifestFile))
	if err != nil {
		return refused(BundleManifestFile, "missing: not a prepull bundle")
	}
	sum := sha256.Sum256(data)
	b.SHA256 = hex.EncodeToString(sum[:])
	if want != "" && b.SHA256 != want {
		return refused(BundleManifestFile, "SHA-256 %s, not the %s given: not the bundle that was exported", b.SHA256, want)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b.Manifest); err != nil {
		return refused(BundleManifestFile, "does not parse: %v", err)
	}
	if b.Manifest.Version != bundleVersion {
		return refused(BundleManifestFile, "version %d: this prepull reads version %d", b.Manifest.Version, bundleVersion)
	}
	if len(b.Manifest.Paks) == 0 {
		return refused(BundleManifestFile, "lists no pak")
	}
	roots := map[v1.Hash]v1.Descriptor{}
	for _, p := range b.Manifest.Paks {
		cnt.TotalBytes.Add(p.Size)
		root, err := checkPakEntry(b.Dir, p)
		if err != nil {
			return err
		}
		cnt.Bytes.Add(p.Size)
		if r, ok := roots[root.Digest]; ok && r.MediaType != root.MediaType {
			return refused(BundleManifestFile, "two media types for %s", root.Digest)
		}
		roots[root.Digest] = root
	}
	return b.checkImages(roots, cnt)
}

// pakMember is what a pak's name in a bundle looks like.
var pakMember = regexp.MustCompile(`^paks/[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// checkPakEntry checks one pak of the bundle manifest against its file,
// and returns its image's top manifest descriptor.
func checkPakEntry(dir string, p BundlePak) (v1.Descriptor, error) {
	if !pakMember.MatchString(p.File) {
		return v1.Descriptor{}, refused(BundleManifestFile, "pak file %q: want paks/NAME", p.File)
	}
	h, err := v1.NewHash(p.Digest)
	if err != nil || h.Algorithm != "sha256" {
		return v1.Descriptor{}, refused(BundleManifestFile, "%s: digest %q is not a sha256 digest", p.File, p.Digest)
	}
	file := filepath.Join(dir, filepath.FromSlash(p.File))
	sum, size, err := hashFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return v1.Descriptor{}, refused(p.File, "missing")
	case err != nil:
		return v1.Descriptor{}, refused(p.File, "%v", display.WithoutPath(err))
	case size != p.Size:
		return v1.Descriptor{}, refused(p.File, "%d bytes, but %s lists %d: truncated or altered", size, BundleManifestFile, p.Size)
	case sum != p.SHA256:
		return v1.Descriptor{}, refused(p.File, "SHA-256 %s, but %s lists %s: altered", sum, BundleManifestFile, display.Text(p.SHA256))
	}
	f, err := pak.OpenFile(file)
	if err != nil {
		return v1.Descriptor{}, refused(p.File, "%v", display.WithoutPath(err))
	}
	f.Close()
	if f.Image.Digest != p.Digest {
		return v1.Descriptor{}, refused(BundleManifestFile, "%s names digest %s, but the pak names %s", p.File, p.Digest, display.Text(f.Image.Digest))
	}
	return v1.Descriptor{Digest: h, Size: p.ManifestSize, MediaType: types.MediaType(p.MediaType)}, nil
}

// checkImages walks every image from its top manifest, checking each
// manifest and blob against its digest, and that index.json lists each.
func (b *Bundle) checkImages(roots map[v1.Hash]v1.Descriptor, cnt *Counter) error {
	b.trees = map[v1.Hash]*imageTree{}
	order := slices.SortedFunc(maps.Keys(roots), func(x, y v1.Hash) int { return strings.Compare(x.Hex, y.Hex) })
	for _, h := range order {
		t, err := walkImage(roots[h], func(d v1.Descriptor) ([]byte, error) {
			data, err := readManifest(blobPath(b.Dir, d.Digest))
			if err != nil {
				return nil, refused(blobMember(d.Digest), "missing (a manifest of image %s)", h)
			}
			if err := checkDigest(d, data); err != nil {
				return nil, refused(blobMember(d.Digest), "%v: truncated or altered", err)
			}
			return data, nil
		})
		if err != nil {
			return err
		}
		b.trees[h] = t
		for _, m := range t.manifests {
			cnt.TotalBytes.Add(m.desc.Size)
			cnt.Bytes.Add(m.desc.Size)
		}
	}
	checked := map[v1.Hash]bool{}
	for _, h := range order {
		for _, bl := range b.trees[h].blobs {
			if !checked[bl.Digest] {
				checked[bl.Digest] = true
				cnt.TotalBlobs.Add(1)
				cnt.TotalBytes.Add(bl.Size)
			}
		}
	}
	clear(checked)
	for _, h := range order {
		for _, bl := range b.trees[h].blobs {
			if checked[bl.Digest] {
				continue
			}
			checked[bl.Digest] = true
			if err := checkBlob(b.Dir, bl, cnt); err != nil {
				return err
			}
			cnt.Blobs.Add(1)
		}
	}
	return checkIndex(b.Dir, roots)
}

// readManifest reads a manifest file, at most one byte more than
// maxManifestSize: checkDigest then refuses a file that is too big.
func readManifest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxManifestSize+1))
}

// checkBlob checks one blob file against its digest and size.
func checkBlob(dir string, bl v1.Descriptor, cnt *Counter) error {
	f, err := os.Open(blobPath(dir, bl.Digest))
	if err != nil {
		return refused(blobMember(bl.Digest), "missing")
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(h, counting{cnt}), f)
	switch {
	case err != nil:
		return refused(blobMember(bl.Digest), "%v", display.WithoutPath(err))
	case n != bl.Size:
		return refused(blobMember(bl.Digest), "%d bytes, but its manifest says %d: truncated or altered", n, bl.Size)
	case fmt.Sprintf("%x", h.Sum(nil)) != bl.Digest.Hex:
		return refused(blobMember(bl.Digest), "content does not match its digest: altered")
	}
	return nil
}

// checkIndex checks that index.json lists every image, as tools that read
// the layout (docker load, skopeo) expect.
func checkIndex(dir string, roots map[v1.Hash]v1.Descriptor) error {
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return refused("index.json", "missing")
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(data, &idx); err != nil {
		return refused("index.json", "does not parse: %v", err)
	}
	for h := range roots {
		if !slices.ContainsFunc(idx.Manifests, func(d v1.Descriptor) bool { return d.Digest == h }) {
			return refused("index.json", "does not list %s", h)
		}
	}
	return nil
}

// layoutMember is what a member of a bundle archive may be called: the
// layout's files, a blob, a pak, and their folders. Nothing else is
// unpacked: no links, devices, absolute or .. names.
var layoutMember = regexp.MustCompile(`^(oci-layout|index\.json|` + regexp.QuoteMeta(BundleManifestFile) +
	`|blobs/sha256/[0-9a-f]{64}|paks/[A-Za-z0-9][A-Za-z0-9._+-]*)$`)

// unpackArchive unpacks the bundle archive file into dir, refusing any
// member that is not part of a bundle layout and any duplicate. A
// truncated archive is refused naming the member it ended in.
func unpackArchive(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("%w", display.WithoutPath(err))
	}
	defer f.Close()
	tr := tar.NewReader(f)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return refused("archive", "cannot read the next member: %v: truncated or not a tar file", err)
		}
		member := strings.TrimPrefix(path.Clean(hdr.Name), "./")
		switch {
		case hdr.Typeflag == tar.TypeDir && (member == "blobs" || member == "blobs/sha256" || member == "paks"):
			continue
		case hdr.Typeflag != tar.TypeReg || !layoutMember.MatchString(member) || member != strings.TrimPrefix(hdr.Name, "./"):
			return refused(hdr.Name, "not a member of a bundle (want oci-layout, index.json, %s, blobs/sha256/HEX, paks/NAME, as regular files)", BundleManifestFile)
		case seen[member]:
			return refused(member, "twice in the archive")
		}
		seen[member] = true
		dst := filepath.Join(dir, filepath.FromSlash(member))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return refused(member, "cannot be read whole: %v: truncated", err)
		}
	}
}

// writeArchive tars the members of the bundle layout in dir into file
// (through a temporary file renamed over it), in that order.
func writeArchive(dir, file string, members []string) error {
	tmp := file + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(out)
	for _, m := range members {
		if err := addMember(tw, dir, m); err != nil {
			out.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		out.Close()
		return err
	}
	// On disk before it is named: the file is what crosses the gap.
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// addMember adds the file dir/member to tw as a plain regular file.
func addMember(tw *tar.Writer, dir, member string) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(member)))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: member, Size: st.Size(), Mode: 0o644}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
