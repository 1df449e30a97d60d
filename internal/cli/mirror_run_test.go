package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/registrytest"
)

// TestMirrorInProcess runs prepull mirror in-process between two in-memory
// registries on loopback (go-containerregistry's), for the command's logic:
// the copy, a second run that finds it present, --out, and the errors. The
// end-to-end mirror tests use docker-registry.
func TestMirrorInProcess(t *testing.T) {
	srcHost, dstHost := registrytest.Start(t, nil), registrytest.Start(t, nil)
	digest := registrytest.Push(t, srcHost+"/proj/x:latest", registrytest.Image(t, 1024, 2, ""))

	dir := t.TempDir()
	cfg := isolatedConfig(t, dir, "")
	p := paktest.Pak{Kind: "Mirrored", Registry: srcHost, Repository: "/proj/x", Digest: digest.String()}
	file := p.WriteFile(t, dir)
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o700); err != nil {
		t.Fatal(err)
	}
	mirrorRun := func(args ...string) ([]mirrorResult, string, ExitCode) {
		t.Helper()
		out, stderr, code := runWith(context.Background(), t, &globals{}, append([]string{"mirror", "--config", cfg, "--quiet"}, args...)...)
		if !strings.Contains(strings.Join(args, " "), "--json") {
			return nil, out + stderr, code
		}
		var rs []mirrorResult
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("mirror %v: not a JSON array (%v):\n%s\n%s", args, err, out, stderr)
		}
		return rs, stderr, code
	}

	want := dstHost + "/mirror/proj/x@" + digest.String()
	rs, stderr, code := mirrorRun("--json", "--to", dstHost+"/mirror", "--out", outDir, file)
	if code != ExitOK || len(rs) != 1 || rs[0].Status != "mirrored" || rs[0].Reference != want || rs[0].Source != p.Reference("") {
		t.Fatalf("mirror: exit %d, %+v\n%s", code, rs, stderr)
	}
	written, err := pak.OpenFile(rs[0].Out)
	if err != nil {
		t.Fatal(err)
	}
	written.Close()
	rewritten := written.Image
	if tgt, err := rewritten.Resolve(""); err != nil || tgt.Reference != want {
		t.Errorf("the pak written to --out names %v (%v), want %s", tgt.Reference, err, want)
	}

	_, out, code := mirrorRun("--to", dstHost+"/mirror", file)
	if code != ExitOK || !strings.HasPrefix(out, "present ") || !strings.Contains(out, want) {
		t.Errorf("mirror again: exit %d\n%s", code, out)
	}

	// A digest the source does not have: exit 5, as a pull.
	missing := paktest.Pak{Kind: "Missing", Registry: srcHost, Repository: "/proj/x"}
	if rs, _, code := mirrorRun("--json", "--to", dstHost, missing.WriteFile(t, dir)); code != ExitNotFound || rs[0].Status != "failed" || rs[0].Error == "" {
		t.Errorf("a digest the source lacks: exit %d, %+v", code, rs)
	}
	for _, args := range [][]string{{file}, {"--to", "bad host!", file}, {"--to", dstHost, "--out", filepath.Join(dir, "none"), file}} {
		if _, out, code := mirrorRun(args...); code != ExitUsage {
			t.Errorf("mirror %v: exit %d, want %d\n%s", args, code, ExitUsage, out)
		}
	}
}
