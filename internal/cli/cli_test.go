package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/remote"
)

// runCLI runs the command line in-process and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, ExitCode) {
	t.Helper()
	var out, errOut bytes.Buffer
	g := &globals{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, stderrFile: os.Stderr}
	code := run(context.Background(), g, args)
	return out.String(), errOut.String(), code
}

func TestCodeFor(t *testing.T) {
	tests := []struct {
		err  error
		want ExitCode
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitFailure},
		{fmt.Errorf("x: %w", config.ErrInvalid), ExitUsage},
		{fmt.Errorf("x: %w", credentials.ErrUnavailable), ExitUsage},
		{&pak.Error{File: "a.pak", Err: pak.ErrInvalid}, ExitBadPak},
		{fmt.Errorf("login: %w", engine.ErrUnauthorized), ExitAuth},
		{fmt.Errorf("pull: %w", engine.ErrNotFound), ExitNotFound},
		{fmt.Errorf("ping: %w", engine.ErrUnreachable), ExitEngine},
		{&pull.PlatformError{Reference: "r/x@sha256:0", Have: []engine.Platform{{OS: "linux", Architecture: "arm64"}}, Need: engine.Platform{OS: "linux", Architecture: "amd64"}}, ExitPlatform},
		{usageErrorf("bad"), ExitUsage},
	}
	for _, tt := range tests {
		if got := CodeFor(tt.err); got != tt.want {
			t.Errorf("CodeFor(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	good := paktest.Pak{Kind: "MyAdapter", Registry: "harbor.example.com:8443", Repository: "/proj/sub/adapter"}.WriteFile(t, dir)
	noReg := paktest.Pak{Kind: "NoReg"}.WriteFile(t, dir)
	classic := paktest.Pak{Kind: "Classic", Classic: true}.WriteFile(t, dir)
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("default_registry: reg.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pakBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		stdin     string
		args      []string
		code      ExitCode
		reference string // of the first result
		source    string
		stderr    string
	}{
		{name: "pak", args: []string{"inspect", "--json", "--config", cfg, good}, reference: "harbor.example.com:8443/proj/sub/adapter@" + paktest.Digest, source: "pak"},
		{name: "default registry", args: []string{"inspect", "--json", "--config", cfg, noReg}, reference: "reg.example/my-project/noreg@" + paktest.Digest, source: "default"},
		{name: "flag beats config", args: []string{"inspect", "--json", "--config", cfg, "--default-registry", "other.example:5000", noReg}, reference: "other.example:5000/my-project/noreg@" + paktest.Digest, source: "default"},
		{name: "no default registry", args: []string{"inspect", "--json", "--config", empty, noReg}, code: ExitBadPak, stderr: "no REGISTRY"},
		{name: "missing named config", args: []string{"inspect", "--config", filepath.Join(dir, "none.yaml"), noReg}, code: ExitUsage, stderr: "none.yaml"},
		{name: "standard input", stdin: string(pakBytes), args: []string{"inspect", "--json", "--config", cfg, "-"}, reference: "harbor.example.com:8443/proj/sub/adapter@" + paktest.Digest, source: "pak"},
		{name: "classic pak", args: []string{"inspect", "--json", "--config", cfg, classic}, code: ExitBadPak, stderr: "not a containerized"},
		{name: "missing file", args: []string{"inspect", "--config", cfg, filepath.Join(dir, "nope.pak")}, code: ExitUsage, stderr: "nope.pak: no such file"},
		{name: "stdin twice", args: []string{"inspect", "-", "-"}, code: ExitUsage, stderr: "only once"},
		{name: "bad default registry flag", args: []string{"inspect", "--config", cfg, "--default-registry", "https://x", good}, code: ExitUsage, stderr: "--default-registry"},
		{name: "no pak", args: []string{"inspect"}, code: ExitUsage, stderr: "no PAK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			if tt.stderr != "" && !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr %q should contain %q", errOut, tt.stderr)
			}
			if tt.reference == "" {
				return
			}
			var rs []map[string]any
			if err := json.Unmarshal([]byte(out), &rs); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out)
			}
			for _, key := range []string{"file", "adapter_kind", "registry", "repository", "digest", "reference", "registry_source"} {
				if _, ok := rs[0][key]; !ok {
					t.Errorf("inspect --json lacks %q: %v", key, rs[0])
				}
			}
			if rs[0]["reference"] != tt.reference || rs[0]["registry_source"] != tt.source {
				t.Errorf("got reference %v from %v, want %s from %s", rs[0]["reference"], rs[0]["registry_source"], tt.reference, tt.source)
			}
			if strings.HasPrefix(rs[0]["repository"].(string), "/") {
				t.Errorf("repository %v keeps its leading slash", rs[0]["repository"])
			}
		})
	}
}

func TestHelpDocumentsExitCodes(t *testing.T) {
	out, _, code := runCLI(t, "", "--help")
	if code != ExitOK {
		t.Fatalf("--help exit %d", code)
	}
	for c := ExitOK; c <= exitMax; c++ {
		if !strings.Contains(out, fmt.Sprintf("  %d  ", c)) {
			t.Errorf("--help does not document exit code %d", c)
		}
	}
}

func TestRowForKeepsRemoteExitCodes(t *testing.T) {
	ok := `[{"file":"-","reference":"` + testRef + `","status":"present","exit_code":0}]`
	tests := []struct {
		name string
		out  remote.Output
		want ExitCode
		text string
	}{
		{"json result", remote.Output{Stdout: []byte(ok)}, ExitOK, ""},
		{"json failure", remote.Output{Stdout: []byte(`[{"file":"-","reference":"` + testRef + `","status":"failed","exit_code":4,"error":"denied"}]`), ExitStatus: 4}, ExitAuth, "denied"},
		{"success but bad status", remote.Output{Stdout: []byte(ok), ExitStatus: 1}, ExitFailure, "exited with status 1"},
		{"config error on the proxy", remote.Output{ExitStatus: 2, LastStderr: "prepull: /etc/prepull/config.yaml: invalid configuration"}, ExitUsage, "config.yaml"},
		{"json platform failure", remote.Output{Stdout: []byte(`[{"file":"-","reference":"` + testRef + `","status":"failed","exit_code":7,"error":"the image cannot run on this proxy"}]`), ExitStatus: 7}, ExitPlatform, "cannot run on this proxy"},
		{"platform failure without a result", remote.Output{ExitStatus: 7, LastStderr: "prepull: the image cannot run on this proxy"}, ExitPlatform, "cannot run"},
		{"a code prepull does not document", remote.Output{ExitStatus: 9}, ExitFailure, "exited with status 9"},
		{"a json code prepull does not document", remote.Output{Stdout: []byte(`[{"file":"-","reference":"` + testRef + `","status":"failed","exit_code":8,"error":"x"}]`), ExitStatus: 8}, 8, "x"},
		{"not installed", remote.Output{ExitStatus: 127}, ExitFailure, "not found"},
		{"unreachable", remote.Output{Err: errors.New("connection refused")}, ExitFailure, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := (&remoteFlags{}).rowFor(tt.out, testImage)
			if r.ExitCode != tt.want || !strings.Contains(r.Error, tt.text) {
				t.Fatalf("rowFor = %+v, want exit %d and an error with %q", r, tt.want, tt.text)
			}
		})
	}
}
