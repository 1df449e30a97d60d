package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
)

// Counter counts what one leg of the air gap moved, against the totals
// known before it started. It is safe for concurrent use; a progress line
// reads it while blobs move.
type Counter struct {
	Blobs, TotalBlobs atomic.Int64
	Bytes, TotalBytes atomic.Int64
}

// ExportPak is one pak to put into a bundle.
type ExportPak struct {
	Path   string // the pak file
	Image  pak.Image
	Target pak.Target
}

// Export is a bundle to write: the paks, and each image's manifests read
// from its registry. Plan makes one; Write writes it.
type Export struct {
	paks  []ExportPak
	roots []v1.Descriptor        // each pak's top manifest, as served
	trees map[v1.Hash]*imageTree // by top manifest digest
	repos map[v1.Hash]name.Repository
}

// PlanExport reads every pak's image manifests (the index, every child
// manifest, attestations included) from their registries, byte for byte
// and checked by digest. An error names the pak.
func (c *Copier) PlanExport(ctx context.Context, paks []ExportPak) (*Export, error) {
	e := &Export{paks: paks, trees: map[v1.Hash]*imageTree{}, repos: map[v1.Hash]name.Repository{}}
	seenFile := map[string]string{}
	for _, p := range paks {
		base := filepath.Base(p.Path)
		if other, dup := seenFile[base]; dup {
			return nil, fmt.Errorf("%s and %s have the same file name: a bundle holds each pak under its name", display.Text(other), display.Text(p.Path))
		}
		seenFile[base] = p.Path
		if !pakMember.MatchString(bundlePaksDir + "/" + base) {
			return nil, fmt.Errorf("%s: a bundle holds paks named with letters, digits and . _ + - only: rename it", display.Text(p.Path))
		}
		ref, err := name.NewDigest(p.Target.Reference, name.StrictValidation)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Target.Reference, err)
		}
		host := ref.Context().RegistryStr()
		opts, err := c.options(ctx, host)
		if err != nil {
			return nil, err
		}
		desc, err := remote.Get(ref, opts...)
		if err != nil {
			return nil, c.classify(ctx, err, host, p.Target.Reference)
		}
		root := v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest}
		if root.Digest.String() != p.Target.Digest {
			return nil, fmt.Errorf("%s: the registry served digest %s", p.Target.Reference, root.Digest)
		}
		if err := c.checkPlatform(ctx, desc, host, p.Target.Reference); err != nil {
			return nil, err
		}
		e.roots = append(e.roots, root)
		if e.trees[root.Digest] != nil {
			continue
		}
		served := map[v1.Hash][]byte{root.Digest: desc.Manifest}
		tree, err := walkImage(root, func(d v1.Descriptor) ([]byte, error) {
			if raw, ok := served[d.Digest]; ok {
				return raw, nil
			}
			child, err := remote.Get(ref.Context().Digest(d.Digest.String()), opts...)
			if err != nil {
				return nil, c.classify(ctx, err, host, p.Target.Reference)
			}
			return child.Manifest, nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Target.Reference, err)
		}
		e.trees[root.Digest], e.repos[root.Digest] = tree, ref.Context()
	}
	return e, nil
}

// Summary is what a leg will move, said before it starts.
type Summary struct {
	Paks, Images, Manifests, Blobs int
	Bytes                          int64 // manifests, blobs and paks
}

// Summary says what Write will write at most (blobs already in the folder
// are kept).
func (e *Export) Summary() Summary {
	s := summarize(len(e.paks), e.trees)
	for _, p := range e.paks {
		if st, err := os.Stat(p.Path); err == nil {
			s.Bytes += st.Size()
		}
	}
	return s
}

// summarize counts the images of trees, each blob once.
func summarize(paks int, trees map[v1.Hash]*imageTree) Summary {
	s := Summary{Paks: paks, Images: len(trees)}
	seen := map[v1.Hash]bool{}
	for _, t := range trees {
		s.Manifests += len(t.manifests)
		for _, m := range t.manifests {
			s.Bytes += m.desc.Size
		}
		for _, b := range t.blobs {
			if !seen[b.Digest] {
				seen[b.Digest] = true
				s.Blobs++
				s.Bytes += b.Size
			}
		}
	}
	return s
}

// members lists the bundle's files, in the order an archive holds them:
// the bundle manifest and the layout's files first, then the paks, then
// every manifest and blob the images name, sorted. Nothing else in the
// folder goes into an archive.
func (e *Export) members() []string {
	m := []string{"oci-layout", "index.json", BundleManifestFile}
	for _, p := range e.paks {
		m = append(m, bundlePaksDir+"/"+filepath.Base(p.Path))
	}
	var blobs []string
	for _, t := range e.trees {
		for _, d := range t.manifests {
			blobs = append(blobs, blobMember(d.desc.Digest))
		}
		for _, d := range t.blobs {
			blobs = append(blobs, blobMember(d.Digest))
		}
	}
	slices.Sort(blobs)
	return append(m, slices.Compact(blobs)...)
}

// Write writes the bundle: into the folder for oci:DIR (blobs already
// there and whole are kept, so an interrupted export runs again where it
// stopped), or into FILE.partial, then tarred into FILE, for
// oci-archive:FILE. It returns the bundle manifest's SHA-256.
func (c *Copier) Write(ctx context.Context, e *Export, b BundleRef, cnt *Counter) (string, error) {
	dir := b.Path
	if b.Kind == KindArchive {
		dir = b.Path + ".partial"
	}
	if err := e.prepareLayout(dir); err != nil {
		return "", err
	}
	s := e.Summary()
	cnt.TotalBlobs.Store(int64(s.Blobs))
	cnt.TotalBytes.Store(s.Bytes)
	m, err := c.writeLayout(ctx, e, dir, cnt)
	if err != nil {
		return "", err
	}
	if b.Kind == KindArchive {
		if err := writeArchive(dir, b.Path, e.members()); err != nil {
			return "", err
		}
		if err := os.RemoveAll(dir); err != nil {
			return "", err
		}
		sum := sha256.Sum256(m)
		return hex.EncodeToString(sum[:]), nil
	}
	return manifestSHA256(dir)
}

// prepareLayout makes dir an OCI image layout, or checks that it is an
// earlier, unfinished or finished, export of the same paks: one that holds
// other content (another bundle, another tool's images) is refused, so that
// a bundle never carries what its manifest does not list.
func (e *Export) prepareLayout(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			return fmt.Errorf("%s: not empty and not an OCI image layout: name a new folder", display.Text(dir))
		}
		return e.checkSameExport(dir)
	}
	_, err = layout.Write(dir, empty.Index)
	return err
}

// checkSameExport checks that the layout in dir lists no image and no pak
// but this export's.
func (e *Export) checkSameExport(dir string) error {
	other := func(what string) error {
		return fmt.Errorf("%s holds %s that this export does not: name a new folder", display.Text(dir), what)
	}
	idx, err := layout.Path(dir).ImageIndex()
	if err != nil {
		return fmt.Errorf("%s: %w", display.Text(dir), err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("%s: %w", display.Text(dir), err)
	}
	for _, d := range im.Manifests {
		if !slices.ContainsFunc(e.roots, func(r v1.Descriptor) bool { return r.Digest == d.Digest }) {
			return other("image " + d.Digest.String())
		}
	}
	paks, err := os.ReadDir(filepath.Join(dir, bundlePaksDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, p := range paks {
		if !slices.ContainsFunc(e.paks, func(x ExportPak) bool { return filepath.Base(x.Path) == p.Name() }) {
			return other("pak " + display.Text(p.Name()))
		}
	}
	return nil
}

// writeLayout writes manifests, blobs, paks, index.json entries and the
// bundle manifest into dir, and returns the bundle manifest's bytes. Each
// manifest is written as the registry served it (the bytes its digest was
// checked against), never through a v1.Image or v1.ImageIndex.
func (c *Copier) writeLayout(ctx context.Context, e *Export, dir string, cnt *Counter) ([]byte, error) {
	lp := layout.Path(dir)
	done := map[v1.Hash]bool{}
	for _, root := range e.roots {
		t, repo := e.trees[root.Digest], e.repos[root.Digest]
		opts, err := c.options(ctx, repo.RegistryStr())
		if err != nil {
			return nil, err
		}
		for _, b := range t.blobs {
			if done[b.Digest] {
				continue
			}
			done[b.Digest] = true
			if err := c.fetchBlob(ctx, repo, b, dir, opts, cnt); err != nil {
				return nil, err
			}
			cnt.Blobs.Add(1)
		}
		for _, m := range t.manifests {
			if err := writeFileAtomic(blobPath(dir, m.desc.Digest), m.raw); err != nil {
				return nil, err
			}
			cnt.Bytes.Add(m.desc.Size)
		}
	}
	manifest := BundleManifest{Version: bundleVersion}
	for i, p := range e.paks {
		root := e.roots[i]
		member := bundlePaksDir + "/" + filepath.Base(p.Path)
		sum, size, err := copyFile(p.Path, filepath.Join(dir, member))
		if err != nil {
			return nil, err
		}
		cnt.Bytes.Add(size)
		manifest.Paks = append(manifest.Paks, BundlePak{File: member, SHA256: sum, Size: size, AdapterKind: p.Image.AdapterKind,
			Reference: p.Target.Reference, Digest: root.Digest.String(), MediaType: string(root.MediaType), ManifestSize: root.Size})
		// docker load on the containerd store names the image by this
		// annotation; other tools read the layout's index.json too.
		desc := root
		desc.Annotations = map[string]string{"io.containerd.image.name": p.Target.Reference}
		if err := lp.RemoveDescriptors(match.Digests(root.Digest)); err != nil {
			return nil, err
		}
		if err := lp.AppendDescriptor(desc); err != nil {
			return nil, err
		}
	}
	data, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	return data, writeFileAtomic(filepath.Join(dir, BundleManifestFile), data)
}

// fetchBlob downloads blob b of repo into dir, checked against its digest,
// unless dir has it whole already. It does not use layout.Path.WriteBlob,
// which writes in place and keeps a file of any size already there: a blob
// cut short by an interrupted export would stay cut short. A refusal names
// the user and where the login came from, as every other request's does.
func (c *Copier) fetchBlob(ctx context.Context, repo name.Repository, b v1.Descriptor, dir string, opts []remote.Option, cnt *Counter) error {
	path := blobPath(dir, b.Digest)
	if sum, n, err := hashFile(path); err == nil && sum == b.Digest.Hex && n == b.Size {
		cnt.Bytes.Add(n)
		return nil
	}
	l, err := remote.Layer(repo.Digest(b.Digest.String()), opts...)
	if err != nil {
		return c.classify(ctx, err, repo.RegistryStr(), repo.String()+"@"+b.Digest.String())
	}
	rc, err := l.Compressed()
	if err != nil {
		return c.classify(ctx, err, repo.RegistryStr(), repo.String()+"@"+b.Digest.String())
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h, counting{cnt}), rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s@%s: %w", repo, b.Digest, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != b.Digest.Hex || n != b.Size {
		return fmt.Errorf("%s@%s: the registry served %d bytes that do not match the digest", repo, b.Digest, n)
	}
	return os.Rename(tmp, path)
}

// counting adds what is written through it to a Counter's bytes.
type counting struct{ c *Counter }

func (w counting) Write(p []byte) (int, error) {
	w.c.Bytes.Add(int64(len(p)))
	return len(p), nil
}

// copyFile copies src to dst (atomically) and returns its SHA-256 and size.
func copyFile(src, dst string) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, err
	}
	tmp := dst + ".partial"
	out, err := os.Create(tmp)
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, os.Rename(tmp, dst)
}

// writeFileAtomic writes data to path through a temporary file renamed
// over it.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".partial"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
