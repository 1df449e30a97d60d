package pak_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/distribution/reference"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

func TestResolve(t *testing.T) {
	img := func(registry, repository string) pak.Image {
		return pak.Image{
			File: "MyAdapter_1.0.0.pak", Format: pak.FormatPak, AdapterKind: "MyAdapter",
			ConfPath: "adapter.zip/MyAdapter.conf", Registry: registry, Repository: repository, Digest: digest,
		}
	}
	tests := []struct {
		name       string
		img        pak.Image
		defaultReg string
		wantRef    string
		wantSource string
	}{
		{"pak registry", img("harbor.example.com", "my-project/myadapter"), "", "harbor.example.com/my-project/myadapter@" + digest, "pak"},
		{"pak registry wins over default", img("harbor.example.com", "my-project/myadapter"), "other.example.com", "harbor.example.com/my-project/myadapter@" + digest, "pak"},
		{"default registry", img("", "my-project/myadapter"), "registry.example.com:5000", "registry.example.com:5000/my-project/myadapter@" + digest, "default"},
		{"port", img("harbor.example.com:8443", "proj/sub/myadapter"), "", "harbor.example.com:8443/proj/sub/myadapter@" + digest, "pak"},
		{"docker.io with namespace", img("docker.io", "myorg/myadapter"), "", "docker.io/myorg/myadapter@" + digest, "pak"},
		{"docker.io official", img("docker.io", "myadapter"), "", "docker.io/myadapter@" + digest, "pak"},
		{"index.docker.io", img("index.docker.io", "myorg/myadapter"), "", "index.docker.io/myorg/myadapter@" + digest, "pak"},
		{"localhost", img("localhost:5000", "a"), "", "localhost:5000/a@" + digest, "pak"},
		{"ipv6", img("[::1]:5000", "a/b"), "", "[::1]:5000/a/b@" + digest, "pak"},
		{"separators", img("harbor.example.com", "a.b/c_d/e__f/g-h/i---j"), "", "harbor.example.com/a.b/c_d/e__f/g-h/i---j@" + digest, "pak"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.img.Resolve(tt.defaultReg)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got.Reference != tt.wantRef || got.RegistrySource != tt.wantSource {
				t.Errorf("Resolve = %q from %q, want %q from %q", got.Reference, got.RegistrySource, tt.wantRef, tt.wantSource)
			}
			if got.Image != tt.img {
				t.Errorf("Resolve changed the image: %+v", got.Image)
			}
			named, err := reference.ParseNormalizedNamed(got.Reference)
			if err != nil {
				t.Fatalf("reference %q does not parse: %v", got.Reference, err)
			}
			if c, ok := named.(reference.Canonical); !ok || c.Digest().String() != digest {
				t.Errorf("reference %q does not carry the digest", got.Reference)
			}
			if !strings.HasPrefix(got.Reference, got.Registry+"/") {
				t.Errorf("reference %q does not start with registry %q", got.Reference, got.Registry)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	base := pak.Image{
		File: "MyAdapter_1.0.0.pak", Format: pak.FormatPak, AdapterKind: "MyAdapter",
		ConfPath: "adapter.zip/MyAdapter.conf", Repository: "my-project/myadapter", Digest: digest,
	}
	with := func(f func(*pak.Image)) pak.Image {
		img := base
		f(&img)
		return img
	}
	tests := []struct {
		name        string
		img         pak.Image
		defaultReg  string
		want        string
		wantInvalid bool
		wantNoReg   bool
	}{
		{"no registry anywhere", base, "",
			"MyAdapter_1.0.0.pak: adapter.zip: MyAdapter.conf: no REGISTRY in the pack and no default_registry configured", true, true},
		{"no registry, adapter.zip", with(func(i *pak.Image) { i.Format, i.ConfPath = pak.FormatAdapterZip, "MyAdapter.conf" }), "",
			"MyAdapter_1.0.0.pak: MyAdapter.conf: no REGISTRY", true, true},
		{"no registry, conf", with(func(i *pak.Image) { i.File, i.Format, i.ConfPath = "MyAdapter.conf", pak.FormatConf, "MyAdapter.conf" }), "",
			"MyAdapter.conf: no REGISTRY", true, true},
		{"bad default registry", base, "https://registry.example.com", `default_registry "https://registry.example.com" must be a host with an optional port, not a URL`, false, false},
		{"bad pak registry", with(func(i *pak.Image) { i.Registry = "a b" }), "", `adapter.zip: MyAdapter.conf: REGISTRY "a b" contains a space`, true, false},
		{"bad repository", with(func(i *pak.Image) { i.Registry = "r.example.com"; i.Repository = "a;b" }), "", `REPOSITORY "a;b" has ";"`, true, false},
		{"bad digest", with(func(i *pak.Image) { i.Registry = "r.example.com"; i.Digest = "sha256:abc" }), "", "DIGEST", true, false},
		{"repository too long", with(func(i *pak.Image) { i.Registry = "r.example.com"; i.Repository = strings.Repeat("a/", 150) + "b" }), "",
			"is longer than 255 bytes", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.img.Resolve(tt.defaultReg)
			if err == nil {
				t.Fatal("Resolve succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if errors.Is(err, pak.ErrInvalid) != tt.wantInvalid {
				t.Errorf("errors.Is(%q, ErrInvalid) = %v", err, !tt.wantInvalid)
			}
			if errors.Is(err, pak.ErrNoRegistry) != tt.wantNoReg {
				t.Errorf("errors.Is(%q, ErrNoRegistry) = %v", err, !tt.wantNoReg)
			}
		})
	}
}

// TestResolveFixtures resolves the paks paktest builds, end to end.
func TestResolveFixtures(t *testing.T) {
	tests := []struct {
		name       string
		p          paktest.Pak
		defaultReg string
	}{
		{"current", paktest.Pak{Registry: paktest.Registry}, ""},
		{"default registry", paktest.Pak{}, "registry.example.com"},
		{"port", paktest.Pak{Registry: "harbor.example.com:8443", Repository: "/proj/sub/myadapter"}, ""},
		{"docker.io", paktest.Pak{Registry: "docker.io", Repository: "/myorg/myadapter"}, ""},
		{"adapter3", paktest.Pak{Registry: paktest.Registry, Adapter3: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := readBytes("x.pak", tt.p.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			target, err := img.Resolve(tt.defaultReg)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.p.Reference(tt.defaultReg); target.Reference != want {
				t.Errorf("Reference = %q, want %q", target.Reference, want)
			}
		})
	}
}

// TestResolveDockerHub covers how each SDK release writes a Docker Hub
// repository, and the SDK 1.x localhost mangling: the reference is always
// REGISTRY + REPOSITORY as the proxy concatenates them, Registry the host
// whose login applies.
func TestResolveDockerHub(t *testing.T) {
	img := func(registry, repository string) pak.Image {
		return pak.Image{File: "x.pak", Format: pak.FormatPak, AdapterKind: "MyAdapter",
			ConfPath: "adapter.zip/MyAdapter.conf", Registry: registry, Repository: repository, Digest: digest}
	}
	tests := []struct {
		name               string
		img                pak.Image
		ref, registry, rep string
		warn               string
	}{
		{"0.x namespace", img("user", "repo"), "user/repo@" + digest, "docker.io", "user/repo", ""},
		{"0.x namespace with separators", img("my-team.x", "repo"), "my-team.x/repo@" + digest, "my-team.x", "repo", ""}, // a dot: a host
		{"0.x namespace, deeper", img("team2", "a/b"), "team2/a/b@" + digest, "docker.io", "team2/a/b", ""},
		{"0.x library", img("library", "alpine"), "library/alpine@" + digest, "docker.io", "library/alpine", ""},
		{"1.x Docker Hub", img("registry.hub.docker.com", "user/repo"), "registry.hub.docker.com/user/repo@" + digest, "registry.hub.docker.com", "user/repo", ""},
		{"1.x localhost mangling", img("registry.hub.docker.com", "localhost"), "registry.hub.docker.com/localhost@" + digest, "registry.hub.docker.com", "localhost",
			"written as localhost:PORT/..."},
		{"1.x mangling of a dotless host", img("registry.hub.docker.com", "buildhost"), "registry.hub.docker.com/buildhost@" + digest, "registry.hub.docker.com", "buildhost",
			"127.0.0.1:PORT/..."},
		{"docker.io one component: no warning", img("docker.io", "alpine"), "docker.io/alpine@" + digest, "docker.io", "alpine", ""},
		{"localhost is a host", img("localhost", "repo"), "localhost/repo@" + digest, "localhost", "repo", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.img.Resolve("")
			if err != nil {
				t.Fatal(err)
			}
			if got.Reference != tt.ref || got.Registry != tt.registry || got.Repository != tt.rep || got.RegistrySource != "pak" {
				t.Errorf("Resolve = %q, registry %q, repository %q, want %q, %q, %q", got.Reference, got.Registry, got.Repository, tt.ref, tt.registry, tt.rep)
			}
			if got.Image != tt.img {
				t.Errorf("Resolve changed the image as written: %+v", got.Image)
			}
			switch {
			case tt.warn == "" && len(got.Warnings) > 0:
				t.Errorf("unexpected warnings %q", got.Warnings)
			case tt.warn != "" && (len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], tt.warn) || !strings.Contains(got.Warnings[0], "Rebuild")):
				t.Errorf("warnings %q, want one saying %q and what to rebuild", got.Warnings, tt.warn)
			}
			// The engine lists the pulled image under the same name.
			named, err := reference.ParseNormalizedNamed(got.Reference)
			if err != nil {
				t.Fatal(err)
			}
			if !pak.SameRegistry(reference.Domain(named), got.Registry) || reference.Path(named) != got.Repository && reference.Path(named) != "library/"+got.Repository {
				t.Errorf("reference %q parses as %s/%s, not registry %q repository %q", got.Reference, reference.Domain(named), reference.Path(named), got.Registry, got.Repository)
			}
		})
	}
}
