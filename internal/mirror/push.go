package mirror

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/prepull/prepull/internal/pak"
)

// Target is the pak's image as the bundle manifest lists it, for
// Destination.
func (p BundlePak) Target() pak.Target {
	return pak.Target{Image: pak.Image{Digest: p.Digest}, Reference: p.Reference}
}

// Push copies the image of bundle pak p from the checked bundle b to dst
// (from Destination): every blob the registry lacks, then every manifest
// as stored, children first, so that an interrupted push can be run again
// and completes. A copy already there is not sent again. It checks that dst
// then serves the pak's digest.
func (c *Copier) Push(ctx context.Context, b *Bundle, p BundlePak, dst Result, cnt *Counter) (Result, error) {
	h, err := v1.NewHash(p.Digest)
	if err != nil {
		return dst, err
	}
	t := b.trees[h]
	if t == nil {
		return dst, fmt.Errorf("%s: not checked in the bundle", p.Digest)
	}
	dstRef, err := name.NewDigest(dst.Reference, name.StrictValidation)
	if err != nil {
		return dst, fmt.Errorf("%s: %w", dst.Reference, err)
	}
	host := dstRef.Context().RegistryStr()
	opts, err := c.options(ctx, host)
	if err != nil {
		return dst, err
	}
	if d, err := remote.Head(dstRef, opts...); err == nil && d.Digest.String() == p.Digest {
		dst.Status, dst.Manifests = Present, 0
		cnt.Blobs.Add(int64(len(t.blobs)))
		cnt.Bytes.Add(t.size())
		return dst, nil
	} else if err != nil && !isNotFound(err) {
		return dst, c.classify(ctx, err, host, dst.Reference)
	}

	repo := dstRef.Context()
	for _, bl := range t.blobs {
		l := &fileLayer{path: blobPath(b.Dir, bl.Digest), desc: bl, cnt: cnt}
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return dst, c.classify(ctx, err, host, dst.Reference)
		}
		cnt.Bytes.Add(max(bl.Size-l.read, 0)) // what the registry had already
		cnt.Blobs.Add(1)
	}
	for _, m := range t.manifests {
		if err := remote.Put(repo.Digest(m.desc.Digest.String()), rawManifest{m}, opts...); err != nil {
			return dst, c.classify(ctx, err, host, dst.Reference)
		}
		cnt.Bytes.Add(m.desc.Size)
	}
	dst.Manifests = len(t.manifests)

	d, err := remote.Head(dstRef, opts...)
	if err != nil {
		return dst, fmt.Errorf("verify the copy: %w", c.classify(ctx, err, host, dst.Reference))
	}
	if d.Digest.String() != p.Digest {
		return dst, fmt.Errorf("verify the copy: %s serves digest %s, not %s", dst.Reference, d.Digest, p.Digest)
	}
	dst.Status = Copied
	return dst, nil
}

// rawManifest is a manifest pushed as the bytes stored, with the media
// type its parent or the source registry gave it.
type rawManifest struct{ m manifestNode }

func (r rawManifest) RawManifest() ([]byte, error)        { return r.m.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.m.desc.MediaType, nil }
func (r rawManifest) Digest() (v1.Hash, error)            { return r.m.desc.Digest, nil }
func (r rawManifest) Size() (int64, error)                { return int64(len(r.m.raw)), nil }
func (r rawManifest) Descriptor() (*v1.Descriptor, error) { d := r.m.desc; return &d, nil }

// fileLayer is a blob of a bundle, for remote.WriteLayer: it is read only
// when the registry lacks it.
type fileLayer struct {
	path string
	desc v1.Descriptor
	cnt  *Counter
	read int64
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *fileLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, fmt.Errorf("%s: a bundle blob is pushed as stored", l.desc.Digest)
}

func (l *fileLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, l: l}, nil
}

// countingFile counts what is read of a blob into its layer and Counter.
type countingFile struct {
	*os.File
	l *fileLayer
}

func (f *countingFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.l.read += int64(n)
	f.l.cnt.Bytes.Add(int64(n))
	return n, err
}
