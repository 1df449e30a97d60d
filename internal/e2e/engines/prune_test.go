//go:build linux

package engines

import (
	"slices"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/testenv"
)

// pruneEngines are the engines the prune test runs on: the classic image
// store, where an image pulled by digest alone is dangling, and the newest
// engine's containerd image store.
func pruneEngines(t *testing.T) []testenv.Engine {
	var out []testenv.Engine
	for _, e := range testenv.Engines {
		if e.Version == "20.10" || e.Suite == "sid" && e.Store == "containerd" {
			out = append(out, e)
		}
	}
	if len(out) != 2 {
		// A renamed engine must not quietly drop a store from the test.
		t.Fatalf("testenv.Engines has %d of the two prune engines (20.10 classic, sid containerd)", len(out))
	}
	return out
}

// localNames lists the image names (repository:tag) under prepull.invalid.
func localNames(t *testing.T, d *testenv.DockerEngine) []string {
	t.Helper()
	var names []string
	for _, n := range strings.Fields(d.Run(t, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}")) {
		if strings.HasPrefix(n, "prepull.invalid/") {
			names = append(names, n)
		}
	}
	return names
}

// TestPruneKeepsPulledImages: on the classic and the containerd image
// store, an image the one-shot pulled, or the agent keeps, gets its local
// name prepull.invalid/REPOSITORY:KIND-DIGEST12 and is still there by its
// digest after `docker image prune -f`. The agent puts a removed name back
// at its next verify. Without the name (--no-local-name), the classic
// store's prune removes the image: the name is what keeps it. Each engine
// is the test's own, since a prune would reach other tests' images.
func TestPruneKeepsPulledImages(t *testing.T) {
	for _, e := range pruneEngines(t) {
		t.Run(e.Name()+"/"+e.Store, func(t *testing.T) {
			t.Parallel()
			d := e.Start(t)
			f := e2e.NewFixtureOn(t, d, "prune/adapter")
			name := "prepull.invalid/prune/adapter:MyAdapter-" + strings.TrimPrefix(f.Digest, "sha256:")[:12]

			if res := f.RunOne(f.Config, 0); res.Status != "pulled" {
				t.Fatalf("result %+v, want pulled", res)
			}
			if got := localNames(t, d); !slices.Equal(got, []string{name}) {
				t.Fatalf("local names %v, want [%s]", got, name)
			}
			d.Run(t, "image", "prune", "-f")
			if !d.HasImage(t, f.Ref) {
				t.Fatalf("docker image prune -f removed %s", f.Ref)
			}
			if digests := d.Run(t, "image", "inspect", "--format", "{{json .RepoDigests}}", name); !strings.Contains(digests, f.Ref) {
				t.Errorf("the named image's RepoDigests are %s, want %s among them", digests, f.Ref)
			}

			// Without the name: pulled again, unnamed; the classic store's
			// prune takes it.
			d.Run(t, "image", "rm", name, f.Ref)
			if res := f.RunOne(f.Config, 0); res.Status != "pulled" {
				t.Fatalf("result %+v, want pulled", res)
			}
			d.Run(t, "image", "rm", name)
			r := f.Prepull(nil, "--config", f.Config, "--json", "--no-local-name", f.Pak)
			r.Want(t, 0)
			if got := localNames(t, d); len(got) != 0 {
				t.Fatalf("--no-local-name, and the image is named %v", got)
			}
			d.Run(t, "image", "prune", "-f")
			if kept := d.HasImage(t, f.Ref); kept != (e.Store == "containerd") {
				t.Fatalf("unnamed, after a prune: image present %v; the %s store should keep it only when it is containerd's", kept, e.Store)
			}

			// The agent names what it keeps, and names it again at the
			// next verify when the name was removed.
			config, inbox, state := f.AgentConfig("verify_interval: 1s\n")
			p := f.StartAgent(config, inbox, state)
			p.Drop(f.Pak, "adapter.pak")
			p.Eventually("the pak is done", func() bool { return p.InDone("adapter.pak") })
			if got := localNames(t, d); !slices.Equal(got, []string{name}) {
				t.Fatalf("local names %v after the agent took the pak, want [%s]", got, name)
			}
			d.Run(t, "image", "rm", name)
			p.Eventually("the agent names the image again", func() bool { return len(localNames(t, d)) == 1 })
			d.Run(t, "image", "prune", "-f")
			if !d.HasImage(t, f.Ref) {
				t.Fatalf("docker image prune -f removed the agent's %s", f.Ref)
			}
		})
	}
}
