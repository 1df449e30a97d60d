//go:build linux

package remote

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/testenv"
)

// buildOlderPrepull builds prepull as a release older than this one was:
// version v0.9.0, without the one-shot's --name, keep's --until-present and
// the version in its JSON result (the build-time override cli.Without).
func buildOlderPrepull(t *testing.T) string {
	t.Helper()
	testenv.Prepull(t) // the module builds
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "prepull-older")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X github.com/prepull/prepull/internal/cli.Version=v0.9.0 -X github.com/prepull/prepull/internal/cli.Without=name,until-present,version",
		"./cmd/prepull")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the older prepull: %v\n%s", err, out)
	}
	return bin
}

// TestRemoteMixedVersions runs prepull remote over real OpenSSH against
// three proxies: one with this prepull, one with an older one that refuses
// --name (asked again without it; its row says what it lacks and that its
// version differs), and one whose newer prepull exits with a code this one
// does not know (shown as such, not refused). The summary counts them.
func TestRemoteMixedVersions(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/mixed")
	older := buildOlderPrepull(t)
	dir := t.TempDir()
	configs := make([]string, 3)
	for i, name := range []string{"current", "older", "newer"} {
		configs[i] = filepath.Join(dir, name+".yaml")
		data, err := os.ReadFile(f.Config)
		if err != nil {
			t.Fatal(err)
		}
		e2e.WriteTestFile(t, configs[i], string(data))
	}
	// Each proxy runs its own prepull, chosen by its configuration's name.
	newer := `cat >/dev/null; echo '[{"file":"-","reference":"` + f.Ref + `","status":"failed","exit_code":9,"cause":"registry quota exceeded","error":"registry quota exceeded for fleet/mixed","version":"v9.0.0"}]'; exit 9`
	dispatch := filepath.Join(dir, "dispatch.sh")
	e2e.WriteTestFile(t, dispatch, `case "$PROXY_CONFIG" in
*older.yaml) exec `+older+` --config "$PROXY_CONFIG" "$@" ;;
*newer.yaml) `+newer+` ;;
*) exec `+testenv.Prepull(t)+` --config "$PROXY_CONFIG" "$@" ;;
esac
`)
	p := e2e.NewProxyFleet(t, f, configs...)

	r := f.Prepull(nil, p.Args(t, "--remote-command", "sh "+dispatch, "--json", f.Pak)...)
	t.Logf("stdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
	r.Want(t, 9)
	rows := r.RemoteResults(t)
	current, old, nw := rows[p.Dest(0)+" "+f.Pak], rows[p.Dest(1)+" "+f.Pak], rows[p.Dest(2)+" "+f.Pak]
	if current.ExitCode != 0 || current.Version == "" || current.VersionDiffers || len(current.Lacks) != 0 {
		t.Errorf("the proxy with this prepull: %+v", current)
	}
	if old.ExitCode != 0 || old.Version != "" || !old.VersionDiffers || strings.Join(old.Lacks, ",") != "pak names in its logs (--name)" {
		t.Errorf("the proxy with an older prepull: %+v, want it pulled, with no version, differing, lacking --name", old)
	}
	if nw.ExitCode != 9 || nw.Version != "v9.0.0" || !nw.VersionDiffers || nw.Cause != "exit 9 (newer prepull on the proxy): registry quota exceeded" {
		t.Errorf("the proxy with a newer prepull: %+v, want exit 9 shown as a newer prepull's", nw)
	}
	// The older one was asked twice: its refusal, then without --name.
	if !strings.Contains(r.Stderr, p.Dest(1)+": prepull: unknown flag: --name") {
		t.Errorf("stderr does not show the older prepull's refusal:\n%s", r.Stderr)
	}
	if want := "2/3 hosts ok; 1 failed: 1 exit 9 (newer prepull on the proxy)"; !strings.Contains(r.Stderr, want) {
		t.Errorf("stderr lacks the summary %q", want)
	}

	// The table flags the versions that differ.
	r = f.Prepull(nil, p.Args(t, "--remote-command", "sh "+dispatch, f.Pak)...)
	r.Want(t, 9)
	table := r.TableRows(t)
	if len(table) != 3 || table[0][5] == "-" || strings.HasSuffix(table[0][5], "*") || table[1][5] != "unknown*" || table[2][5] != "v9.0.0*" {
		t.Errorf("VERSION column: %q", table)
	}
	if !strings.Contains(r.Stdout, "* not this workstation's prepull, ") || !strings.HasSuffix(r.Stdout, "2/3 hosts ok; 1 failed: 1 exit 9 (newer prepull on the proxy)\n") {
		t.Errorf("the table does not end with the version note and the summary:\n%s", r.Stdout)
	}
}
