//go:build unix

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/remote"
	"github.com/prepull/prepull/internal/remote/sshtest"
)

// toServer is a Connector that leads every host to one in-process SSH
// server, through the Dialer prepull remote made from its flags, except for
// the hosts named in down, which are unreachable.
type toServer struct {
	d    *remote.Dialer
	addr string
	down map[string]bool
}

func (c toServer) Connect(ctx context.Context, route []remote.Hop) (*remote.Conn, error) {
	last := route[len(route)-1]
	if c.down[last.Name] {
		return nil, errors.New("connect to " + last.Addr + ": connection refused")
	}
	return c.d.Connect(ctx, []remote.Hop{{Name: last.Name, Addr: c.addr, User: last.User}})
}

// fakeProxyPrepull writes a shell script that stands for prepull on a proxy:
// it reads the pak on standard input and prints the result it is given, as
// the one-shot and keep do with --json, and exits with its code.
func fakeProxyPrepull(t *testing.T, pullResult, keepResult string, code int) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "prepull")
	body := fmt.Sprintf(`#!/bin/sh
cat >/dev/null
echo "fake prepull $*" >&2
if [ "$1" = keep ]; then printf '%%s\n' '%s'; exit 0; fi
printf '%%s\n' '%s'
exit %d
`, keepResult, pullResult, code)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script
}

func TestRemoteInProcess(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	srv := sshtest.Start(t)
	dir := t.TempDir()
	p := paktest.Pak{Kind: "Remote", Registry: paktest.Registry}
	file := p.WriteFile(t, dir)
	ref := p.Reference("")
	sshConfig := filepath.Join(dir, "ssh_config")
	writeConfigFile(t, sshConfig, "")

	g := &globals{newConnector: func(d *remote.Dialer) remote.Connector {
		return toServer{d: d, addr: srv.Addr, down: map[string]bool{"down": true}}
	}}
	remoteRun := func(script string, args ...string) ([]remoteRow, string, ExitCode) {
		t.Helper()
		base := []string{"remote", "--ssh-config", sshConfig, "--known-hosts", srv.KnownHosts, "-i", srv.Identity, "--remote-command", "sh " + script}
		out, stderr, code := runWith(context.Background(), t, g, append(base, args...)...)
		if !strings.Contains(strings.Join(args, " "), "--json") {
			return nil, out + stderr, code
		}
		var rows []remoteRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("remote %v: not a JSON array (%v):\n%s\n%s", args, err, out, stderr)
		}
		return rows, stderr, code
	}

	pulled := fmt.Sprintf(`[{"file":"-","reference":"%s","status":"pulled","duration_ms":5,"exit_code":0}]`, ref)
	taken := `[{"file":"-","name":"Remote_1.0.0.pak","path":"/var/lib/prepull/inbox/Remote_1.0.0.pak","status":"taken","pak_status":"present","agent":"running","exit_code":0}]`
	script := fakeProxyPrepull(t, pulled, taken, 0)

	rows, stderr, code := remoteRun(script, "--json", "--keep", "-H", "root@proxy-a", "-H", "down", "--timeout", "1m", file)
	if code != ExitFailure || len(rows) != 2 {
		t.Fatalf("exit %d, rows %+v\n%s", code, rows, stderr)
	}
	a, down := rows[0], rows[1]
	if a.Host != "root@proxy-a" || a.Status != "pulled" || a.Reference != ref || a.ExitCode != ExitOK || a.Keep == nil || a.Keep.Status != keepTaken || a.Keep.PakStatus != "present" {
		t.Errorf("row of the proxy: %+v keep %+v", a, a.Keep)
	}
	if down.Host != "down" || down.Status != "failed" || down.ExitCode != ExitFailure || !strings.Contains(down.Error, "connection refused") || down.Keep != nil {
		t.Errorf("row of the host that is down: %+v", down)
	}
	// The one-shot's arguments, then keep's, as the proxy got them; its
	// stderr prefixed by the host.
	for _, want := range []string{"root@proxy-a: fake prepull --json --name Remote_1.0.0.pak --timeout 1m0s -", "root@proxy-a: fake prepull keep --json --until-present --name Remote_1.0.0.pak --wait 1m0s -", "down: connect to"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// Without --timeout both sides use the one-shot's default: the proxy
	// is told it, and keep waits as long.
	_, stderr, code = remoteRun(script, "--json", "--keep", "-H", "root@proxy-e", file)
	for _, want := range []string{"root@proxy-e: fake prepull --json --name Remote_1.0.0.pak --timeout 10m0s -", "root@proxy-e: fake prepull keep --json --until-present --name Remote_1.0.0.pak --wait 10m0s -"} {
		if code != ExitOK || !strings.Contains(stderr, want) {
			t.Errorf("no --timeout: exit %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}

	// The table; a proxy whose result is not for the pak sent.
	lying := fakeProxyPrepull(t, `[{"file":"-","reference":"evil.example.com/x@sha256:`+strings.Repeat("0", 64)+`","status":"pulled","duration_ms":1,"exit_code":0}]`, "", 0)
	_, out, code := remoteRun(lying, "--wide", "-H", "proxy-b", file)
	if code != ExitFailure || !strings.Contains(out, "HOST") || !strings.Contains(out, "proxy-b") || !strings.Contains(out, "the proxy's result is invalid") {
		t.Errorf("a proxy's result for another image: exit %d\n%s", code, out)
	}

	// A proxy's prepull that fails keeps its own exit code.
	rejected := fakeProxyPrepull(t, fmt.Sprintf(`[{"file":"-","reference":"%s","status":"failed","duration_ms":1,"exit_code":4,"error":"login rejected"}]`, ref), "", 4)
	rows, _, code = remoteRun(rejected, "--json", "-H", "proxy-c", file)
	if code != ExitAuth || len(rows) != 1 || rows[0].ExitCode != ExitAuth || rows[0].Error != "login rejected" {
		t.Errorf("rejected login on the proxy: exit %d, rows %+v", code, rows)
	}

	// Usage errors come before any connection.
	for _, args := range [][]string{
		{"-H", "proxy", "-"},
		{file},
		{"-H", "proxy", "--parallel", "0", file},
		{"-H", "proxy", "--keep", "--dry-run", file},
		{"-H", "bad host", file},
		{"--hosts-file", filepath.Join(dir, "missing"), file},
	} {
		if _, out, code := remoteRun(script, args...); code != ExitUsage {
			t.Errorf("remote %v: exit %d, want %d\n%s", args, code, ExitUsage, out)
		}
	}
	hostsFile := filepath.Join(dir, "hosts")
	writeConfigFile(t, hostsFile, "# the fleet\nproxy-d\nproxy-d\n")
	if rows, _, code := remoteRun(script, "--json", "--hosts-file", hostsFile, file); code != ExitOK || len(rows) != 1 || rows[0].Host != "proxy-d" {
		t.Errorf("--hosts-file, a host named twice: exit %d, rows %+v", code, rows)
	}
	// A bad pak exits 3 before any connection.
	bad := filepath.Join(dir, "bad.pak")
	writeConfigFile(t, bad, "not a pak")
	if _, out, code := remoteRun(script, "-H", "proxy", bad); code != ExitBadPak {
		t.Errorf("a bad pak: exit %d, want %d\n%s", code, ExitBadPak, out)
	}
}

// TestRemoteMixedVersionsInProcess checks prepull remote against proxies
// whose prepull is older (refuses --name and keep --until-present: asked
// again without them, and the row says what the proxy lacks) or newer (an
// exit code this prepull does not know: shown, not refused).
func TestRemoteMixedVersionsInProcess(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	srv := sshtest.Start(t)
	dir := t.TempDir()
	p := paktest.Pak{Kind: "Mixed", Registry: paktest.Registry}
	file := p.WriteFile(t, dir)
	sshConfig := filepath.Join(dir, "ssh_config")
	writeConfigFile(t, sshConfig, "")
	g := &globals{newConnector: func(d *remote.Dialer) remote.Connector { return toServer{d: d, addr: srv.Addr} }}

	older := filepath.Join(t.TempDir(), "prepull")
	writeConfigFile(t, older, fmt.Sprintf(`#!/bin/sh
cat >/dev/null
echo "older prepull $*" >&2
for a in "$@"; do case "$1 $a" in keep*--name) ;; *--name|*--until-present) echo "prepull: unknown flag: $a (see 'prepull --help')" >&2; exit 2;; esac; done
if [ "$1" = keep ]; then printf '%%s\n' '%s'; exit 0; fi
printf '%%s\n' '%s'
`, `[{"file":"-","name":"Mixed_1.0.0.pak","path":"/var/lib/prepull/inbox/Mixed_1.0.0.pak","status":"taken","pak_status":"waiting","agent":"running","exit_code":0}]`,
		fmt.Sprintf(`[{"file":"-","reference":"%s","status":"pulled","duration_ms":5,"exit_code":0}]`, p.Reference(""))))
	newer := fakeProxyPrepull(t, fmt.Sprintf(`[{"file":"-","reference":"%s","status":"failed","duration_ms":5,"exit_code":9,"error":"registry quota exceeded","version":"v9.0.0"}]`, p.Reference("")), "", 9)

	base := []string{"remote", "--ssh-config", sshConfig, "--known-hosts", srv.KnownHosts, "-i", srv.Identity}
	out, stderr, code := runWith(context.Background(), t, g, append(base, "--json", "--keep", "--remote-command", "sh "+older, "-H", "old", file)...)
	var rows []remoteRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("older proxy: exit %d, not one row (%v):\n%s\n%s", code, err, out, stderr)
	}
	r := rows[0]
	if code != ExitOK || r.Status != "pulled" || r.Keep == nil || r.Keep.Status != keepTaken || r.Version != "" || !r.VersionDiffers ||
		strings.Join(r.Lacks, "; ") != "pak names in its logs (--name); the agent's verdict for --keep (keep --until-present)" {
		t.Errorf("older proxy: exit %d, row %+v keep %+v\n%s", code, r, r.Keep, stderr)
	}
	for _, want := range []string{"old: older prepull --json --timeout 10m0s -\n", "old: older prepull keep --json --name Mixed_1.0.0.pak --wait 10m0s -\n", "1/1 hosts ok"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	out, stderr, code = runWith(context.Background(), t, g, append(base, "--wide", "--remote-command", "sh "+newer, "-H", "new", file)...)
	if code != 9 || !strings.Contains(out, "exit 9 (newer prepull on the proxy): registry quota exceeded") ||
		!strings.Contains(out, "v9.0.0*") || !strings.Contains(out, "0/1 hosts ok; 1 failed: 1 exit 9 (newer prepull on the proxy)") {
		t.Errorf("newer proxy: exit %d\n%s\n%s", code, out, stderr)
	}
}

// TestRemoteInterruptedInProcess checks what Ctrl-C (os.Interrupt, which
// Windows delivers for it too) does to prepull remote: the row already
// done keeps its result, the running one ends and says interrupted with
// exit 130, and so does the run. The interruption comes once the proxy's
// command has said, through a FIFO, that it runs: no sleep, no clock.
func TestRemoteInterruptedInProcess(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	srv := sshtest.Start(t)
	dir := t.TempDir()
	fast := paktest.Pak{Kind: "Fast", Registry: paktest.Registry}
	slow := paktest.Pak{Kind: "Slow", Registry: paktest.Registry}
	fastFile, slowFile := fast.WriteFile(t, dir), slow.WriteFile(t, dir)
	sshConfig := filepath.Join(dir, "ssh_config")
	writeConfigFile(t, sshConfig, "")
	fifo := filepath.Join(dir, "running")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "prepull")
	writeConfigFile(t, script, fmt.Sprintf(`cat >/dev/null
case "$*" in
*Fast_*) printf '%%s\n' '[{"file":"-","reference":"%s","status":"pulled","duration_ms":5,"exit_code":0}]'; exit 0;;
esac
echo running >%s
exec sleep 3600
`, fast.Reference(""), fifo))

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		// Opening the FIFO waits for the slow pak's command to write it.
		if b, err := os.ReadFile(fifo); err == nil && strings.TrimSpace(string(b)) == "running" {
			cancel(interruption{os.Interrupt})
		}
	}()
	g := &globals{newConnector: func(d *remote.Dialer) remote.Connector { return toServer{d: d, addr: srv.Addr} }}
	out, stderr, code := runWith(ctx, t, g, "remote", "--json", "--parallel", "1", "--ssh-config", sshConfig, "--known-hosts", srv.KnownHosts,
		"-i", srv.Identity, "--remote-command", "sh "+script, "-H", "proxy", "--timeout", "1h", fastFile, slowFile)
	var rows []remoteRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("not two rows (%v):\n%s\n%s", err, out, stderr)
	}
	if code != ExitInterrupted {
		t.Errorf("exit %d, want %d\n%s", code, ExitInterrupted, stderr)
	}
	if r := rows[0]; r.Status != pull.Pulled || r.ExitCode != ExitOK {
		t.Errorf("the pak done before Ctrl-C: %+v", r)
	}
	if r := rows[1]; r.Status != pull.Interrupted || r.ExitCode != ExitInterrupted || r.Error != "interrupted (Ctrl-C, SIGINT)" {
		t.Errorf("the pak running at Ctrl-C: %+v", r)
	}
}
