package pull

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
)

// LocalDomain is the registry part of the local names prepull gives the
// images it pulls or keeps. It is under .invalid (RFC 2606), so that no
// engine ever pulls from or pushes to it, and no vendor's repository is
// touched.
const LocalDomain = "prepull.invalid"

// An image pulled by digest has no tag, and the classic image store counts
// it as dangling: a plain `docker image prune` removes it. A local name,
// prepull.invalid/<repository>:<kind>-<12 hex of the digest>, makes it a
// tagged image, which only `docker image prune -a` removes. The digest in
// the tag keeps the name from ever moving to another image; the adapter
// kind shows in `docker images` which pak it is for.

// shortHex is how many hex digits of the digest a local name's tag holds.
const shortHex = 12

// maxKind bounds the adapter kind in a tag (128 characters at most) beside
// "-" and the short digest.
const maxKind = 128 - 1 - shortHex

// LocalName returns the local name of the image t names:
// prepull.invalid/<repository>:<kind>-<12 hex of the digest>, where
// repository is the reference's path on its registry and kind the adapter
// kind, cleaned to the characters a tag may hold.
func LocalName(t pak.Target) (string, error) {
	path, hex, err := nameParts(t.Reference)
	if err != nil {
		return "", err
	}
	name := LocalDomain + "/" + path + ":" + tagKind(t.AdapterKind) + "-" + hex
	if _, err := reference.ParseNamed(name); err != nil {
		return "", fmt.Errorf("local name for %s: %w", t.Reference, err)
	}
	return name, nil
}

// IsLocalName reports whether name is a local name prepull gives the image
// ref names, whatever adapter kind it was given for.
func IsLocalName(name, ref string) bool {
	path, hex, err := nameParts(ref)
	if err != nil {
		return false
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return false
	}
	tagged, ok := named.(reference.Tagged)
	return ok && reference.Domain(named) == LocalDomain && reference.Path(named) == path &&
		strings.HasSuffix(tagged.Tag(), "-"+hex)
}

// nameParts returns the repository path of ref and the first hex digits of
// its digest.
func nameParts(ref string) (path, hex string, err error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", "", fmt.Errorf("local name for %s: %w", ref, err)
	}
	canonical, ok := named.(reference.Canonical)
	if !ok || len(canonical.Digest().Encoded()) < shortHex {
		return "", "", fmt.Errorf("local name for %s: not a digest reference", ref)
	}
	return reference.Path(named), canonical.Digest().Encoded()[:shortHex], nil
}

// tagKind cleans an adapter kind to what a tag may hold: letters, digits,
// "_", "." and "-", not starting with "." or "-". Anything else becomes "-";
// an empty kind is "image".
func tagKind(kind string) string {
	var b strings.Builder
	for _, r := range kind {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.TrimLeft(b.String(), ".-")
	if len(s) > maxKind {
		s = s[:maxKind]
	}
	if s == "" {
		return "image"
	}
	return s
}

// Namer is what giving an image its local name asks of the engine.
type Namer interface {
	// Name gives the local image that ref names the tag name, unless name
	// names an image already: the same one (added is false) or another
	// one (engine.ErrNameTaken). A name never moves.
	Name(ctx context.Context, ref, name string) (added bool, err error)
}

// name gives the image t names, present in the engine, its local name. A
// failure is logged, never returned: the image is there, and what fails
// is only its protection from a prune.
func (p *Puller) name(ctx context.Context, log *zap.Logger, t pak.Target) {
	name, err := LocalName(t)
	if err != nil {
		log.Warn("cannot give the image prepull's local name; an image prune may remove it", zap.Error(err))
		return
	}
	added, err := p.Namer.Name(ctx, t.Reference, name)
	switch {
	case errors.Is(err, engine.ErrNameTaken):
		log.Warn("the local name prepull gives the image names another image, leaving it alone; an image prune may remove this one",
			zap.String("name", name), zap.Error(err))
	case err != nil:
		log.Warn("cannot give the image prepull's local name; an image prune may remove it", zap.String("name", name), zap.Error(err))
	case added:
		log.Info("image named for prepull, so that an image prune keeps it", zap.String("name", name))
	}
}
