// Command mkpak writes a sample management pack that names one container
// image, for scripts/demo.sh. It lays the pack out with internal/pak/paktest,
// the same builder the tests use.
//
// Usage:
//
//	go run ./scripts/mkpak -o sample.pak -registry 127.0.0.1:5000 -repository /demo/adapter -digest sha256:…
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"

	"github.com/prepull/prepull/internal/pak/paktest"
)

func main() {
	out := flag.String("o", "", "write the pak to this `file` (required)")
	p := paktest.Pak{}
	flag.StringVar(&p.Kind, "kind", paktest.Kind, "adapter `kind`")
	flag.StringVar(&p.Version, "version", paktest.Version, "pack `version`")
	flag.StringVar(&p.Registry, "registry", "", "REGISTRY of the .conf; empty leaves the line out")
	flag.StringVar(&p.Repository, "repository", "", "REPOSITORY of the .conf, e.g. /demo/adapter")
	flag.StringVar(&p.Digest, "digest", "", "DIGEST of the .conf, sha256:<64 hex> (required)")
	flag.StringVar(&p.From, "from", "", "the registry string given to mp-build (e.g. user/repo); REGISTRY and REPOSITORY are what -release makes of it")
	release := flag.String("release", string(paktest.Release131), "the Integration SDK `release` whose layout to imitate: alpha, 0.4.0, 0.5.1, 1.0.1, 1.1.0, 1.2.0 or 1.3.1")
	flag.Parse()
	p.Release = paktest.Release(*release)
	if *out == "" || p.Digest == "" || flag.NArg() > 0 || !slices.Contains(paktest.Releases, p.Release) {
		flag.Usage()
		os.Exit(2)
	}
	if err := p.Save(*out); err != nil {
		fmt.Fprintf(os.Stderr, "mkpak: %v\n", err)
		os.Exit(1)
	}
}
