package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak/paktest"
)

func TestOneShotPullsThenPresent(t *testing.T) {
	f := newFixture(t, "proj/sub/adapter")

	first := f.prepull(nil, "--config", f.config, "--json", f.pak)
	first.want(t, 0)
	rs := first.results(t)
	if len(rs) != 1 || rs[0].Status != "pulled" || rs[0].Reference != f.ref || rs[0].File != f.pak {
		t.Fatalf("first run results = %+v, want one pulled %s", rs, f.ref)
	}
	if !strings.HasPrefix(rs[0].CredentialSource, "password_file") {
		t.Errorf("credential_source = %q, want the password file", rs[0].CredentialSource)
	}
	if !f.docker.HasImage(t, f.ref) {
		t.Fatalf("engine does not hold %s after the pull", f.ref)
	}

	second := f.prepull(nil, "--config", f.config, f.pak)
	second.want(t, 0)
	if !strings.HasPrefix(second.stdout, "present") || !strings.Contains(second.stdout, f.ref) {
		t.Fatalf("second run stdout = %q, want a present line for %s", second.stdout, f.ref)
	}
}

func TestOneShotWrongPasswordExits4(t *testing.T) {
	f := newFixture(t, "proj/wrongpw")
	f.writePasswordFile("not-the-password")

	r := f.prepull(nil, "--config", f.config, f.pak)
	r.want(t, 4)
	for _, want := range []string{f.reg.Addr, `"alice"`, "password_file"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("output should name %s:\nstdout:\n%s\nstderr:\n%s", want, r.stdout, r.stderr)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "not-the-password") {
		t.Fatal("the wrong password appears in the output")
	}
	if f.docker.HasImage(t, f.ref) {
		t.Fatal("an image was pulled with rejected credentials")
	}
}

func TestOneShotUnknownDigestExits5(t *testing.T) {
	f := newFixture(t, "proj/unknown")
	missing := "sha256:" + strings.Repeat("ab", 32)
	p := paktest.Pak{Kind: "Missing", Version: "1.0.0", Registry: f.reg.Addr, Repository: "/proj/unknown", Digest: missing}.WriteFile(t, t.TempDir())

	r := f.prepull(nil, "--config", f.config, "--json", p)
	r.want(t, 5)
	if rs := r.results(t); len(rs) != 1 || rs[0].Status != "failed" || rs[0].ExitCode != 5 || rs[0].Error == "" {
		t.Fatalf("results = %+v, want one failed with exit_code 5 and an error", rs)
	}
}

func TestOneShotDefaultRegistry(t *testing.T) {
	f := newFixture(t, "proj/defaultreg")
	p := paktest.Pak{Kind: "NoReg", Version: "1.0.0", Repository: "/proj/defaultreg", Digest: f.digest}.WriteFile(t, t.TempDir())

	// Without a default registry the pak names no pullable image.
	f.prepull(nil, "--config", f.config, p).want(t, 3)

	cfg := f.writeConfig("default_registry: " + f.reg.Addr + "\n")
	r := f.prepull(nil, "--config", cfg, "--json", p)
	r.want(t, 0)
	if rs := r.results(t); rs[0].Reference != f.ref || rs[0].Status != "pulled" {
		t.Fatalf("results = %+v, want %s pulled", rs, f.ref)
	}

	var inspected []map[string]any
	out := f.prepull(nil, "inspect", "--json", "--config", cfg, p)
	out.want(t, 0)
	if err := json.Unmarshal([]byte(out.stdout), &inspected); err != nil {
		t.Fatal(err)
	}
	if inspected[0]["registry_source"] != "default" || inspected[0]["registry"] != f.reg.Addr {
		t.Fatalf("inspect = %v, want registry %s from default", inspected[0], f.reg.Addr)
	}
}

func TestOneShotDockerConfigCredentials(t *testing.T) {
	f := newFixture(t, "proj/dockercfg")
	cfg := f.writeConfig("registries: []\n")
	auth := base64.StdEncoding.EncodeToString([]byte("alice:" + f.password))
	body := `{"auths":{"` + f.reg.Addr + `":{"auth":"` + auth + `"}}}`
	path := filepath.Join(f.dockerConfigDir, "config.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dockerConfigDir, ".written-by-test"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)

	r := f.prepull(nil, "--config", cfg, "--json", f.pak)
	r.want(t, 0)
	if rs := r.results(t); !strings.HasPrefix(rs[0].CredentialSource, "docker config") {
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
	f := newFixture(t, "proj/stdin")
	in, err := os.Open(f.pak)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r := f.prepull(in, "--config", f.config, "--json", "-")
	r.want(t, 0)
	if rs := r.results(t); rs[0].File != "-" || rs[0].Status != "pulled" || rs[0].Reference != f.ref {
		t.Fatalf("results = %+v, want - pulled as %s", rs, f.ref)
	}
}

func TestOneShotPasswordFromStdin(t *testing.T) {
	f := newFixture(t, "proj/pwstdin")
	cfg := f.writeConfig("registries: []\n")
	r := f.prepull(strings.NewReader(f.password+"\n"), "--config", cfg, "--registry", f.reg.Addr, "--username", "alice", "--password-stdin", "--json", f.pak)
	r.want(t, 0)
	if rs := r.results(t); !strings.HasPrefix(rs[0].CredentialSource, "command line") {
		t.Fatalf("credential_source = %q, want the command line", rs[0].CredentialSource)
	}
}

func TestOneShotRegistryDownAtStart(t *testing.T) {
	f := newFixture(t, "proj/flaky")
	f.reg.Stop(t)
	f.reg.StartAfter(t, 4*time.Second)

	start := time.Now()
	r := f.prepull(nil, "--config", f.config, "--json", f.pak)
	r.want(t, 0)
	if rs := r.results(t); rs[0].Status != "pulled" {
		t.Fatalf("results = %+v, want pulled", rs)
	}
	if time.Since(start) < 3*time.Second {
		t.Fatalf("finished in %v, before the registry came back", time.Since(start))
	}
	if !strings.Contains(r.stderr, "will retry") {
		t.Errorf("stderr should say it retries:\n%s", r.stderr)
	}
}

func TestOneShotDryRun(t *testing.T) {
	f := newFixture(t, "proj/dryrun")
	r := f.prepull(nil, "--config", f.config, "--dry-run", "--json", f.pak)
	r.want(t, 0)
	if rs := r.results(t); rs[0].Status != "would-pull" {
		t.Fatalf("results = %+v, want would-pull", rs)
	}
	if f.docker.HasImage(t, f.ref) {
		t.Fatal("--dry-run pulled the image")
	}
}

func TestOneShotSeveralPaksWorstCodeWins(t *testing.T) {
	f := newFixture(t, "proj/several")
	bad := filepath.Join(t.TempDir(), "broken.pak")
	if err := os.WriteFile(bad, []byte("not a zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := f.prepull(nil, "--config", f.config, "--json", bad, f.pak)
	r.want(t, 3)
	rs := r.results(t)
	if len(rs) != 2 || rs[0].Status != "failed" || rs[0].ExitCode != 3 || rs[1].Status != "pulled" {
		t.Fatalf("results = %+v, want the broken pak failed (3) and the good one still pulled", rs)
	}
	if !strings.Contains(rs[0].Error, bad) {
		t.Errorf("error %q should name the file", rs[0].Error)
	}
}

func TestOneShotEngineUnreachableExits6(t *testing.T) {
	f := newFixture(t, "proj/noengine")
	cfg := f.writeConfig("")
	r := f.prepull(nil, "--config", cfg, "--docker-host", "unix://"+filepath.Join(t.TempDir(), "none.sock"), "--timeout", "2s", f.pak)
	r.want(t, 6)
}

func TestOneShotUsageErrors(t *testing.T) {
	f := newFixture(t, "proj/usage")
	tests := []struct {
		name string
		args []string
	}{
		{"no pak", []string{"--config", f.config}},
		{"unknown flag", []string{"--bogus", f.pak}},
		{"missing named config", []string{"--config", filepath.Join(t.TempDir(), "nope.yaml"), f.pak}},
		{"missing pak", []string{"--config", f.config, f.pak, filepath.Join(t.TempDir(), "missing.pak")}},
		{"a directory as the pak", []string{"--config", f.config, f.pak, t.TempDir()}},
		{"username without password-stdin", []string{"--config", f.config, "--registry", f.reg.Addr, "--username", "alice", f.pak}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.prepull(nil, tt.args...)
			r.want(t, 2)
			if r.stderr == "" {
				t.Fatal("a usage error must say what is wrong on stderr")
			}
		})
	}
}

func TestOneShotNoLoginConfiguredExits4WithTheFix(t *testing.T) {
	f := newFixture(t, "proj/nologin")
	cfg := f.writeConfig("registries: []\n")
	r := f.prepull(nil, "--config", cfg, "--json", f.pak)
	r.want(t, 4)
	rs := r.results(t)
	if len(rs) != 1 || rs[0].CredentialSource != "anonymous" || !strings.Contains(rs[0].Error, "prepull has no login for "+f.reg.Addr) {
		t.Fatalf("results = %+v, want an anonymous failure that says which login is missing", rs)
	}
	if f.docker.HasImage(t, f.ref) {
		t.Fatal("an image was pulled without a login")
	}
}
