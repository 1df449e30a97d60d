//go:build linux

package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// bundleOut is `prepull mirror --json` for an export or a --verify.
type bundleOut struct {
	Bundle         string             `json:"bundle"`
	ManifestSHA256 string             `json:"manifest_sha256"`
	Paks           []e2e.MirrorResult `json:"paks"`
}

func decodeBundle(t *testing.T, r e2e.Run) bundleOut {
	t.Helper()
	return e2e.Decode[bundleOut](t, r)
}

// TestMirrorBundleAcrossTheAirGap crosses an air gap as a file: an export
// with only the source registry running, then, the source stopped, an
// import with only the destination running, and pulls of the rewritten paks
// on Engine 20.10 and on the newest engine's (sid's) containerd image store. Bundles with
// one flipped byte, a missing blob or a truncated archive are refused,
// naming the member, before anything is pushed; a push cut short completes
// when run again.
func TestMirrorBundleAcrossTheAirGap(t *testing.T) {
	f := e2e.NewFixture(t, "vendor/single")
	index := testenv.PushIndex(t, f.Reg, "vendor/multi", testenv.IndexOptions{Platforms: []string{"linux/amd64", "linux/arm64"}, Attestations: true})
	multi := paktest.Pak{Kind: "Multi", Version: "2.0.0", Registry: f.Reg.Addr, Repository: "/vendor/multi", Digest: index}.WriteFile(t, t.TempDir())
	work := t.TempDir()
	dir, archive := filepath.Join(work, "bundle"), filepath.Join(work, "bundle.tar")

	// Export, in both forms, with only the source registry running.
	exp := f.Prepull(nil, "--config", f.Config, "--json", "mirror", "--to", "oci:"+dir, f.Pak, multi)
	exp.Want(t, 0)
	sum := decodeBundle(t, exp).ManifestSHA256
	if want := fileSHA256(t, filepath.Join(dir, "prepull-bundle.json")); sum != want {
		t.Fatalf("the export printed %s, but prepull-bundle.json's SHA-256 is %s", sum, want)
	}
	checkServedBytes(t, f, dir, "vendor/single", f.Digest)
	checkServedBytes(t, f, dir, "vendor/multi", index)
	again := f.Prepull(nil, "--config", f.Config, "mirror", "--to", "oci-archive:"+archive, f.Pak, multi)
	again.Want(t, 0)
	if !strings.Contains(again.Stdout, sum) {
		t.Fatalf("the archive's export does not print %s:\n%s", sum, again.Stdout)
	}
	f.Reg.Stop(t)

	// Verify, in both forms, with no registry running.
	for _, b := range []string{"oci:" + dir, "oci-archive:" + archive} {
		v := f.Prepull(nil, "--json", "mirror", "--verify", b)
		v.Want(t, 0)
		if got := decodeBundle(t, v); got.ManifestSHA256 != sum || len(got.Paks) != 2 {
			t.Fatalf("--verify %s = %+v, want 2 paks and %s", b, got, sum)
		}
	}

	// Inside the site: the destination alone, behind a proxy that counts.
	mirrorPW := "mirror-" + e2e.RandomWord(t)
	mreg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "bob", Password: mirrorPW})
	proxy := testenv.StartFaultProxy(t, mreg.Addr)
	pwFile := filepath.Join(f.Dir, "mirror.password")
	if err := os.WriteFile(pwFile, []byte(mirrorPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	login := fmt.Sprintf("registries:\n  - {host: %q, username: bob, password_file: %q}\n", proxy.Addr, pwFile)
	cfg := f.WriteConfig(login)

	// Altered bundles are refused, naming the member, with nothing pushed.
	blob := largestBlob(t, dir)
	for _, tc := range []struct{ name, bundle, member string }{
		{"flipped byte", "oci:" + alteredCopy(t, dir, func(d string) { flipByte(t, filepath.Join(d, blob)) }), blob},
		{"missing blob", "oci:" + alteredCopy(t, dir, func(d string) { remove(t, filepath.Join(d, blob)) }), blob},
		{"truncated archive", "oci-archive:" + truncatedCopy(t, archive), "blobs/sha256/"},
		{"altered pak", "oci:" + alteredCopy(t, dir, func(d string) { flipByte(t, filepath.Join(d, "paks", filepath.Base(multi))) }), "paks/" + filepath.Base(multi)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := f.Prepull(nil, "mirror", "--verify", tc.bundle)
			v.Want(t, 1)
			imp := f.Prepull(nil, "--config", cfg, "mirror", tc.bundle, "--to", proxy.Addr+"/dc1")
			imp.Want(t, 1)
			for _, r := range []e2e.Run{v, imp} {
				if !strings.Contains(r.Stderr, tc.member) {
					t.Errorf("the refusal does not name %s:\n%s", tc.member, r.Stderr)
				}
			}
			if n := len(proxy.Requests()); n != 0 {
				t.Fatalf("the destination saw %d requests from a refused bundle:\n%s", n, proxy.Summary())
			}
		})
	}

	// A push cut short (every blob sent, every manifest refused) completes
	// when run again, without sending the blobs again.
	proxy.Fail(testenv.Failure{Status: 400, Kind: testenv.KindManifest, Method: http.MethodPut})
	cut := f.Prepull(nil, "--config", cfg, "mirror", "oci-archive:"+archive, "--to", proxy.Addr+"/dc1")
	if cut.Code == 0 {
		t.Fatalf("a push whose manifests were refused exited 0:\n%s", cut.Stdout)
	}
	proxy.Heal()
	blobsBefore, _ := uploads(proxy)
	out := t.TempDir()
	imp := f.Prepull(nil, "--config", cfg, "--json", "mirror", "oci-archive:"+archive, "--to", proxy.Addr+"/dc1", "--out", out, "--sha256", sum)
	imp.Want(t, 0)
	rs := imp.MirrorResults(t)
	if len(rs) != 2 || rs[0].Status != "mirrored" || rs[1].Status != "mirrored" || rs[1].Manifests != 5 {
		t.Fatalf("import results = %+v, want both mirrored, the index with 5 manifests", rs)
	}
	if blobsBefore == 0 {
		t.Fatal("the push cut short sent no blob")
	}
	if b, _ := uploads(proxy); b != blobsBefore {
		t.Errorf("the second push sent %d blobs again, want none: the first had sent them", b-blobsBefore)
	}
	if strings.Contains(imp.Stdout+imp.Stderr+cut.Stdout+cut.Stderr, mirrorPW) {
		t.Fatal("the mirror's password appears in the output")
	}
	blobs, manifests := uploads(proxy)
	if r := f.Prepull(nil, "--config", cfg, "--json", "mirror", "oci:"+dir, "--to", proxy.Addr+"/dc1"); r.Code != 0 ||
		!slices.Equal(statuses(r.MirrorResults(t)), []string{"present", "present"}) {
		t.Fatalf("a third import: exit %d, want both present:\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if b, m := uploads(proxy); b != blobs || m != manifests {
		t.Fatalf("a third import wrote %d blobs and %d manifests, want none", b-blobs, m-manifests)
	}

	// The proxies pull from the rewritten paks, the source long gone.
	pulls := []string{filepath.Join(out, filepath.Base(f.Pak)), filepath.Join(out, filepath.Base(multi))}
	for i, p := range pulls {
		checkSameMembersButConf(t, []string{f.Pak, multi}[i], p)
	}
	wantRefs := []string{proxy.Addr + "/dc1/vendor/single@" + f.Digest, proxy.Addr + "/dc1/vendor/multi@" + index}
	pullOn := func(t *testing.T, d *testenv.DockerEngine) {
		g := *f
		g.T, g.Docker = t, d
		r := g.Prepull(nil, append([]string{"--config", g.WriteConfig(login), "--json"}, pulls...)...)
		r.Want(t, 0)
		for i, res := range r.Results(t) {
			if res.Status != "pulled" || res.Reference != wantRefs[i] {
				t.Fatalf("pull %d = %+v, want %s pulled", i, res, wantRefs[i])
			}
			if !d.HasImage(t, wantRefs[i]) {
				t.Fatalf("the engine does not hold %s", wantRefs[i])
			}
		}
	}
	t.Run("20.10-classic", func(t *testing.T) { pullOn(t, f.Docker) })
	t.Run("sid-containerd", func(t *testing.T) { pullOn(t, engine(t, "sid", "containerd").Start(t)) })
}

// engine is the engine of testenv.Engines of that name (its release, or the
// suite that moves) and store.
func engine(t *testing.T, name, store string) testenv.Engine {
	t.Helper()
	i := slices.IndexFunc(testenv.Engines, func(e testenv.Engine) bool { return e.Name() == name && e.Store == store })
	if i < 0 {
		t.Fatalf("testenv.Engines has no Docker %s with the %s store", name, store)
	}
	return testenv.Engines[i]
}

func statuses(rs []e2e.MirrorResult) []string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Status)
	}
	return s
}

// checkServedBytes checks that the bundle in dir holds the manifest
// repo@digest of the fixture's registry, and every manifest it lists, as the
// exact bytes the registry serves.
func checkServedBytes(t *testing.T, f *e2e.Fixture, dir, repo, digest string) {
	t.Helper()
	ref, err := name.NewDigest(f.Reg.Addr + "/" + repo + "@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, remote.WithAuth(&authn.Basic{Username: "alice", Password: f.Password}))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		t.Fatalf("the bundle lacks %s: %v", digest, err)
	}
	if string(stored) != string(desc.Manifest) {
		t.Fatalf("the bundle's %s is not the bytes the registry serves", digest)
	}
	var m struct{ Manifests []v1.Descriptor }
	if err := json.Unmarshal(stored, &m); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Manifests {
		checkServedBytes(t, f, dir, repo, c.Digest.String())
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// largestBlob names the largest blob of the layout in dir, a layer:
// blobs/sha256/HEX.
func largestBlob(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var best string
	var size int64 = -1
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > size {
			best, size = e.Name(), info.Size()
		}
	}
	return "blobs/sha256/" + best
}

// alteredCopy copies the folder dir and lets alter change the copy.
func alteredCopy(t *testing.T, dir string, alter func(copy string)) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "bundle")
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	alter(dst)
	return dst
}

// truncatedCopy copies the first half of file.
func truncatedCopy(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "truncated.tar")
	if err := os.WriteFile(dst, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
