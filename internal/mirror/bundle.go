package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/prepull/prepull/internal/display"
)

// A bundle is the air gap as a file: an OCI image layout (oci-layout,
// index.json, blobs/sha256/...) holding each pak's image byte for byte,
// the paks themselves under paks/, and prepull-bundle.json, the bundle
// manifest listing each pak's SHA-256 and image digest. Everything in it is
// checked against a digest the bundle manifest leads to; the bundle
// manifest itself is checked out of band, by the SHA-256 that the export
// prints.
const (
	BundleManifestFile = "prepull-bundle.json"
	bundlePaksDir      = "paks"
	bundleVersion      = 1
)

// The two forms of a bundle, as named on the command line.
const (
	KindDir     = "oci"         // oci:DIR, a folder
	KindArchive = "oci-archive" // oci-archive:FILE, a tar of that folder
)

// ErrBundle marks a bundle that is not what its manifest says: a member
// missing, truncated or altered. Nothing is pushed from such a bundle.
var ErrBundle = errors.New("bundle refused")

// BundleRef is a bundle as named on the command line.
type BundleRef struct {
	Kind, Path string
}

func (b BundleRef) String() string { return b.Kind + ":" + b.Path }

// ParseBundle reports whether s names a bundle (oci:DIR or
// oci-archive:FILE) and which. A pak file whose name starts so is named
// ./oci:NAME.
func ParseBundle(s string) (BundleRef, bool) {
	for _, k := range []string{KindArchive, KindDir} {
		if p, ok := strings.CutPrefix(s, k+":"); ok && p != "" {
			return BundleRef{Kind: k, Path: p}, true
		}
	}
	return BundleRef{}, false
}

// BundleManifest is prepull-bundle.json.
type BundleManifest struct {
	Version int         `json:"version"`
	Paks    []BundlePak `json:"paks"`
}

// BundlePak is one pak of a bundle and the image it names.
type BundlePak struct {
	// File is the pak's path inside the bundle: paks/NAME.
	File   string `json:"file"`
	SHA256 string `json:"sha256"` // of the pak file, hex
	Size   int64  `json:"size"`
	// AdapterKind is the pak's, for the reader.
	AdapterKind string `json:"adapter_kind,omitempty"`
	// Reference is the image the pak names, REGISTRY/REPOSITORY@DIGEST.
	Reference string `json:"reference"`
	// Digest, MediaType and ManifestSize describe the image's top manifest
	// as the source registry served it.
	Digest       string `json:"digest"`
	MediaType    string `json:"media_type"`
	ManifestSize int64  `json:"manifest_size"`
}

// manifestNode is one manifest of an image's tree: its bytes as served and
// what it names.
type manifestNode struct {
	desc v1.Descriptor
	raw  []byte
}

// imageTree is an image's manifests, children before parents (the order
// a registry accepts them in), and the blobs they name.
type imageTree struct {
	manifests []manifestNode
	blobs     []v1.Descriptor
}

// bytes is the tree's size: manifests and blobs.
func (t *imageTree) size() (n int64) {
	for _, m := range t.manifests {
		n += m.desc.Size
	}
	for _, b := range t.blobs {
		n += b.Size
	}
	return n
}

// parsedManifest is the part of any manifest or index that names content.
type parsedManifest struct {
	MediaType string          `json:"mediaType"`
	Manifests []v1.Descriptor `json:"manifests"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Blobs     []v1.Descriptor `json:"blobs"`
}

// maxManifestSize is the largest manifest read: what registries accept
// (distribution's limit is 4 MiB). A bigger one is refused before it is
// read whole.
const maxManifestSize = 4 << 20

// fetchManifest returns the bytes of the manifest with digest d.
type fetchManifest func(d v1.Descriptor) ([]byte, error)

// walkImage reads the tree of manifests under root with get, checking each
// against its digest and size, and returns it with the blobs it names
// (each once; non-distributable layers, which registries do not serve, are
// left out).
func walkImage(root v1.Descriptor, get fetchManifest) (*imageTree, error) {
	t := &imageTree{}
	seenBlob := map[v1.Hash]bool{}
	seenManifest := map[v1.Hash]bool{}
	var walk func(d v1.Descriptor, depth int) error
	walk = func(d v1.Descriptor, depth int) error {
		if seenManifest[d.Digest] {
			return nil
		}
		if depth > 4 {
			return fmt.Errorf("manifest %s: indexes nested too deep", d.Digest)
		}
		seenManifest[d.Digest] = true
		if d.Size > maxManifestSize {
			return fmt.Errorf("manifest %s: %d bytes, more than a registry accepts", d.Digest, d.Size)
		}
		raw, err := get(d)
		if err != nil {
			return err
		}
		if err := checkDigest(d, raw); err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		var m parsedManifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("manifest %s: not JSON: %w", d.Digest, err)
		}
		if d.MediaType == "" {
			d.MediaType = types.MediaType(m.MediaType)
		}
		for _, c := range m.Manifests {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		blobs := m.Layers
		blobs = append(blobs, m.Blobs...)
		if m.Config != nil {
			blobs = append([]v1.Descriptor{*m.Config}, blobs...)
		}
		for _, b := range blobs {
			if !b.MediaType.IsDistributable() || seenBlob[b.Digest] {
				continue
			}
			if b.Digest.Algorithm != "sha256" || len(b.Digest.Hex) != 64 {
				return fmt.Errorf("manifest %s names blob %s: only sha256 digests are supported", d.Digest, display.Text(b.Digest.String()))
			}
			seenBlob[b.Digest] = true
			t.blobs = append(t.blobs, v1.Descriptor{MediaType: b.MediaType, Size: b.Size, Digest: b.Digest})
		}
		t.manifests = append(t.manifests, manifestNode{desc: v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}, raw: raw})
		return nil
	}
	if err := walk(root, 0); err != nil {
		return nil, err
	}
	return t, nil
}

// checkDigest checks data against d's digest and size.
func checkDigest(d v1.Descriptor, data []byte) error {
	if d.Digest.Algorithm != "sha256" || len(d.Digest.Hex) != 64 {
		return fmt.Errorf("only sha256 digests are supported, not %s", display.Text(d.Digest.String()))
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != d.Digest.Hex {
		return fmt.Errorf("content does not match its digest")
	}
	if d.Size > 0 && int64(len(data)) != d.Size {
		return fmt.Errorf("%d bytes, but %d expected", len(data), d.Size)
	}
	return nil
}

// blobPath is where a layout keeps the blob with digest h.
func blobPath(dir string, h v1.Hash) string {
	return filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
}

// blobMember names a blob as a member of the bundle, for messages.
func blobMember(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// hashFile returns the hex SHA-256 and size of the file at path.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// manifestSHA256 is the SHA-256 of the bundle manifest file, which the
// export prints and verify and import print again, for comparing out of
// band.
func manifestSHA256(dir string) (string, error) {
	sum, _, err := hashFile(filepath.Join(dir, BundleManifestFile))
	return sum, err
}
