//go:build linux

package oneshot

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/pull"
)

func TestOneShotPullsThenPresent(t *testing.T) {
	f := e2e.NewFixture(t, "proj/sub/adapter")

	first := f.Prepull(nil, "--config", f.Config, "--json", f.Pak)
	first.Want(t, 0)
	rs := first.Results(t)
	if len(rs) != 1 || rs[0].Status != "pulled" || rs[0].Reference != f.Ref || rs[0].File != f.Pak {
		t.Fatalf("first run results = %+v, want one pulled %s", rs, f.Ref)
	}
	if !strings.HasPrefix(rs[0].CredentialSource, "password_file") {
		t.Errorf("credential_source = %q, want the password file", rs[0].CredentialSource)
	}
	if !f.Docker.HasImage(t, f.Ref) {
		t.Fatalf("engine does not hold %s after the pull", f.Ref)
	}

	second := f.Prepull(nil, "--config", f.Config, f.Pak)
	second.Want(t, 0)
	if !strings.HasPrefix(second.Stdout, "present") || !strings.Contains(second.Stdout, f.Ref) {
		t.Fatalf("second run stdout = %q, want a present line for %s", second.Stdout, f.Ref)
	}
}

func TestOneShotWrongPasswordExits4(t *testing.T) {
	f := e2e.NewFixture(t, "proj/wrongpw")
	f.WritePasswordFile("not-the-password")

	r := f.Prepull(nil, "--config", f.Config, f.Pak)
	r.Want(t, 4)
	for _, want := range []string{f.Reg.Addr, `"alice"`, "password_file"} {
		if !strings.Contains(r.Stdout+r.Stderr, want) {
			t.Errorf("output should name %s:\nstdout:\n%s\nstderr:\n%s", want, r.Stdout, r.Stderr)
		}
	}
	if strings.Contains(r.Stdout+r.Stderr, "not-the-password") {
		t.Fatal("the wrong password appears in the output")
	}
	if f.Docker.HasImage(t, f.Ref) {
		t.Fatal("an image was pulled with rejected credentials")
	}
}

func TestOneShotUnknownDigestExits5(t *testing.T) {
	f := e2e.NewFixture(t, "proj/unknown")
	missing := "sha256:" + strings.Repeat("ab", 32)
	p := paktest.Pak{Kind: "Missing", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/proj/unknown", Digest: missing}.WriteFile(t, t.TempDir())

	r := f.Prepull(nil, "--config", f.Config, "--json", p)
	r.Want(t, 5)
	if rs := r.Results(t); len(rs) != 1 || rs[0].Status != "failed" || rs[0].ExitCode != 5 || rs[0].Error == "" {
		t.Fatalf("results = %+v, want one failed with exit_code 5 and an error", rs)
	}
}

func TestOneShotDefaultRegistry(t *testing.T) {
	f := e2e.NewFixture(t, "proj/defaultreg")
	p := paktest.Pak{Kind: "NoReg", Version: "1.0.0", Repository: "/proj/defaultreg", Digest: f.Digest}.WriteFile(t, t.TempDir())

	// Without a default registry the pak names no pullable image.
	f.Prepull(nil, "--config", f.Config, p).Want(t, 3)

	cfg := f.WriteConfig("default_registry: " + f.Reg.Addr + "\n")
	r := f.Prepull(nil, "--config", cfg, "--json", p)
	r.Want(t, 0)
	if rs := r.Results(t); rs[0].Reference != f.Ref || rs[0].Status != "pulled" {
		t.Fatalf("results = %+v, want %s pulled", rs, f.Ref)
	}

	var inspected []map[string]any
	out := f.Prepull(nil, "inspect", "--json", "--config", cfg, p)
	out.Want(t, 0)
	if err := json.Unmarshal([]byte(out.Stdout), &inspected); err != nil {
		t.Fatal(err)
	}
	if inspected[0]["registry_source"] != "default" || inspected[0]["registry"] != f.Reg.Addr {
		t.Fatalf("inspect = %v, want registry %s from default", inspected[0], f.Reg.Addr)
	}
}

func TestOneShotDockerConfigCredentials(t *testing.T) {
	f := e2e.NewFixture(t, "proj/dockercfg")
	cfg := f.WriteConfig("registries: []\n")
	auth := base64.StdEncoding.EncodeToString([]byte("alice:" + f.Password))
	body := `{"auths":{"` + f.Reg.Addr + `":{"auth":"` + auth + `"}}}`
	path := filepath.Join(f.DockerConfigDir, "config.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.DockerConfigDir, ".written-by-test"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)

	r := f.Prepull(nil, "--config", cfg, "--json", f.Pak)
	r.Want(t, 0)
	if rs := r.Results(t); !strings.HasPrefix(rs[0].CredentialSource, "docker config") {
		t.Fatalf("credential_source = %q, want docker config", rs[0].CredentialSource)
	}
	after, err := os.ReadFile(path)
	if err != nil || string(after) != body {
		t.Fatalf("config.json changed: %q, %v", after, err)
	}
	if st2, _ := os.Stat(path); !st2.ModTime().Equal(st.ModTime()) {
		t.Fatal("config.json was rewritten")
	}
}

func TestOneShotPakOnStdin(t *testing.T) {
	f := e2e.NewFixture(t, "proj/stdin")
	in, err := os.Open(f.Pak)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r := f.Prepull(in, "--config", f.Config, "--json", "-")
	r.Want(t, 0)
	if rs := r.Results(t); rs[0].File != "-" || rs[0].Status != "pulled" || rs[0].Reference != f.Ref {
		t.Fatalf("results = %+v, want - pulled as %s", rs, f.Ref)
	}
}

func TestOneShotPasswordFromStdin(t *testing.T) {
	f := e2e.NewFixture(t, "proj/pwstdin")
	cfg := f.WriteConfig("registries: []\n")
	r := f.Prepull(strings.NewReader(f.Password+"\n"), "--config", cfg, "--registry", f.Reg.Addr, "--username", "alice", "--password-stdin", "--json", f.Pak)
	r.Want(t, 0)
	if rs := r.Results(t); !strings.HasPrefix(rs[0].CredentialSource, "command line") {
		t.Fatalf("credential_source = %q, want the command line", rs[0].CredentialSource)
	}
}

func TestOneShotRegistryDownAtStart(t *testing.T) {
	f := e2e.NewFixture(t, "proj/flaky")
	f.Reg.Stop(t)
	f.Reg.StartAfter(t, 4*time.Second)

	start := time.Now()
	r := f.Prepull(nil, "--config", f.Config, "--json", f.Pak)
	r.Want(t, 0)
	if rs := r.Results(t); rs[0].Status != "pulled" {
		t.Fatalf("results = %+v, want pulled", rs)
	}
	if time.Since(start) < 3*time.Second {
		t.Fatalf("finished in %v, before the registry came back", time.Since(start))
	}
	if !strings.Contains(r.Stderr, "will retry") {
		t.Errorf("stderr should say it retries:\n%s", r.Stderr)
	}
}

func TestOneShotDryRun(t *testing.T) {
	f := e2e.NewFixture(t, "proj/dryrun")
	r := f.Prepull(nil, "--config", f.Config, "--dry-run", "--json", f.Pak)
	r.Want(t, 0)
	if rs := r.Results(t); rs[0].Status != "would-pull" {
		t.Fatalf("results = %+v, want would-pull", rs)
	}
	if f.Docker.HasImage(t, f.Ref) {
		t.Fatal("--dry-run pulled the image")
	}
}

// TestOneShotDryRunRegistryUnreachableExits8: --dry-run asks the registry
// too, so with the registry down it gives up after
// pull.DefaultRegistryAttempts attempts in a row (counted, not timed) and
// exits 8, naming the host and the address tried.
func TestOneShotDryRunRegistryUnreachableExits8(t *testing.T) {
	f := e2e.NewFixture(t, "proj/dryrun-down")
	f.Reg.Stop(t)
	r := f.Prepull(nil, "--config", f.Config, "--dry-run", "--json", f.Pak)
	r.Want(t, 8)
	res := e2e.OneResult(t, r)
	want := fmt.Sprintf("registry %s unreachable: Docker Engine tried %s: connect: connection refused (%d attempts)", f.Reg.Addr, f.Reg.Addr, pull.DefaultRegistryAttempts)
	if res.Status != "failed" || !strings.Contains(res.Error, want) {
		t.Errorf("result %+v\nwant failed with %q", res, want)
	}
	if n := strings.Count(r.Stderr, "will retry"); n != pull.DefaultRegistryAttempts-1 {
		t.Errorf("%d retries logged, want %d:\n%s", n, pull.DefaultRegistryAttempts-1, r.Stderr)
	}
	if f.Docker.HasImage(t, f.Ref) {
		t.Fatal("--dry-run pulled the image")
	}
}

func TestOneShotSeveralPaksWorstCodeWins(t *testing.T) {
	f := e2e.NewFixture(t, "proj/several")
	bad := filepath.Join(t.TempDir(), "broken.pak")
	if err := os.WriteFile(bad, []byte("not a zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := f.Prepull(nil, "--config", f.Config, "--json", bad, f.Pak)
	r.Want(t, 3)
	rs := r.Results(t)
	if len(rs) != 2 || rs[0].Status != "failed" || rs[0].ExitCode != 3 || rs[1].Status != "pulled" {
		t.Fatalf("results = %+v, want the broken pak failed (3) and the good one still pulled", rs)
	}
	if !strings.Contains(rs[0].Error, bad) {
		t.Errorf("error %q should name the file", rs[0].Error)
	}
}

func TestOneShotEngineUnreachableExits6(t *testing.T) {
	f := e2e.NewFixture(t, "proj/noengine")
	cfg := f.WriteConfig("")
	r := f.Prepull(nil, "--config", cfg, "--docker-host", "unix://"+filepath.Join(t.TempDir(), "none.sock"), "--timeout", "2s", f.Pak)
	r.Want(t, 6)
}

func TestOneShotUsageErrors(t *testing.T) {
	f := e2e.NewFixture(t, "proj/usage")
	tests := []struct {
		name string
		args []string
	}{
		{"no pak", []string{"--config", f.Config}},
		{"unknown flag", []string{"--bogus", f.Pak}},
		{"missing named config", []string{"--config", filepath.Join(t.TempDir(), "nope.yaml"), f.Pak}},
		{"missing pak", []string{"--config", f.Config, f.Pak, filepath.Join(t.TempDir(), "missing.pak")}},
		{"a directory as the pak", []string{"--config", f.Config, f.Pak, t.TempDir()}},
		{"username without password-stdin", []string{"--config", f.Config, "--registry", f.Reg.Addr, "--username", "alice", f.Pak}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.Prepull(nil, tt.args...)
			r.Want(t, 2)
			if r.Stderr == "" {
				t.Fatal("a usage error must say what is wrong on stderr")
			}
		})
	}
}

func TestOneShotNoLoginConfiguredExits4WithTheFix(t *testing.T) {
	f := e2e.NewFixture(t, "proj/nologin")
	cfg := f.WriteConfig("registries: []\n")
	r := f.Prepull(nil, "--config", cfg, "--json", f.Pak)
	r.Want(t, 4)
	rs := r.Results(t)
	if len(rs) != 1 || rs[0].CredentialSource != "anonymous" || !strings.Contains(rs[0].Error, "prepull has no login for "+f.Reg.Addr) {
		t.Fatalf("results = %+v, want an anonymous failure that says which login is missing", rs)
	}
	if f.Docker.HasImage(t, f.Ref) {
		t.Fatal("an image was pulled without a login")
	}
}
