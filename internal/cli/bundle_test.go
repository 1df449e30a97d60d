package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/registrytest"
)

// TestMirrorBundleInProcess runs the two legs of the air gap in-process
// between in-memory registries on loopback (go-containerregistry's), for the
// command's logic: what each leg prints, --json, the progress line on a
// terminal, and the usage errors. The end-to-end test uses docker-registry.
func TestMirrorBundleInProcess(t *testing.T) {
	srcHost, dstHost := registrytest.Start(t, nil), registrytest.Start(t, nil)
	img := registrytest.Image(t, 4096, 3, "")
	digest := registrytest.Push(t, srcHost+"/proj/x:latest", img)
	dir := t.TempDir()
	cfg := isolatedConfig(t, dir, "")
	file := paktest.Pak{Kind: "Bundled", Registry: srcHost, Repository: "/proj/x", Digest: digest.String()}.WriteFile(t, dir)
	bundle := "oci-archive:" + filepath.Join(dir, "b.tar")
	mirror := func(g *globals, args ...string) (string, string, ExitCode) {
		t.Helper()
		return runWith(context.Background(), t, g, append([]string{"mirror", "--config", cfg}, args...)...)
	}

	// Export on a terminal: the summary, then the progress line, on stderr.
	out, stderr, code := mirror(&globals{terminal: true}, "--to", bundle, file)
	if code != ExitOK {
		t.Fatalf("export: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"1 pak, 1 image, 1 manifest, 4 blobs, ", "to write into " + bundle, "\rexport: 4/4 blobs, "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("export's stderr lacks %q:\n%q", want, stderr)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "exported   ") || !strings.HasPrefix(lines[1], "bundle     "+bundle+"  sha256:") {
		t.Fatalf("export's stdout:\n%s", out)
	}

	// --verify --json says the same SHA-256.
	out, stderr, code = mirror(&globals{}, "--json", "--verify", bundle)
	var v bundleJSON
	if code != ExitOK || json.Unmarshal([]byte(out), &v) != nil || len(v.Paks) != 1 || v.Paks[0].Status != "verified" ||
		!strings.Contains(lines[1], "sha256:"+v.ManifestSHA256) {
		t.Fatalf("--verify: exit %d\n%s\n%s", code, out, stderr)
	}

	// --sha256: the export's passes, another is refused before anything else.
	if out, stderr, code := mirror(&globals{}, "--verify", bundle, "--sha256", "sha256:"+strings.ToUpper(v.ManifestSHA256)); code != ExitOK {
		t.Errorf("--verify --sha256 of the export: exit %d\n%s\n%s", code, out, stderr)
	}
	if out, stderr, code := mirror(&globals{}, "--verify", bundle, "--sha256", strings.Repeat("ab", 32)); code != ExitFailure || !strings.Contains(stderr, "prepull-bundle.json: SHA-256 ") {
		t.Errorf("--verify --sha256 of another: exit %d\n%s\n%s", code, out, stderr)
	}

	// A flipped byte: --verify --json names the member and exits 1.
	folder := filepath.Join(dir, "folder")
	if out, stderr, code := mirror(&globals{}, "--quiet", "--to", "oci:"+folder, file); code != ExitOK {
		t.Fatalf("export to a folder: exit %d\n%s\n%s", code, out, stderr)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layer, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	member := "blobs/sha256/" + layer.Hex
	data, err := os.ReadFile(filepath.Join(folder, member))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(filepath.Join(folder, member), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = mirror(&globals{}, "--json", "--verify", "oci:"+folder)
	var refused bundleJSON
	if code != ExitFailure || json.Unmarshal([]byte(out), &refused) != nil || refused.Member != member || !strings.Contains(stderr, member) {
		t.Fatalf("--verify of a flipped byte: exit %d, want %d naming %s\n%s\n%s", code, ExitFailure, member, out, stderr)
	}

	// Import with --out, then again: present.
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o700); err != nil {
		t.Fatal(err)
	}
	want := dstHost + "/dc1/proj/x@" + digest.String()
	out, stderr, code = mirror(&globals{terminal: true}, bundle, "--to", dstHost+"/dc1", "--out", outDir)
	if code != ExitOK || !strings.HasPrefix(out, "mirrored   ") || !strings.Contains(out, want) || !strings.Contains(out, "-> "+filepath.Join(outDir, filepath.Base(file))) {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "; 1 pak, 1 image, 1 manifest, 4 blobs, ") || !strings.Contains(stderr, "\rpush: 4/4 blobs, ") {
		t.Errorf("import's stderr lacks the summary or the progress line:\n%q", stderr)
	}
	if out, _, code := mirror(&globals{}, "--quiet", bundle, "--to", dstHost+"/dc1"); code != ExitOK || !strings.HasPrefix(out, "present ") {
		t.Errorf("import again: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{
		{"--verify", "dir"},
		{"--verify", bundle, file},
		{"--verify", bundle, "--to", dstHost},
		{"--to", bundle},
		{"--to", bundle, "--out", outDir, file},
		{"--to", bundle, "-"},
		{"--to", bundle, "oci:" + dir},
		{bundle},
		{bundle, "--to", "https://" + dstHost},
		{bundle, "--to", dstHost, "--out", filepath.Join(dir, "none")},
		{"--verify", bundle, "--sha256", "abc"},
		{"--to", bundle, "--sha256", v.ManifestSHA256, file},
		{"--to", dstHost, "--sha256", v.ManifestSHA256, file},
	} {
		if out, stderr, code := mirror(&globals{}, args...); code != ExitUsage {
			t.Errorf("mirror %v: exit %d, want %d\n%s\n%s", args, code, ExitUsage, out, stderr)
		}
	}
}
