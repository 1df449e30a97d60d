//go:build linux

package engines

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// matrixCase is one check of the engine matrix, run on an engine of its
// own (see TestEngineMatrix).
type matrixCase struct {
	name string
	doc  string // what it checks, for docs/compatibility.md
	run  func(t *testing.T, d *testenv.DockerEngine)
}

// Lines the matrix logs for matrixdoc, which writes docs/compatibility.md's
// matrix from the run's go test -json output: what each case checks, the
// engine of each column, and each cell's outcome in a few words.
const (
	caseLog    = "matrix case: "
	engineLog  = "matrix engine: "
	outcomeLog = "matrix outcome: "
)

// outcome logs what a cell did, as its words in docs/compatibility.md; a
// cell's words are its outcomes (its subtests' included) in order, once
// each.
func outcome(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Log(outcomeLog + fmt.Sprintf(format, args...))
}

// matrixCases are the core end-to-end checks that must hold on every Docker
// Engine and image store. docs/compatibility.md cites them by name.
var matrixCases = []matrixCase{
	{"pull", "pak pulled by digest: `pulled`, exit 0, the image in the engine", matrixPull},
	{"present", "the second run finds it: `present`, no pull", matrixPresent},
	{"wrong-password-exits-4", "a wrong password: exit 4, naming the user, nothing pulled", matrixWrongPassword},
	{"unknown-digest-exits-5", "a digest the repository does not have: exit 5", matrixUnknownDigest},
	{"unknown-repository-exits-5", "a repository the registry does not have: exit 5", matrixUnknownRepository},
	{"missing-login-exits-4", "no login configured for a registry that wants one: exit 4, `prepull has no login for HOST`", matrixMissingLogin},
	{"token-login", "Bearer token login (robot user): pulled; a wrong password exit 4", matrixTokenLogin},
	{"index-digest", "the digest of a linux/amd64 + linux/arm64 manifest list: pulled, then present", matrixIndex(testenv.IndexOptions{Platforms: []string{"linux/amd64", "linux/arm64"}})},
	{"index-digest-with-attestations", "the digest of an OCI index with amd64, arm64 and buildx attestation manifests: pulled, then present", matrixIndex(testenv.IndexOptions{Platforms: []string{"linux/amd64", "linux/arm64"}, Attestations: true})},
	{"platform-exits-7", "an arm64 image, an index of arm64 + s390x, an arm64 index with attestations: exit 7 before any pull, dry run too; the manifest list and the attested index pulled, then present; an arm64 image present already: exit 7; dry run: unknown digest 5, wrong password 4, no login 4", func(t *testing.T, d *testenv.DockerEngine) {
		runPlatformCases(t, e2e.NewFixtureOn(t, d, "matrix/platform"))
	}},
	{"platform-agent-failed", "the agent moves an arm64 pak to `failed/` with the reason, never pulling it, and pulls the attested index's pak", func(t *testing.T, d *testenv.DockerEngine) {
		runPlatformAgentCase(t, e2e.NewFixtureOn(t, d, "matrix/platform-agent"))
	}},
	{"platform-remote-row", "`prepull remote`: the arm64 pak's row says exit code 7 and why, the run exits 7", func(t *testing.T, d *testenv.DockerEngine) {
		runPlatformRemoteCase(t, e2e.NewFixtureOn(t, d, "matrix/platform-remote"))
	}},
	{"agent-keep-present", "the agent pulls a dropped pak, and pulls it again when the image is removed", matrixAgentKeepPresent},
	{"engine-restart", "engine stopped under the agent, a pak dropped, engine started: the agent says so and pulls it; the earlier image is still present", matrixEngineRestart},
}

// TestEngineMatrix runs the core end-to-end checks with the prepull binary
// against each Docker Engine and image store of testenv.Engines: the host's
// 20.10 (classic store), trixie's 26.1 and whatever sid ships (classic and
// containerd image store). Subtests are named VERSION/STORE/CASE (VERSION
// is sid for sid's); the versions run one after the other, the two stores
// of a version side by side, each engine stopped when its cases are done.
func TestEngineMatrix(t *testing.T) {
	for _, c := range matrixCases {
		t.Log(caseLog + c.name + ": " + c.doc)
	}
	testenv.ForEachEngine(t, func(t *testing.T, d *testenv.DockerEngine) {
		t.Log(engineLog + "Docker " + d.Info(t).Version)
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
	outcome(t, "pulled")
}

func matrixPresent(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/present")
	f.RunOne(f.Config, 0)
	res := f.RunOne(f.Config, 0)
	if res.Status != "present" {
		t.Fatalf("second run: %+v, want present", res)
	}
	outcome(t, "%s", res.Status)
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
	outcome(t, "exit %d", res.ExitCode)
}

func matrixUnknownDigest(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/unknown")
	f.Pak = paktest.Pak{Kind: "Missing", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/" + f.Repo, Digest: "sha256:" + strings.Repeat("ab", 32)}.WriteFile(t, t.TempDir())
	res := f.RunOne(f.Config, 5)
	if res.Status != "failed" || res.ExitCode != 5 {
		t.Fatalf("result = %+v, want failed with exit_code 5", res)
	}
	outcome(t, "exit %d", res.ExitCode)
}

func matrixUnknownRepository(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/known")
	f.Pak = paktest.Pak{Kind: "Missing", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/matrix/nosuchrepo", Digest: f.Digest}.WriteFile(t, t.TempDir())
	res := f.RunOne(f.Config, 5)
	if res.Status != "failed" || res.ExitCode != 5 {
		t.Fatalf("result = %+v, want failed with exit_code 5", res)
	}
	outcome(t, "exit %d", res.ExitCode)
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
	outcome(t, "exit %d", res.ExitCode)
}

func matrixTokenLogin(t *testing.T, d *testenv.DockerEngine) {
	const robot = "robot$proj+pull"
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: robot, Password: "Robot-" + e2e.RandomWord(t), TokenAuth: true})
	login := func(pwFile string) string {
		return fmt.Sprintf("registries:\n  - host: %s\n    username: %s\n    password_file: %s\n", reg.Addr, robot, pwFile)
	}
	f := e2e.NewRegistryFixtureOn(t, d, reg, "matrix/token", "registries: []\n")
	f.PulledOnce(f.WriteConfig(login(f.PasswordFile())), "password_file")
	outcome(t, "pulled")

	d.RemoveImage(t, f.Ref)
	f.WritePasswordFile("not-the-password")
	res := f.RunOne(f.WriteConfig(login(f.PasswordFile())), 4)
	if !strings.Contains(res.Error, `"`+robot+`"`) {
		t.Errorf("error %q should name the user %s", res.Error, robot)
	}
	outcome(t, "exit %d", res.ExitCode)
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
		outcome(t, "pulled")
		res := f.RunOne(f.Config, 0)
		if res.Status != "present" {
			t.Fatalf("second run: %+v, want present", res)
		}
		outcome(t, "%s", res.Status)
	}
}

func matrixAgentKeepPresent(t *testing.T, d *testenv.DockerEngine) {
	f := e2e.NewFixtureOn(t, d, "matrix/agent")
	a := f.AgentDone("verify_interval: 1s\n", "m.pak")

	d.RemoveImage(t, f.Ref)
	a.Eventually("the removed image is pulled again", func() bool {
		s := a.ReadState()
		return len(s.Images) == 1 && s.Images[0].Pulls == 2 && s.Images[0].Status == "present"
	})
	if !d.HasImage(t, f.Ref) {
		t.Errorf("%s is not in the engine", f.Ref)
	}
	outcome(t, "pulled %d times", a.ReadState().Images[0].Pulls)
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
	a.Eventually("the agent says the engine is unreachable", func() bool {
		return a.CountLogs("docker engine unreachable, will keep trying", nil) > 0
	})
	d.Start(t)
	a.Eventually("next.pak is in done/", func() bool { return a.InDone("next.pak") })
	outcome(t, "pulled")
	if a.CountLogs("docker engine reachable again", nil) == 0 {
		t.Error("the agent's log does not say the engine came back")
	}
	if res := f.RunOne(f.Config, 0); res.Status != "present" {
		t.Errorf("one-shot after the restart: %+v, want the image pulled before it present", res)
	} else {
		outcome(t, "%s", res.Status)
	}
	if code, took := a.Terminate(); code != 0 {
		t.Errorf("SIGTERM: exit code %d after %v, want 0", code, took)
	}
}
