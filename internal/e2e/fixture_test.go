package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// fixture is one proxy's worth of real parts: the shared Docker Engine, a
// registry of the test's own with a login, an image pushed to it, a pak
// naming that image, and a prepull configuration with the password in a
// 0600 file. Docker's config.json is isolated in the test's own folder.
type fixture struct {
	t               *testing.T
	dir             string
	docker          *testenv.DockerEngine
	reg             *testenv.Registry
	password        string
	repo            string // without leading slash
	digest          string
	ref             string // registry/repo@digest
	pak             string // path of the pak file
	config          string // path of the prepull configuration
	dockerConfigDir string
	// onStart, when set, is called with the pid of every prepull the
	// fixture runs, as soon as it started.
	onStart func(pid int)
	// env is added to the clean environment of every prepull the fixture
	// runs, one-shot and agent.
	env []string
}

// newFixture starts a registry with a login, pushes a fresh image as repo
// and writes a pak and a configuration for it, for the shared Docker Engine.
func newFixture(t *testing.T, repo string) *fixture {
	t.Helper()
	return newFixtureOn(t, testenv.Docker(t), repo)
}

// newFixtureOn is newFixture for the engine eng.
func newFixtureOn(t *testing.T, eng *testenv.DockerEngine, repo string) *fixture {
	t.Helper()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "alice", Password: "pw-" + randomWord(t)})
	return newRegistryFixtureOn(t, eng, reg, repo, "")
}

// passwordFile is where the fixture's registry password lives.
func (f *fixture) passwordFile() string { return filepath.Join(f.dir, "registry.password") }

func (f *fixture) writePasswordFile(pw string) {
	f.t.Helper()
	if err := os.WriteFile(f.passwordFile(), []byte(pw+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// writeConfig writes a prepull configuration for the fixture, with extra
// YAML appended, and returns its path. registries is left out when extra
// sets it.
func (f *fixture) writeConfig(extra string) string {
	f.t.Helper()
	body := fmt.Sprintf("docker_host: %s\ndocker_config: %s\n", f.docker.Host, f.dockerConfigDir)
	if !strings.Contains(extra, "registries:") {
		body += fmt.Sprintf("registries:\n  - host: %s\n    username: alice\n    password_file: %s\n", f.reg.Addr, f.passwordFile())
	}
	p := filepath.Join(f.dir, fmt.Sprintf("config-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(p, []byte(body+extra), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// checkSecretsUnwritten fails the test when Docker's config.json appeared:
// prepull must never store a login.
func (f *fixture) checkSecretsUnwritten() {
	if _, err := os.Stat(filepath.Join(f.dockerConfigDir, "config.json")); err == nil && !f.keepsDockerConfig() {
		f.t.Errorf("prepull wrote %s/config.json", f.dockerConfigDir)
	}
}

// keepsDockerConfig reports whether the test itself wrote a config.json.
func (f *fixture) keepsDockerConfig() bool {
	_, err := os.Stat(filepath.Join(f.dockerConfigDir, ".written-by-test"))
	return err == nil
}

// run is one finished prepull process.
type run struct {
	stdout, stderr string
	code           int
}

// prepull runs the real prepull binary with args and stdin, in a clean
// environment (no DOCKER_HOST, a HOME of the test's own), and fails the test
// when the password shows up in its output.
func (f *fixture) prepull(stdin io.Reader, args ...string) run {
	f.t.Helper()
	return f.prepullEnv(nil, stdin, args...)
}

// prepullEnv is prepull with env added to the clean environment.
func (f *fixture) prepullEnv(env []string, stdin io.Reader, args ...string) run {
	f.t.Helper()
	cmd := exec.Command(testenv.Prepull(f.t), args...)
	cmd.Env = append(f.cleanEnv(), env...)
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("run prepull: %v", err)
	}
	if f.onStart != nil {
		f.onStart(cmd.Process.Pid)
	}
	err := cmd.Wait()
	r := run{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		f.t.Fatalf("run prepull: %v", err)
	}
	for _, s := range []string{r.stdout, r.stderr} {
		if strings.Contains(s, f.password) {
			f.t.Fatalf("the registry password appears in prepull's output:\n%s", s)
		}
	}
	return r
}

// cleanEnv is the environment prepull runs with: PATH, a HOME and TMPDIR
// of the test's own, and the fixture's env.
func (f *fixture) cleanEnv() []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + f.dir, "TMPDIR=" + f.dir}, f.env...)
}

// result is one entry of the one-shot's --json output.
type result struct {
	File             string `json:"file"`
	Reference        string `json:"reference"`
	Status           string `json:"status"`
	DurationMS       int64  `json:"duration_ms"`
	CredentialSource string `json:"credential_source"`
	Attempts         int    `json:"attempts"`
	ExitCode         int    `json:"exit_code"`
	Error            string `json:"error"`
}

// results decodes the one-shot's --json output.
func (r run) results(t *testing.T) []result {
	t.Helper()
	var rs []result
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
		t.Fatalf("stdout is not the JSON result array: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return rs
}

// want fails the test unless the run exited with code.
func (r run) want(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// randomWord returns a short random lower-case word.
func randomWord(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// loginFor returns a registries line, YAML in flow style, that gives each
// host the fixture's login: hosts are proxies in front of the fixture's
// registry, or the registry itself.
func (f *fixture) loginFor(hosts ...string) string {
	var entries []string
	for _, h := range hosts {
		entries = append(entries, fmt.Sprintf("{host: %q, username: alice, password_file: %q}", h, f.passwordFile()))
	}
	return "registries: [" + strings.Join(entries, ", ") + "]\n"
}

// pakVia writes a pak naming the image repo@digest of the fixture's
// registry through host, a proxy in front of it, and returns the pak's path
// and the reference it names.
func (f *fixture) pakVia(host, repo, digest string) (pak, ref string) {
	f.t.Helper()
	pak = paktest.Pak{Kind: "ViaProxy", Version: "1.0.0", Registry: host, Repository: "/" + repo, Digest: digest}.WriteFile(f.t, f.t.TempDir())
	return pak, host + "/" + repo + "@" + digest
}

// countConnections listens on a free port of 127.0.0.1 and counts the
// connections it accepts (closing each at once), to prove that a command
// connected nowhere. It returns the address and the count.
func countConnections(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var accepted atomic.Int32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return l.Addr().String(), &accepted
}
