//go:build linux

package engines

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// The platform cases of issue 10: images an Apple Silicon Mac pushes, and
// indexes as buildx pushes them. runPlatformCases, runPlatformAgentCase and
// runPlatformRemoteCase take the fixture (its engine and registry); the
// engine matrix (matrix_test.go) runs them on every engine and store.

// platformImages are the references of the images the platform cases use,
// pushed to one registry, each with a pak naming it.
type platformImages struct {
	arm64, list, attested, noAMD64, armAttested platformImage
}

// platformImage is one image of the platform cases and a pak naming it.
type platformImage struct {
	ref, pak string
}

// pushPlatformImages pushes the images of the platform cases to f's
// registry under prefix and writes a pak for each.
func pushPlatformImages(t *testing.T, f *e2e.Fixture, prefix string) platformImages {
	t.Helper()
	img := func(repo, digest string) platformImage {
		return platformImage{
			ref: f.Reg.Addr + "/" + repo + "@" + digest,
			pak: paktest.Pak{Kind: "Platform", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/" + repo, Digest: digest}.WriteFile(t, t.TempDir()),
		}
	}
	both := []string{"linux/amd64", "linux/arm64"}
	return platformImages{
		arm64:       img(prefix+"/mac", testenv.PushPlatformImage(t, f.Reg, prefix+"/mac", "linux/arm64", "")),
		list:        img(prefix+"/list", testenv.PushIndex(t, f.Reg, prefix+"/list", testenv.IndexOptions{Platforms: both})),
		attested:    img(prefix+"/attested", testenv.PushIndex(t, f.Reg, prefix+"/attested", testenv.IndexOptions{Platforms: both, Attestations: true})),
		noAMD64:     img(prefix+"/noamd", testenv.PushIndex(t, f.Reg, prefix+"/noamd", testenv.IndexOptions{Platforms: []string{"linux/arm64", "linux/s390x"}})),
		armAttested: img(prefix+"/armattested", testenv.PushIndex(t, f.Reg, prefix+"/armattested", testenv.IndexOptions{Platforms: []string{"linux/arm64"}, Attestations: true})),
	}
}

// runPlatformCases runs the one-shot's platform cases against f's engine
// and registry.
func runPlatformCases(t *testing.T, f *e2e.Fixture) {
	imgs := pushPlatformImages(t, f, "plat")

	refused := []struct {
		name string
		img  platformImage
		want []string // in the error
	}{
		{"arm64 image", imgs.arm64, []string{"built for linux/arm64 only", "linux/amd64", "Apple Silicon Mac", "rebuild it for linux/amd64"}},
		{"index without amd64", imgs.noAMD64, []string{"built for linux/arm64, linux/s390x only", "rebuild it for linux/amd64"}},
		{"arm64 index with attestations", imgs.armAttested, []string{"built for linux/arm64 only", "Apple Silicon Mac"}},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			for _, dry := range []bool{false, true} {
				args := []string{"--config", f.Config, "--json", tt.img.pak}
				if dry {
					args = append([]string{"--dry-run"}, args...)
				}
				r := f.Prepull(nil, args...)
				r.Want(t, 7)
				res := e2e.OneResult(t, r)
				t.Logf("dry run %v: %s", dry, res.Error)
				if res.Status != "failed" || res.ExitCode != 7 || res.Attempts != 0 {
					t.Errorf("dry run %v: result %+v, want failed with exit_code 7 and no pull attempt", dry, res)
				}
				for _, s := range append(tt.want, "the image cannot run on this proxy") {
					if !strings.Contains(res.Error, s) {
						t.Errorf("dry run %v: error %q does not say %q", dry, res.Error, s)
					}
				}
				if strings.Contains(res.Error, "unknown") {
					t.Errorf("dry run %v: error %q names an attestation entry as a platform", dry, res.Error)
				}
				if f.Docker.HasImage(t, tt.img.ref) {
					t.Fatalf("dry run %v: %s was pulled", dry, tt.img.ref)
				}
				outcome(t, "exit %d", res.ExitCode)
			}
		})
	}

	// Before anything is pulled: a present image would answer first.
	t.Run("dry run", func(t *testing.T) {
		missing := paktest.Pak{Kind: "Missing", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/plat/list", Digest: "sha256:" + strings.Repeat("ab", 32)}.WriteFile(t, t.TempDir())
		f.Prepull(nil, "--config", f.Config, "--dry-run", missing).Want(t, 5)

		wrong := filepath.Join(t.TempDir(), "wrong.password")
		e2e.WriteTestFile(t, wrong, "not-the-password\n")
		bad := f.WriteConfig("registries: [{host: \"" + f.Reg.Addr + "\", username: alice, password_file: \"" + wrong + "\"}]\n")
		f.Prepull(nil, "--config", bad, "--dry-run", imgs.list.pak).Want(t, 4)

		anonymous := f.WriteConfig("registries: []\n")
		r := f.Prepull(nil, "--config", anonymous, "--dry-run", imgs.list.pak)
		r.Want(t, 4)
		if !strings.Contains(r.Stdout+r.Stderr, "prepull has no login for "+f.Reg.Addr) {
			t.Errorf("an anonymous dry run does not say which login is missing:\n%s%s", r.Stdout, r.Stderr)
		}
	})

	for _, tt := range []struct {
		name string
		img  platformImage
	}{
		{"manifest list", imgs.list},
		{"index with attestations", imgs.attested},
	} {
		t.Run("pulled: "+tt.name, func(t *testing.T) {
			dry := f.Prepull(nil, "--config", f.Config, "--json", "--dry-run", tt.img.pak)
			dry.Want(t, 0)
			if res := e2e.OneResult(t, dry); res.Status != "would-pull" || f.Docker.HasImage(t, tt.img.ref) {
				t.Fatalf("dry run: %+v, want would-pull and nothing pulled", res)
			}
			r := f.Prepull(nil, "--config", f.Config, "--json", tt.img.pak)
			r.Want(t, 0)
			res := e2e.OneResult(t, r)
			if res.Status != "pulled" || res.Reference != tt.img.ref {
				t.Fatalf("result %+v, want %s pulled", res, tt.img.ref)
			}
			outcome(t, "%s", res.Status)
			if got := f.Docker.Run(t, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", tt.img.ref); got != "linux/amd64" {
				t.Errorf("the engine holds %s for %s, want linux/amd64", got, tt.img.ref)
			}
			again := f.Prepull(nil, "--config", f.Config, "--json", tt.img.pak)
			again.Want(t, 0)
			if res := e2e.OneResult(t, again); res.Status != "present" {
				t.Errorf("second run: %+v, want present", res)
			}
		})
	}

	t.Run("present arm64 image", func(t *testing.T) {
		// An arm64 image pulled before prepull checked platforms (or by
		// hand) is there, and is no use: present is not enough.
		config := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte("alice:" + f.Password))
		e2e.WriteTestFile(t, filepath.Join(config, "config.json"), `{"auths":{"`+f.Reg.Addr+`":{"auth":"`+auth+`"}}}`)
		f.Docker.Run(t, "--config", config, "pull", imgs.arm64.ref)
		t.Cleanup(func() { f.Docker.RemoveImage(t, imgs.arm64.ref) })
		r := f.Prepull(nil, "--config", f.Config, imgs.arm64.pak)
		r.Want(t, 7)
		if !strings.Contains(r.Stdout, "built for linux/arm64 only") {
			t.Errorf("stdout does not name the image's platform:\n%s", r.Stdout)
		}
	})
}

// runPlatformAgentCase drops an arm64 pak and an index pak into the agent:
// the first goes to failed/ with the reason, at once, and is never pulled;
// the second is pulled and goes to done/.
func runPlatformAgentCase(t *testing.T, f *e2e.Fixture) {
	imgs := pushPlatformImages(t, f, "agentplat")
	config, inbox, state := f.AgentConfig("")
	a := f.StartAgent(config, inbox, state)

	a.Drop(imgs.arm64.pak, "mac.pak")
	a.Drop(imgs.attested.pak, "attested.pak")
	errFile := filepath.Join(inbox, "failed", "mac.pak.error")
	a.Eventually("mac.pak is in failed/", func() bool {
		_, err := os.Stat(errFile)
		return err == nil
	})
	reason, err := os.ReadFile(errFile)
	if err != nil {
		t.Fatal(err)
	}
	outcome(t, "failed/")
	t.Logf("mac.pak.error:\n%s", reason)
	for _, s := range []string{"the image cannot run on this proxy", "linux/arm64", "linux/amd64", "Apple Silicon Mac"} {
		if !strings.Contains(string(reason), s) {
			t.Errorf("mac.pak.error does not say %q:\n%s", s, reason)
		}
	}
	// One piece of advice, the right one: rebuild the image, not fix the pak.
	for _, s := range []string{"Fix the pak", "default_registry", "does not name a pullable image"} {
		if strings.Contains(string(reason), s) {
			t.Errorf("mac.pak.error says %q, advice for another failure:\n%s", s, reason)
		}
	}
	a.Eventually("attested.pak is in done/", func() bool { return a.InDone("attested.pak") })
	outcome(t, "done/")
	if f.Docker.HasImage(t, imgs.arm64.ref) {
		t.Errorf("%s was pulled", imgs.arm64.ref)
	}
	r := f.Prepull(nil, "status", "--config", config)
	r.Want(t, 0)
	// Its row keeps the reference and says the platform reason, as exit 7.
	row := ""
	for line := range strings.Lines(r.Stdout) {
		if strings.HasPrefix(line, "failed/mac.pak ") {
			row = line
		}
	}
	if !strings.Contains(row, imgs.arm64.ref) || !strings.Contains(row, "no linux/amd64 variant: built for linux/arm64 only") {
		t.Errorf("status's row for failed/mac.pak is %q, want its reference and the platform reason:\n%s", row, r.Stdout)
	}
}

// runPlatformRemoteCase runs prepull remote with an arm64 pak: the host's
// row says exit code 7 and why, and so does the exit status.
func runPlatformRemoteCase(t *testing.T, f *e2e.Fixture) {
	imgs := pushPlatformImages(t, f, "remoteplat")
	p := e2e.NewProxyFleet(t, f, f.Config)

	r := f.Prepull(nil, p.Args(t, "--json", imgs.arm64.pak, imgs.list.pak)...)
	r.Want(t, 7)
	results := r.RemoteResults(t)
	row := results[p.Dest(0)+" "+imgs.arm64.pak]
	if row.Status != "failed" || row.ExitCode != 7 || !strings.Contains(row.Error, "cannot run on this proxy") || row.Reference != imgs.arm64.ref {
		t.Errorf("arm64 row: %+v, want failed with exit_code 7 saying why", row)
	}
	outcome(t, "row exit %d", row.ExitCode)
	if ok := results[p.Dest(0)+" "+imgs.list.pak]; ok.Status != "pulled" || ok.ExitCode != 0 {
		t.Errorf("index row: %+v, want pulled", ok)
	}

	table := f.Prepull(nil, p.Args(t, "--wide", "--dry-run", imgs.arm64.pak)...)
	table.Want(t, 7)
	if !strings.Contains(table.Stdout, "the image cannot run on this proxy") {
		t.Errorf("the table does not say why:\n%s", table.Stdout)
	}
}
