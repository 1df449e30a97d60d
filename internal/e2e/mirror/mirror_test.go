//go:build linux

package mirror

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/registrytest"
	"github.com/prepull/prepull/internal/testenv"
)

// pushIndex pushes to reg, as repo, an index of a linux/amd64 and a
// linux/arm64 image with an attestation manifest for each, as buildx pushes
// them, and returns the index digest and its children's digests.
func pushIndex(t *testing.T, reg *testenv.Registry, repo string) (string, []string) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	var children []string
	for _, arch := range []string{"amd64", "arm64"} {
		img := registrytest.Image(t, 512, 2, "linux/"+arch)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		att := registrytest.Image(t, 128, 1, "")
		ad, err := att.Digest()
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx,
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}},
			mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
				Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": d.String()},
			}},
		)
		children = append(children, d.String(), ad.String())
	}
	ref, err := name.ParseReference(reg.Addr + "/" + repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password})); err != nil {
		t.Fatalf("push the index: %v", err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), children
}

// uploads counts the blob and manifest writes a fault proxy saw.
func uploads(p *testenv.FaultProxy) (blobs, manifests int) {
	for _, r := range p.Requests() {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			continue
		}
		switch r.Kind {
		case testenv.KindBlob:
			blobs++
		case testenv.KindManifest:
			manifests++
		}
	}
	return blobs, manifests
}

func TestMirrorIndexBetweenTwoRegistriesThenPullFromTheMirror(t *testing.T) {
	f := e2e.NewFixture(t, "vendor/adapter")
	// The source holds a two-platform index with attestations.
	srcDigest, children := pushIndex(t, f.Reg, "vendor/adapter")
	srcPak := paktest.Pak{Kind: "Dark", Version: "2.0.0", Registry: f.Reg.Addr, Repository: "/vendor/adapter", Digest: srcDigest}.WriteFile(t, t.TempDir())

	// The mirror has a login of its own, and a proxy in front that counts writes.
	mirrorPW := "mirror-" + e2e.RandomWord(t)
	mreg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "bob", Password: mirrorPW})
	proxy := testenv.StartFaultProxy(t, mreg.Addr)
	mirrorPWFile := filepath.Join(f.Dir, "mirror.password")
	if err := os.WriteFile(mirrorPWFile, []byte(mirrorPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := f.WriteConfig(fmt.Sprintf("registries:\n  - {host: %q, username: alice, password_file: %q}\n  - {host: %q, username: bob, password_file: %q}\n",
		f.Reg.Addr, f.PasswordFile(), proxy.Addr, mirrorPWFile))
	out := t.TempDir()
	wantRef := proxy.Addr + "/dc1/vendor/adapter@" + srcDigest

	first := f.Prepull(nil, "--config", cfg, "--json", "mirror", "--to", proxy.Addr+"/dc1", "--out", out, srcPak)
	first.Want(t, 0)
	rs := first.MirrorResults(t)
	if len(rs) != 1 || rs[0].Status != "mirrored" || rs[0].Reference != wantRef || rs[0].Manifests != 5 {
		t.Fatalf("results = %+v, want one mirrored %s with 5 manifests", rs, wantRef)
	}
	if strings.Contains(first.Stdout+first.Stderr, mirrorPW) {
		t.Fatal("the mirror's password appears in the output")
	}

	// The copy is the same index, and every child is there by digest.
	auth := remote.WithAuth(&authn.Basic{Username: "bob", Password: mirrorPW})
	for _, d := range append([]string{srcDigest}, children...) {
		ref, err := name.NewDigest(mreg.Addr + "/dc1/vendor/adapter@" + d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Head(ref, auth)
		if err != nil {
			t.Fatalf("the mirror lacks %s: %v", d, err)
		}
		if got.Digest.String() != d {
			t.Fatalf("the mirror serves %s for %s", got.Digest, d)
		}
	}

	// Again: nothing is sent.
	blobsBefore, manifestsBefore := uploads(proxy)
	second := f.Prepull(nil, "--config", cfg, "--json", "mirror", "--to", proxy.Addr+"/dc1", srcPak)
	second.Want(t, 0)
	if rs := second.MirrorResults(t); len(rs) != 1 || rs[0].Status != "present" {
		t.Fatalf("second run results = %+v, want present", rs)
	}
	if b, m := uploads(proxy); b != blobsBefore || m != manifestsBefore {
		t.Fatalf("the second run wrote %d blobs and %d manifests, want none", b-blobsBefore, m-manifestsBefore)
	}

	// The rewritten pak names the mirror; everything else is byte-identical.
	rewritten := filepath.Join(out, filepath.Base(srcPak))
	checkSameMembersButConf(t, srcPak, rewritten)
	ins := f.Prepull(nil, "inspect", "--json", rewritten)
	ins.Want(t, 0)
	if !strings.Contains(ins.Stdout, `"reference": "`+wantRef+`"`) {
		t.Fatalf("inspect of the rewritten pak:\n%s", ins.Stdout)
	}

	// The proxy pulls it from the mirror, with the mirror's login only.
	pullCfg := f.WriteConfig(fmt.Sprintf("registries:\n  - {host: %q, username: bob, password_file: %q}\n", proxy.Addr, mirrorPWFile))
	p := f.Prepull(nil, "--config", pullCfg, "--json", rewritten)
	p.Want(t, 0)
	if prs := p.Results(t); len(prs) != 1 || prs[0].Status != "pulled" || prs[0].Reference != wantRef {
		t.Fatalf("pull from the mirror = %+v", prs)
	}
	if !f.Docker.HasImage(t, wantRef) {
		t.Fatalf("the engine does not hold %s", wantRef)
	}
}

func TestMirrorErrorsExitAsAPullDoes(t *testing.T) {
	f := e2e.NewFixture(t, "vendor/single")
	mreg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "bob", Password: "right"})
	wrong := filepath.Join(f.Dir, "wrong.password")
	if err := os.WriteFile(wrong, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logins := fmt.Sprintf("registries:\n  - {host: %q, username: alice, password_file: %q}\n  - {host: %q, username: bob, password_file: %q}\n",
		f.Reg.Addr, f.PasswordFile(), mreg.Addr, wrong)
	cfg := f.WriteConfig(logins)
	missing := paktest.Pak{Kind: "Gone", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/vendor/single", Digest: "sha256:" + strings.Repeat("cd", 32)}.WriteFile(t, t.TempDir())
	signedDir := t.TempDir()
	signed := filepath.Join(signedDir, "Signed_1.0.0.pak")
	data, err := os.ReadFile(f.Pak)
	if err != nil {
		t.Fatal(err)
	}
	paktest.AddMember(t, data, signed, "signature.jws")
	open := f.WriteConfig(fmt.Sprintf("registries:\n  - {host: %q, username: alice, password_file: %q}\n", f.Reg.Addr, f.PasswordFile()))
	openMirror := testenv.StartRegistry(t, testenv.RegistryOptions{})
	platformPak := func(repo, digest string) string {
		return paktest.Pak{Kind: "Mac", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/" + repo, Digest: digest}.WriteFile(t, t.TempDir())
	}
	arm := platformPak("vendor/mac", testenv.PushPlatformImage(t, f.Reg, "vendor/mac", "linux/arm64", ""))
	noAMD64 := platformPak("vendor/noamd", testenv.PushIndex(t, f.Reg, "vendor/noamd", testenv.IndexOptions{Platforms: []string{"linux/arm64", "linux/s390x"}, Attestations: true}))

	tests := []struct {
		name   string
		config string
		args   []string
		code   int
		say    string
	}{
		{"the mirror rejects the login", cfg, []string{"--to", mreg.Addr, f.Pak}, 4,
			fmt.Sprintf("credentials rejected: user %q at %s (credentials from password_file %s)", "bob", mreg.Addr, wrong)},
		{"the mirror wants a login prepull has not", open, []string{"--to", mreg.Addr, f.Pak}, 4, "prepull has no login for " + mreg.Addr},
		{"--out is the pak's own folder", open, []string{"--to", openMirror.Addr, "--out", filepath.Dir(f.Pak), f.Pak}, 2, "the rewritten pak would replace it"},
		{"an arm64 image", open, []string{"--to", openMirror.Addr, arm}, 7, "no linux/amd64 variant: built for linux/arm64 only"},
		{"an index without linux/amd64", open, []string{"--to", openMirror.Addr, noAMD64}, 7, "built for linux/arm64, linux/s390x only"},
		{"an arm64 image with --any-platform", open, []string{"--to", openMirror.Addr, "--any-platform", arm}, 0, "mirrored"},
		// The row before copied it: present now, and refused all the same.
		{"an arm64 image mirrored already", open, []string{"--to", openMirror.Addr, arm}, 7, "no linux/amd64 variant: built for linux/arm64 only"},
		{"the source lacks the digest", open, []string{"--to", openMirror.Addr, missing}, 5, "vendor/single"},
		{"not a pak", open, []string{"--to", openMirror.Addr, f.Config}, 3, f.Config},
		{"no --to", open, []string{f.Pak}, 2, "--to"},
		{"--to is a URL", open, []string{"--to", "https://" + openMirror.Addr, f.Pak}, 2, "URL"},
		{"a signed pak cannot be rewritten", open, []string{"--to", openMirror.Addr, "--out", t.TempDir(), signed}, 1, "signature.jws"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.Prepull(nil, append([]string{"--config", tt.config, "mirror"}, tt.args...)...)
			r.Want(t, tt.code)
			if !strings.Contains(r.Stdout+r.Stderr, tt.say) {
				t.Errorf("output does not say %q:\nstdout:\n%s\nstderr:\n%s", tt.say, r.Stdout, r.Stderr)
			}
		})
	}
}

// checkSameMembersButConf fails t unless the two paks hold the same members
// in the same order with the same raw bytes, but for the adapter archive.
func checkSameMembersButConf(t *testing.T, a, b string) {
	t.Helper()
	za, err := zip.OpenReader(a)
	if err != nil {
		t.Fatal(err)
	}
	defer za.Close()
	zb, err := zip.OpenReader(b)
	if err != nil {
		t.Fatal(err)
	}
	defer zb.Close()
	if len(za.File) != len(zb.File) {
		t.Fatalf("%d members, then %d", len(za.File), len(zb.File))
	}
	for i, fa := range za.File {
		fb := zb.File[i]
		if fa.Name != fb.Name {
			t.Fatalf("member %d: %s, then %s", i, fa.Name, fb.Name)
		}
		if fa.Name == "adapter.zip" {
			continue
		}
		if !bytes.Equal(rawBytes(t, fa), rawBytes(t, fb)) {
			t.Errorf("member %s changed", fa.Name)
		}
	}
}

func rawBytes(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.OpenRaw()
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
