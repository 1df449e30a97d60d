//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
	"github.com/prepull/prepull/internal/testenv/await"
)

// WriteDockerConfig writes the fixture's Docker config.json.
func (f *Fixture) WriteDockerConfig(body string) {
	f.T.Helper()
	for name, data := range map[string]string{"config.json": body, ".written-by-test": ""} {
		if err := os.WriteFile(filepath.Join(f.DockerConfigDir, name), []byte(data), 0o600); err != nil {
			f.T.Fatal(err)
		}
	}
}

// HelperBin puts a folder first on the PATH of every prepull the fixture
// runs (before the PATH f.Env already sets, if any) and returns it, for
// credential helpers and commands of the test's own.
func (f *Fixture) HelperBin() string {
	f.T.Helper()
	bin := filepath.Join(f.Dir, "bin")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		f.T.Fatal(err)
	}
	path := os.Getenv("PATH")
	for _, kv := range f.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	f.Env = append(f.Env, "PATH="+bin+string(os.PathListSeparator)+path)
	return bin
}

// OnePull runs the one-shot on the fixture's pak and returns its result.
func (f *Fixture) OnePull(config string, code int) Result {
	f.T.Helper()
	r := f.Prepull(nil, "--json", "--config", config, f.Pak)
	r.Want(f.T, code)
	rs := r.Results(f.T)
	if len(rs) != 1 {
		f.T.Fatalf("%d results, want 1:\n%s", len(rs), r.Stdout)
	}
	return rs[0]
}

// FaultImage is the image most fault tests pull: 3 MiB in 3 layers, so that
// a throttled pull has a middle and the vfs driver has little to copy.
var FaultImage = testenv.ImageOptions{Size: 3 << 20, Layers: 3}

// PrepullAsync runs prepull with args in the background; the channel yields
// its run, or is closed without one when the run failed the test.
func (f *Fixture) PrepullAsync(args ...string) <-chan Run {
	ch := make(chan Run, 1)
	go func() {
		defer close(ch)
		ch <- f.Prepull(nil, args...)
	}()
	return ch
}

// PrepullInterrupted runs prepull with args, calls ready once it started
// (ready waits for an event of the test's: the moment to interrupt), then
// sends it SIGINT, as Ctrl-C does, and returns its run, which must exit 130.
func (f *Fixture) PrepullInterrupted(ready func(), args ...string) Run {
	f.T.Helper()
	pids := make(chan int, 1)
	onStart := f.OnStart
	f.OnStart = func(pid int) {
		if onStart != nil {
			onStart(pid)
		}
		pids <- pid
	}
	defer func() { f.OnStart = onStart }()
	done := f.PrepullAsync(args...)
	pid := <-pids
	ready()
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		f.T.Fatal(err)
	}
	r, ok := <-done
	if !ok {
		f.T.Fatal("prepull did not run")
	}
	r.Want(f.T, 130)
	return r
}

// OneResult returns the one result of a --json run.
func OneResult(t *testing.T, r Run) Result {
	t.Helper()
	rs := r.Results(t)
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1\nstderr:\n%s", len(rs), r.Stderr)
	}
	return rs[0]
}

// WaitUntil polls cond every 50 ms up to the test's own deadline
// (await.Limit), failing t with what.
func WaitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !await.Until(t, 50*time.Millisecond, cond) {
		t.Fatalf("timed out waiting until %s", what)
	}
}

// Fixture is one proxy's worth of real parts: the shared Docker Engine, a
// registry of the test's own with a login, an image pushed to it, a pak
// naming that image, and a prepull configuration with the password in a
// 0600 file. Docker's config.json is isolated in the test's own folder.
type Fixture struct {
	T               *testing.T
	Dir             string
	Docker          *testenv.DockerEngine
	Reg             *testenv.Registry
	Password        string
	Repo            string // without leading slash
	Digest          string
	Ref             string // registry/repo@digest
	Pak             string // path of the pak file
	Config          string // path of the prepull configuration
	DockerConfigDir string
	// OnStart, when set, is called with the pid of every prepull the
	// fixture runs, as soon as it started.
	OnStart func(pid int)
	// Env is added to the clean environment of every prepull the fixture
	// runs, one-shot and agent.
	Env []string
}

// NewFixture starts a registry with a login, pushes a fresh image as repo
// and writes a pak and a configuration for it, for the shared Docker Engine.
func NewFixture(t *testing.T, repo string) *Fixture {
	t.Helper()
	return NewFixtureOn(t, testenv.Docker(t), repo)
}

// NewFixtureOn is newFixture for the engine eng.
func NewFixtureOn(t *testing.T, eng *testenv.DockerEngine, repo string) *Fixture {
	t.Helper()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "alice", Password: "pw-" + RandomWord(t)})
	return NewRegistryFixtureOn(t, eng, reg, repo, "")
}

// PasswordFile is where the fixture's registry password lives.
func (f *Fixture) PasswordFile() string { return filepath.Join(f.Dir, "registry.password") }

func (f *Fixture) WritePasswordFile(pw string) {
	f.T.Helper()
	if err := os.WriteFile(f.PasswordFile(), []byte(pw+"\n"), 0o600); err != nil {
		f.T.Fatal(err)
	}
}

// WriteConfig writes a prepull configuration for the fixture, with extra
// YAML appended, and returns its path. registries is left out when extra
// sets it.
func (f *Fixture) WriteConfig(extra string) string {
	f.T.Helper()
	body := fmt.Sprintf("docker_host: %s\ndocker_config: %s\n", f.Docker.Host, f.DockerConfigDir)
	if !strings.Contains(extra, "registries:") {
		body += fmt.Sprintf("registries:\n  - host: %s\n    username: alice\n    password_file: %s\n", f.Reg.Addr, f.PasswordFile())
	}
	p := filepath.Join(f.Dir, fmt.Sprintf("config-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(p, []byte(body+extra), 0o600); err != nil {
		f.T.Fatal(err)
	}
	return p
}

// checkSecretsUnwritten fails the test when Docker's config.json appeared:
// prepull must never store a login.
func (f *Fixture) checkSecretsUnwritten() {
	if _, err := os.Stat(filepath.Join(f.DockerConfigDir, "config.json")); err == nil && !f.keepsDockerConfig() {
		f.T.Errorf("prepull wrote %s/config.json", f.DockerConfigDir)
	}
}

// keepsDockerConfig reports whether the test itself wrote a config.json.
func (f *Fixture) keepsDockerConfig() bool {
	_, err := os.Stat(filepath.Join(f.DockerConfigDir, ".written-by-test"))
	return err == nil
}

// Run is one finished prepull process.
type Run struct {
	Stdout, Stderr string
	Code           int
}

// Prepull runs the real prepull binary with args and stdin, in a clean
// environment (no DOCKER_HOST, a HOME of the test's own), and fails the test
// when the password shows up in its output.
func (f *Fixture) Prepull(stdin io.Reader, args ...string) Run {
	f.T.Helper()
	return f.PrepullEnv(nil, stdin, args...)
}

// PrepullEnv is prepull with env added to the clean environment.
func (f *Fixture) PrepullEnv(env []string, stdin io.Reader, args ...string) Run {
	f.T.Helper()
	cmd := exec.Command(testenv.Prepull(f.T), args...)
	cmd.Env = append(f.CleanEnv(), env...)
	cmd.Stdin = stdin
	return f.RunCommand(cmd)
}

// RunCommand runs cmd, a prepull or something that runs one (Wine), calls
// f.OnStart once it has started, and fails the test when the password shows
// up in its output.
func (f *Fixture) RunCommand(cmd *exec.Cmd) Run {
	f.T.Helper()
	r := RunCommand(f.T, cmd, f.OnStart)
	for _, s := range []string{r.Stdout, r.Stderr} {
		if strings.Contains(s, f.Password) {
			f.T.Fatalf("the registry password appears in prepull's output:\n%s", s)
		}
	}
	return r
}

// RunCommand runs cmd, capturing its output, and calls onStart (when not
// nil) with its pid once it has started.
func RunCommand(t *testing.T, cmd *exec.Cmd, onStart func(pid int)) Run {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatalf("run %s: %v", filepath.Base(cmd.Path), err)
	}
	if onStart != nil {
		onStart(cmd.Process.Pid)
	}
	err := cmd.Wait()
	r := Run{Stdout: out.String(), Stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", filepath.Base(cmd.Path), err)
	}
	return r
}

// CleanEnv is the environment prepull runs with: PATH, a HOME and TMPDIR
// of the test's own, and the fixture's env.
func (f *Fixture) CleanEnv() []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + f.Dir, "TMPDIR=" + f.Dir}, f.Env...)
}

// Result is one entry of the one-shot's --json output.
type Result struct {
	File             string `json:"file"`
	Reference        string `json:"reference"`
	Status           string `json:"status"`
	DurationMS       int64  `json:"duration_ms"`
	CredentialSource string `json:"credential_source"`
	Attempts         int    `json:"attempts"`
	ExitCode         int    `json:"exit_code"`
	Error            string `json:"error"`
}

// Decode decodes r's standard output, a --json output, as a T; when it is
// not one it fails t with both outputs.
func Decode[T any](t *testing.T, r Run) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatalf("stdout is not the JSON %T: %v\nstdout:\n%s\nstderr:\n%s", v, err, r.Stdout, r.Stderr)
	}
	return v
}

// Results decodes the one-shot's --json output.
func (r Run) Results(t *testing.T) []Result {
	t.Helper()
	return Decode[[]Result](t, r)
}

// Want fails the test unless the run exited with code.
func (r Run) Want(t *testing.T, code int) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.Code, code, r.Stdout, r.Stderr)
	}
}

// RandomWord returns a short random lower-case word.
func RandomWord(t *testing.T) string {
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

// LoginFor returns a registries line, YAML in flow style, that gives each
// host the fixture's login: hosts are proxies in front of the fixture's
// registry, or the registry itself.
func (f *Fixture) LoginFor(hosts ...string) string {
	var entries []string
	for _, h := range hosts {
		entries = append(entries, fmt.Sprintf("{host: %q, username: alice, password_file: %q}", h, f.PasswordFile()))
	}
	return "registries: [" + strings.Join(entries, ", ") + "]\n"
}

// PakVia writes a pak naming the image repo@digest of the fixture's
// registry through host, a proxy in front of it, and returns the pak's path
// and the reference it names.
func (f *Fixture) PakVia(host, repo, digest string) (pak, ref string) {
	f.T.Helper()
	pak = paktest.Pak{Kind: "ViaProxy", Version: "1.0.0", Registry: host, Repository: "/" + repo, Digest: digest}.WriteFile(f.T, f.T.TempDir())
	return pak, host + "/" + repo + "@" + digest
}

// CountConnections listens on a free port of 127.0.0.1 and counts the
// connections it accepts (closing each at once), to prove that a command
// connected nowhere. It returns the address and the count.
func CountConnections(t *testing.T) (string, *atomic.Int32) {
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

// MirrorResult is one entry of `prepull mirror --json`.
type MirrorResult struct {
	File      string `json:"file"`
	Source    string `json:"source"`
	Reference string `json:"reference"`
	Status    string `json:"status"`
	Manifests int    `json:"manifests"`
	Out       string `json:"out"`
	ExitCode  int    `json:"exit_code"`
	Error     string `json:"error"`
}

func (r Run) MirrorResults(t *testing.T) []MirrorResult {
	t.Helper()
	return Decode[[]MirrorResult](t, r)
}

// ServeAttacker serves handler on a free port of 127.0.0.1, where Docker
// Engine speaks plain HTTP to a registry, until the test ends, and returns
// the address: a hostile registry written for a test.
func ServeAttacker(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// StaticPrepull builds prepull as install.sh does and a release ships it,
// CGO_ENABLED=0, so that it runs on any root (a booted proxy, Ansible's
// controller).
func StaticPrepull(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "prepull")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/prepull/prepull/cmd/prepull")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
