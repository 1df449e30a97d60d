package cli

import (
	"os"
	"testing"

	"github.com/prepull/prepull/internal/golden"
	"github.com/prepull/prepull/internal/pak/paktest"
)

// TestInspectReleases pins what `inspect --json` shows, and what it warns
// on stderr, for the ways the SDK releases name a registry: a 0.x Docker Hub
// namespace (registry docker.io, reference user/repo@DIGEST), 1.x Docker Hub,
// the 1.x localhost mangling (with warnings), the alpha, and a pak without
// REGISTRY.
func TestInspectReleases(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// The paks are named relative to their folder, so that the output is
	// the same on every run.
	t.Chdir(t.TempDir())
	paks := []paktest.Pak{
		{Release: paktest.ReleaseAlpha, Kind: "AlphaAdapter", Registry: "harbor.example.com", Repository: "/tvs/alphaadapter"},
		{Release: paktest.Release051, Kind: "HubZero", From: "myteam/hubzero"},
		{Release: paktest.Release131, Kind: "HubOne", From: "myteam/hubone"},
		{Release: paktest.Release131, Kind: "Mangled", From: "localhost:5000/team/mangled"},
		{Release: paktest.Release120, Kind: "NoRegistry", Repository: "/proj/noregistry"},
	}
	args := []string{"inspect", "--json", "--default-registry", "registry.example.com:5000"}
	for _, p := range paks {
		if err := p.Save(p.FileName()); err != nil {
			t.Fatal(err)
		}
		args = append(args, p.FileName())
	}
	if err := os.WriteFile("empty.yaml", []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(args, "--config", "empty.yaml")
	out, errOut, code := runCLI(t, "", args...)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if err := os.Chdir(wd); err != nil { // back to testdata
		t.Fatal(err)
	}
	golden.Check(t, "inspect-releases.json.golden", out)
	golden.Check(t, "inspect-releases.stderr.golden", errOut)
}
