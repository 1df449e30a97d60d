package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/golden"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/pull"
)

// failureKinds are the one-shot's failures, each as the engine reports it
// (the texts Docker Engine 28.5 gave), for the golden files of its lines.
var failureKinds = []struct {
	name   string
	login  bool // the configuration has a login for the registry
	engine func(e *fakeEngine)
	open   error
	pak    string // a pak's content instead of a good pak
}{
	{name: "credentials rejected", login: true, engine: func(e *fakeEngine) {
		e.loginErr = fmt.Errorf("login to https://%s: %w: Error response from daemon: Get \"https://%s/v2/\": unauthorized: 401 Unauthorized",
			paktest.Registry, engine.ErrUnauthorized, paktest.Registry)
	}},
	{name: "login required", engine: func(e *fakeEngine) {
		e.pullErr = fmt.Errorf("pull %s: %w: Error response from daemon: Head \"https://%s/v2/x/manifests/sha256:0\": no basic auth credentials",
			"REF", engine.ErrUnauthorized, paktest.Registry)
	}},
	{name: "manifest unknown", login: true, engine: func(e *fakeEngine) {
		e.pullErr = fmt.Errorf("pull REF: %w: Error response from daemon: manifest for REF not found: manifest unknown: manifest unknown", engine.ErrNotFound)
	}},
	{name: "no linux/amd64 variant", login: true, engine: func(e *fakeEngine) {
		e.platforms = []engine.Platform{{OS: "linux", Architecture: "arm64"}}
	}},
	{name: "certificate not trusted", login: true, engine: func(e *fakeEngine) {
		e.loginErr = fmt.Errorf("login to https://%s: %w: Error response from daemon: Get \"https://%s/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority",
			paktest.Registry, engine.ErrCertificate, paktest.Registry)
	}},
	{name: "no space", login: true, engine: func(e *fakeEngine) {
		e.pullErr = fmt.Errorf("pull REF: %w: write /var/lib/docker/tmp/x: no space left on device", engine.ErrNoSpace)
	}},
	{name: "docker engine unreachable", open: errors.New("unable to parse docker host `tcp://[::1`")},
	{name: "not a pak", pak: "not a zip"},
}

// tempDirs matches the test's temporary folders, which golden files name $TMP.
var tempDirs = regexp.MustCompile(`/tmp/Test[^/]*/[0-9]+/`)

// TestOneShotFailureLinesGolden checks what the one-shot says of each kind
// of failure, against golden files: on a terminal one result line with the
// cause first and nothing logged; with --verbose the whole chain on the
// result line and in the log.
func TestOneShotFailureLinesGolden(t *testing.T) {
	t.Setenv("PREPULL_TEST_PW", "pw")
	var brief, verbose strings.Builder
	for _, k := range failureKinds {
		dir := t.TempDir()
		extra := ""
		if k.login {
			extra = fmt.Sprintf("registries:\n  - host: %s\n    username: robot\n    password_env: PREPULL_TEST_PW\n", paktest.Registry)
		}
		cfg := isolatedConfig(t, dir, extra)
		file := paktest.Pak{Kind: "MyAdapter", Registry: paktest.Registry, Digest: paktest.DigestOf("failures")}.WriteFile(t, dir)
		if k.pak != "" {
			writeConfigFile(t, file, k.pak)
		}
		e := newFakeEngine()
		if k.engine != nil {
			k.engine(e)
		}
		newEngine := func(string) (dockerEngine, error) { return e, k.open }
		args := []string{"--config", cfg, "--quiet", file}

		g := &globals{newEngine: newEngine, terminal: true}
		out, stderr, code := runWith(context.Background(), t, g, args...)
		if code == ExitOK || strings.Count(out, "\n") != 1 {
			t.Errorf("%s: exit %d, want one failed line:\n%s", k.name, code, out)
		}
		if stderr != "" {
			t.Errorf("%s: on a terminal the result line says the failure alone, but stderr has:\n%s", k.name, stderr)
		}
		fmt.Fprintf(&brief, "# %s (exit %d)\n%s", k.name, code, tempDirs.ReplaceAllString(strings.ReplaceAll(out, dir+"/", ""), "$$TMP/"))

		g = &globals{newEngine: newEngine, terminal: true}
		out, stderr, _ = runWith(context.Background(), t, g, append([]string{"--verbose"}, args...)...)
		if k.open == nil && !strings.Contains(stderr, "ERROR") {
			t.Errorf("%s: --verbose logs no error line:\n%s", k.name, stderr)
		}
		fmt.Fprintf(&verbose, "# %s\n%s", k.name, tempDirs.ReplaceAllString(strings.ReplaceAll(out, dir+"/", ""), "$$TMP/"))
	}
	golden.Check(t, "oneshot-failures.golden", brief.String())
	golden.Check(t, "oneshot-failures-verbose.golden", verbose.String())
}

// TestCause checks the causes of errors built as the engine and the puller
// build them: the cause comes first, and nothing in it is said twice.
func TestCause(t *testing.T) {
	login := &pull.LoginError{Registry: "H", Username: "robot", Source: "config",
		Err: fmt.Errorf("login to H: %w: Error response from daemon: Get \"https://H/v2/\": unauthorized: 401 Unauthorized", engine.ErrUnauthorized)}
	tests := []struct {
		err  error
		want string
	}{
		{login, `credentials rejected: user "robot" at H (credentials from config)`},
		{fmt.Errorf("%w (asked again, config gave the same password)", login), `credentials rejected: user "robot" at H (credentials from config)`},
		{fmt.Errorf("pull R: %w: manifest for R not found: manifest unknown: manifest unknown", engine.ErrNotFound), "manifest unknown: the registry has no such digest"},
		{fmt.Errorf("ping: %w: Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?", engine.ErrUnreachable),
			"docker engine unreachable: Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?"},
		{fmt.Errorf("%w: pull R: %w: no progress for 30s", pull.ErrTimedOut, pull.ErrStalled), "pull stalled: no progress for 30s"},
		{errors.New("something: else: entirely"), "else: entirely"},
	}
	for _, tt := range tests {
		if got := pull.Cause(tt.err); got != tt.want {
			t.Errorf("Cause(%q)\n = %q\nwant %q", tt.err, got, tt.want)
		}
	}
}
