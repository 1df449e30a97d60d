package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak/paktest"
)

// fakeEngine is a dockerEngine in memory, for tests of the commands'
// logic; the end-to-end tests use a real Docker Engine. A pulled image is
// present, on the linux/amd64 platform.
type fakeEngine struct {
	mu       sync.Mutex
	present  map[string]bool
	pingErr  error
	loginErr error
	pullErr  error // every pull fails with it
	// platforms, when set, are the registry's platforms of every image.
	platforms []engine.Platform
	pulls     int
	closed    bool
	names     map[string]string // local name: the reference it was given
}

func newFakeEngine() *fakeEngine { return &fakeEngine{present: map[string]bool{}} }

var amd64 = engine.Platform{OS: "linux", Architecture: "amd64"}

func (f *fakeEngine) Ping(context.Context) (string, error) { return "1.41", f.pingErr }
func (f *fakeEngine) Login(context.Context, engine.Auth) error {
	return f.loginErr
}

func (f *fakeEngine) Pull(_ context.Context, ref string, _ *engine.Auth, progress func(engine.Progress)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls++
	if f.pullErr != nil {
		return f.pullErr
	}
	if progress != nil {
		progress(engine.Progress{Layer: "a", Status: "Downloading", Current: 1 << 20, Total: 1 << 20})
	}
	f.present[ref] = true
	return nil
}

func (f *fakeEngine) RepoDigests(_ context.Context, ref string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.present[ref] {
		return nil, fmt.Errorf("inspect %s: %w", ref, engine.ErrNotPresent)
	}
	return []string{ref}, nil
}

func (f *fakeEngine) Platform(context.Context) (engine.Platform, error) { return amd64, nil }

func (f *fakeEngine) Distribution(_ context.Context, ref string, _ *engine.Auth) (engine.Distribution, error) {
	_, dgst, _ := strings.Cut(ref, "@")
	platforms := []engine.Platform{amd64}
	if f.platforms != nil {
		platforms = f.platforms
	}
	return engine.Distribution{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: dgst, Platforms: platforms}, nil
}

func (f *fakeEngine) ImagePlatform(ctx context.Context, ref string) (engine.Platform, error) {
	if _, err := f.RepoDigests(ctx, ref); err != nil {
		return engine.Platform{}, err
	}
	return amd64, nil
}

func (f *fakeEngine) Name(_ context.Context, ref, name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.names == nil {
		f.names = map[string]string{}
	}
	if f.names[name] != "" {
		return false, nil
	}
	f.names[name] = ref
	return true, nil
}

func (f *fakeEngine) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeEngine) pullCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pulls
}

// runWith runs the command line in-process with g's factories, and returns
// stdout, stderr and the exit code.
func runWith(ctx context.Context, t *testing.T, g *globals, args ...string) (string, string, ExitCode) {
	t.Helper()
	var out, errOut strings.Builder
	logs, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	g.stdin, g.stdout, g.stderr, g.stderrFile = strings.NewReader(""), &out, &errOut, logs
	code := run(ctx, g, args)
	logged, err := os.ReadFile(logs.Name())
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String() + string(logged), code
}

// isolatedConfig writes a configuration that reads no login from this
// machine's Docker config and installs CAs nowhere that matters.
func isolatedConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	cfg := filepath.Join(dir, "config.yaml")
	writeConfigFile(t, cfg, fmt.Sprintf("docker_config: %s\ncerts_dir: %s\n%s", t.TempDir(), t.TempDir(), extra))
	return cfg
}

func TestOneShotInProcess(t *testing.T) {
	dir := t.TempDir()
	cfg := isolatedConfig(t, dir, "")
	p := paktest.Pak{Kind: "OneShot", Registry: paktest.Registry}
	file := p.WriteFile(t, dir)
	ref := p.Reference("")

	eng := newFakeEngine()
	g := &globals{newEngine: func(host string) (dockerEngine, error) {
		if host != "unix:///fake.sock" {
			t.Errorf("engine host %q, want the --docker-host", host)
		}
		return eng, nil
	}}
	oneShot := func(args ...string) (pakResult, string, ExitCode) {
		t.Helper()
		out, stderr, code := runWith(context.Background(), t, g, append([]string{"--config", cfg, "--docker-host", "unix:///fake.sock", "--json"}, args...)...)
		var rs []pakResult
		if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 {
			t.Fatalf("%v: not one JSON result (%v):\n%s\n%s", args, err, out, stderr)
		}
		return rs[0], stderr, code
	}

	r, _, code := oneShot("--dry-run", file)
	if r.Status != "would-pull" || code != ExitOK || eng.pullCount() != 0 {
		t.Fatalf("dry run: %+v, exit %d, %d pulls", r, code, eng.pullCount())
	}
	r, stderr, code := oneShot(file)
	if r.Status != "pulled" || r.Reference != ref || r.CredentialSource != "anonymous" || code != ExitOK || !eng.closed {
		t.Fatalf("first run: %+v, exit %d, engine closed %v", r, code, eng.closed)
	}
	if !strings.Contains(stderr, "1.0 MiB / 1.0 MiB") || !strings.Contains(stderr, ref) {
		t.Errorf("the last progress line was not logged:\n%s", stderr)
	}
	if r, _, code = oneShot(file); r.Status != "present" || code != ExitOK || eng.pullCount() != 1 {
		t.Fatalf("second run: %+v, exit %d, %d pulls", r, code, eng.pullCount())
	}

	// The lines without --json, the same image named twice pulled once.
	eng.present = map[string]bool{}
	out, _, code := runWith(context.Background(), t, g, "--config", cfg, "--docker-host", "unix:///fake.sock", "--quiet", file, file)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != ExitOK || len(lines) != 2 || !strings.HasPrefix(lines[0], "pulled ") || eng.pullCount() != 2 {
		t.Fatalf("two paks, one image: exit %d, %d pulls:\n%s", code, eng.pullCount(), out)
	}

	tests := []struct {
		name   string
		engine func(*fakeEngine)
		open   error
		code   ExitCode
	}{
		{name: "engine cannot be opened", open: errors.New("bad host"), code: ExitEngine},
		{name: "rejected login", engine: func(e *fakeEngine) {
			e.loginErr = fmt.Errorf("%w: unauthorized", engine.ErrUnauthorized)
		}, code: ExitAuth},
		{name: "digest not found", engine: func(e *fakeEngine) {
			e.pullErr = fmt.Errorf("%w: manifest unknown", engine.ErrNotFound)
		}, code: ExitNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEngine()
			if tt.engine != nil {
				tt.engine(e)
			}
			g := &globals{newEngine: func(string) (dockerEngine, error) { return e, tt.open }}
			cfgAuth := isolatedConfig(t, t.TempDir(), fmt.Sprintf("registries:\n  - host: %s\n    username: u\n    password_env: PREPULL_TEST_PW\n", paktest.Registry))
			t.Setenv("PREPULL_TEST_PW", "pw")
			out, stderr, code := runWith(context.Background(), t, g, "--config", cfgAuth, "--json", "--quiet", file)
			var rs []pakResult
			if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 || rs[0].Status != "failed" || rs[0].ExitCode != tt.code || code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s\n%s", code, tt.code, out, stderr)
			}
		})
	}
}

// TestFlagLoginUsage: --registry, --username and --password-stdin go
// together, for one registry, and never with a pak on standard input.
func TestFlagLoginUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := isolatedConfig(t, dir, "")
	file := paktest.Pak{Kind: "Flagged", Registry: paktest.Registry}.WriteFile(t, dir)
	tests := []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"--registry", "r.example.com", file}, "", "give --username and --password-stdin too"},
		{[]string{"--password-stdin", file}, "pw\n", "--password-stdin needs --username"},
		{[]string{"--username", "u", file}, "", "--username needs --password-stdin"},
		{[]string{"--username", "u", "--password-stdin", file}, "pw\n", "--username needs --registry HOST"},
		{[]string{"--username", "u", "--password-stdin", "--registry", "bad host", file}, "pw\n", "--registry"},
		{[]string{"--username", "u", "--password-stdin", "--registry", "r.example.com", "-"}, "pw\n", "cannot be combined"},
		{[]string{"--username", "u", "--password-stdin", "--registry", "r.example.com", file}, "\n", "standard input held no password"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:len(tt.args)-1], " "), func(t *testing.T) {
			var out, errOut strings.Builder
			g := &globals{stdin: strings.NewReader(tt.stdin), stdout: &out, stderr: &errOut, stderrFile: os.Stderr,
				newEngine: func(string) (dockerEngine, error) { return nil, errors.New("no engine in this test") }}
			code := run(context.Background(), g, append([]string{"--config", cfg}, tt.args...))
			if code != ExitUsage || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, ExitUsage, tt.want, errOut.String())
			}
		})
	}
}

func writeConfigFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
