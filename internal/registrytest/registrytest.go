// Package registrytest serves go-containerregistry's in-memory registry on
// loopback and pushes random images to it, for the unit tests of the
// mirror's logic. The end-to-end tests use docker-registry (testenv).
package registrytest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// New returns a new in-memory registry that logs nothing, as a handler to
// serve or to wrap.
func New() http.Handler {
	return registry.New(registry.Logger(log.New(io.Discard, "", 0)))
}

// Start serves h (New() when nil) on loopback over HTTP until the test ends
// and returns its host:port.
func Start(t testing.TB, h http.Handler) string {
	t.Helper()
	if h == nil {
		h = New()
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Image returns a new random image of layers layers of size bytes each.
// A platform "os/arch" sets its config's OS and architecture; an empty one
// leaves random's defaults.
func Image(t testing.TB, size, layers int64, platform string) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	if platform == "" {
		return img
	}
	goos, arch, ok := strings.Cut(platform, "/")
	if !ok || goos == "" || arch == "" {
		t.Fatalf("registrytest: platform %q: want os/arch", platform)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = goos, arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// Push writes img to ref with opts and returns its digest.
func Push(t testing.TB, ref string, img v1.Image, opts ...remote.Option) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
