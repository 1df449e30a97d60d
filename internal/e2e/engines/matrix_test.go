//go:build linux

package engines

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// matrixCase is one check of the engine matrix, run on an engine of its
// own (see TestEngineMatrix).
type matrixCase struct {
	name string
	run  func(t *testing.T, d *testenv.DockerEngine)
}

// matrixCases are the core end-to-end checks that must hold on every Docker
// Engine and image store. docs/compatibility.md cites them by name.
var matrixCases = []matrixCase{
	{"pull", matrixPull},
	{"present", matrixPresent},
	{"wrong-password-exits-4", matrixWrongPassword},
	{"unknown-digest-exits-5", matrixUnknownDigest},
	{"unknown-repository-exits-5", matrixUnknownRepository},
	{"missing-login-exits-4", matrixMissingLogin},
	{"token-login", matrixTokenLogin},
	{"index-digest", matrixIndex(testenv.IndexOptions{Platforms: []string{"linux/amd64", "linux/arm64"}})},
	{"index-digest-with-attestations", matrixIndex(testenv.IndexOptions{Platforms: []string{"linux/amd64", "linux/arm64"}, Attestations: true})},
	{"platform-exits-7", func(t *testing.T, d *testenv.DockerEngine) {
		runPlatformCases(t, e2e.NewFixtureOn(t, d, "matrix/platform"))
	}},
	{"platform-agent-failed", func(t *testing.T, d *testenv.DockerEngine) {
		runPlatformAgentCase(t, e2e.NewFixtureOn(t, d, "matrix/platform-agent"))
	}},
	{"platform-remote-row", func(t *testing.T, d *testenv.DockerEngine) {
		runPlatformRemoteCase(t, e2e.NewFixtureOn(t, d, "matrix/platform-remote"))
	}},
	{"agent-keep-present", matrixAgentKeepPresent},
	{"engine-restart", matrixEngineRestart},
}

// TestEngineMatrix runs the core end-to-end checks with the prepull binary
// against each Docker Engine and image store of testenv.Engines: the host's
// 20.10 (classic store), trixie's 26.1 and sid's 28.5 (classic and
// containerd image store). Subtests are named VERSION/STORE/CASE; the
// versions run one after the other, the two stores of a version side by
// side, each engine stopped when its cases are done.
func TestEngineMatrix(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, d *testenv.DockerEngine) {
		for _, c := range matrixCases {
			t.Run(c.name, func(t *testing.T) { c.run(t, d) })
		}
	})
}

func matrixPull(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/pull")
	if res := f.RunOne(f.Config, 0); res.Status != "pulled" || res.Reference != f.Ref {
		t.Fatalf("result = %+v, want %s pulled", res, f.Ref)
	}
	if !d.HasImage(t, f.Ref) {
		t.Fatalf("the engine does not hold %s after the pull", f.Ref)
	}
}

func matrixPresent(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/present")
	f.RunOne(f.Config, 0)
	if res := f.RunOne(f.Config, 0); res.Status != "present" {
		t.Fatalf("second run: %+v, want present", res)
	}
}

func matrixWrongPassword(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/wrongpw")
	f.WritePasswordFile("not-the-password")
	res := f.RunOne(f.Config, 4)
	if !strings.Contains(res.Error, `"alice"`) || strings.Contains(res.Error, "not-the-password") {
		t.Errorf("error %q should name the user and not the password", res.Error)
	}
	if d.HasImage(t, f.Ref) {
		t.Fatal("an image was pulled with rejected credentials")
	}
}

func matrixUnknownDigest(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/unknown")
	f.Pak = paktest.Pak{Kind: "Missing", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/" + f.Repo, Digest: "sha256:" + strings.Repeat("ab", 32)}.WriteFile(t, t.TempDir())
	if res := f.RunOne(f.Config, 5); res.Status != "failed" || res.ExitCode != 5 {
		t.Fatalf("result = %+v, want failed with exit_code 5", res)
	}
}

func matrixUnknownRepository(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/known")
	f.Pak = paktest.Pak{Kind: "Missing", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/matrix/nosuchrepo", Digest: f.Digest}.WriteFile(t, t.TempDir())
	if res := f.RunOne(f.Config, 5); res.Status != "failed" || res.ExitCode != 5 {
		t.Fatalf("result = %+v, want failed with exit_code 5", res)
	}
}

func matrixMissingLogin(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/nologin")
	res := f.RunOne(f.WriteConfig("registries: []\n"), 4)
	if res.CredentialSource != "anonymous" || !strings.Contains(res.Error, "prepull has no login for "+f.Reg.Addr) {
		t.Fatalf("result = %+v, want an anonymous failure that says which login is missing", res)
	}
	if d.HasImage(t, f.Ref) {
		t.Fatal("an image was pulled without a login")
	}
}

func matrixTokenLogin(t *testing.T, d *testenv.DockerEngine) {
	const robot = "robot$proj+pull"
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: robot, Password: "Robot-" + e2e.RandomWord(t), TokenAuth: true})
	login := func(pwFile string) string {
		return fmt.Sprintf("registries:\n  - host: %s\n    username: %s\n    password_file: %s\n", reg.Addr, robot, pwFile)
	}
	f := e2e.NewRegistryFixtureOn(t, d, reg, "matrix/token", "registries: []\n")
	f.PulledOnce(f.WriteConfig(login(f.PasswordFile())), "password_file")

	d.RemoveImage(t, f.Ref)
	f.WritePasswordFile("not-the-password")
	if res := f.RunOne(f.WriteConfig(login(f.PasswordFile())), 4); !strings.Contains(res.Error, `"`+robot+`"`) {
		t.Errorf("error %q should name the user %s", res.Error, robot)
	}
}

// matrixIndex pulls the digest of an index (a multi-platform image, as
// buildx pushes it) and finds it present on the second run.
func matrixIndex(opts testenv.IndexOptions) func(t *testing.T, d *testenv.DockerEngine) {
	return func(t *testing.T, d *testenv.DockerEngine) {
		f := e2e.NewFixtureOn(t, d, "matrix/index")
		index := testenv.PushIndex(t, f.Reg, "matrix/multi", opts)
		f.Pak = paktest.Pak{Kind: "Multi", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/matrix/multi", Digest: index}.WriteFile(t, t.TempDir())
		f.Ref = f.Reg.Addr + "/matrix/multi@" + index
		f.PulledOnce(f.Config, "password_file")
		if res := f.RunOne(f.Config, 0); res.Status != "present" {
			t.Fatalf("second run: %+v, want present", res)
		}
	}
}

func matrixAgentKeepPresent(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/agent")
	a := f.AgentDone("verify_interval: 1s\n", "m.pak")

	d.RemoveImage(t, f.Ref)
	a.Eventually(30*time.Second, "the removed image is pulled again", func() bool {
		s := a.ReadState()
		return len(s.Images) == 1 && s.Images[0].Pulls == 2 && s.Images[0].Status == "present"
	})
	if !d.HasImage(t, f.Ref) {
		t.Errorf("%s is not in the engine", f.Ref)
	}
	if code, took := a.Terminate(); code != 0 {
		t.Errorf("SIGTERM: exit code %d after %v, want 0", code, took)
	}
}

// matrixEngineRestart stops the engine under a running agent, drops a pak
// while it is down, and starts it again: the agent says the engine went away
// and came back, pulls the new pak, and the image pulled before the restart
// is still present.
func matrixEngineRestart(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/restart")
	a := f.AgentDone("rescan_interval: 300ms\n", "first.pak")
	digest := testenv.Docker(t).PushImage(t, f.Reg, "matrix/restart-next", testenv.ImageOptions{})
	next := paktest.Pak{Kind: "Next", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/matrix/restart-next", Digest: digest}.WriteFile(t, t.TempDir())

	d.Stop(t)
	a.Drop(next, "next.pak")
	a.Eventually(30*time.Second, "the agent says the engine is unreachable", func() bool {
		return a.CountLogs("docker engine unreachable, will keep trying", nil) > 0
	})
	d.Start(t)
	a.Eventually(60*time.Second, "next.pak is in done/", func() bool { return a.InDone("next.pak") })
	if a.CountLogs("docker engine reachable again", nil) == 0 {
		t.Error("the agent's log does not say the engine came back")
	}
	if res := f.RunOne(f.Config, 0); res.Status != "present" {
		t.Errorf("one-shot after the restart: %+v, want the image pulled before it present", res)
	}
	if code, took := a.Terminate(); code != 0 {
		t.Errorf("SIGTERM: exit code %d after %v, want 0", code, took)
	}
}

// TestCompatibilityDocCitesMatrix keeps docs/compatibility.md and the matrix
// together: every cell of TestEngineMatrix is cited there by its full name,
// and every name cited there is a cell. It needs no engine.
func TestCompatibilityDocCitesMatrix(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/compatibility.md")
	if err != nil {
		t.Fatal(err)
	}
	cells := map[string]bool{}
	for _, e := range testenv.Engines {
		for _, c := range matrixCases {
			name := "TestEngineMatrix/" + e.Version + "/" + e.Store + "/" + c.name
			cells[name] = true
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("docs/compatibility.md does not cite %s", name)
			}
		}
	}
	for _, m := range regexp.MustCompile("`(TestEngineMatrix/[0-9.]+/[a-z]+/[a-z0-9-]+)`").FindAllStringSubmatch(string(doc), -1) {
		if !cells[m[1]] {
			t.Errorf("docs/compatibility.md cites %s, which is no cell of TestEngineMatrix", m[1])
		}
	}
}
