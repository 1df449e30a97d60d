package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// proxyFleet is a fleet of Cloud Proxies on loopback: real OpenSSH servers,
// each running the real prepull against the fixture's Docker Engine with a
// configuration of its own (passed in the session environment as
// PROXY_CONFIG, which the remote command hands to --config), and a
// known_hosts file that lists them all.
type proxyFleet struct {
	f          *fixture
	key        testenv.SSHKey
	knownHosts string
	proxies    []*testenv.SSHD
}

// newProxyFleet starts one proxy per configuration, all accepting one
// generated user key.
func newProxyFleet(t *testing.T, f *fixture, configs ...string) *proxyFleet {
	t.Helper()
	return newProxyFleetWithKey(t, f, testenv.NewSSHKey(t, ""), configs...)
}

// newProxyFleetWithKey is newProxyFleet for a given user key.
func newProxyFleetWithKey(t *testing.T, f *fixture, key testenv.SSHKey, configs ...string) *proxyFleet {
	t.Helper()
	p := &proxyFleet{f: f, key: key}
	var lines []string
	for _, c := range configs {
		s := testenv.StartSSHD(t, testenv.SSHDOptions{AuthorizedKeys: []string{key.Public}, Env: []string{"PROXY_CONFIG=" + c}})
		p.proxies = append(p.proxies, s)
		lines = append(lines, s.HostKeyLine(t))
	}
	p.knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	writeTestFile(t, p.knownHosts, strings.Join(lines, "\n")+"\n")
	return p
}

// dest is the destination of proxy i, as -H takes it.
func (p *proxyFleet) dest(i int) string { return "root@" + p.proxies[i].Addr() }

// remoteCommand runs the test's prepull binary with the proxy's own
// configuration: the user's shell text, which the remote shell expands.
func (p *proxyFleet) remoteCommand(t *testing.T) string {
	return testenv.Prepull(t) + ` --config "$PROXY_CONFIG"`
}

// args returns the arguments of a prepull remote run on every proxy with the
// fleet's known_hosts and key, then extra.
func (p *proxyFleet) args(t *testing.T, extra ...string) []string {
	args := []string{"remote", "--known-hosts", p.knownHosts, "-i", p.key.Path,
		"--remote-command", p.remoteCommand(t), "--connect-timeout", "5s"}
	for i := range p.proxies {
		args = append(args, "-H", p.dest(i))
	}
	return append(args, extra...)
}

// remoteResult is one row of prepull remote --json.
type remoteResult struct {
	Host       string `json:"host"`
	File       string `json:"file"`
	Reference  string `json:"reference"`
	Status     string `json:"status"`
	DurationMS int64  `json:"duration_ms"`
	ExitCode   int    `json:"exit_code"`
	Error      string `json:"error"`
	Keep       *struct {
		Status    string `json:"status"`
		Path      string `json:"path"`
		PakStatus string `json:"pak_status"`
		Agent     string `json:"agent"`
		ExitCode  int    `json:"exit_code"`
		Error     string `json:"error"`
	} `json:"keep"`
}

// remoteResults decodes the --json output of prepull remote, keyed by host
// and file ("host file").
func (r run) remoteResults(t *testing.T) map[string]remoteResult {
	t.Helper()
	var rows []remoteResult
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("stdout is not the JSON result array: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	m := map[string]remoteResult{}
	for _, row := range rows {
		m[row.Host+" "+row.File] = row
	}
	if len(m) != len(rows) {
		t.Fatalf("duplicate rows in %s", r.stdout)
	}
	return m
}

// tableRows returns the rows of prepull remote's closing table, split into
// columns, after checking its header.
func (r run) tableRows(t *testing.T) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "HOST PAK REFERENCE STATUS DURATION ERROR" && got != "HOST PAK REFERENCE STATUS KEPT DURATION ERROR" {
		t.Fatalf("table header %q\nstdout:\n%s\nstderr:\n%s", lines[0], r.stdout, r.stderr)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fingerprint returns the SHA256 fingerprint of the key of a known_hosts line.
func fingerprint(t *testing.T, line string) string {
	t.Helper()
	_, _, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(key)
}

func TestRemoteFleetPullsOnEveryHost(t *testing.T) {
	f := newFixture(t, "fleet/first")
	secondDigest := f.docker.PushImage(t, f.reg, "fleet/second", testenv.ImageOptions{})
	secondRef := f.reg.Addr + "/fleet/second@" + secondDigest
	second := paktest.Pak{Kind: "SecondAdapter", Registry: f.reg.Addr, Repository: "/fleet/second", Digest: secondDigest}.WriteFile(t, f.dir)
	p := newProxyFleet(t, f, f.config, f.config, f.config)

	r := f.prepull(nil, p.args(t, f.pak, second)...)
	r.want(t, 0)
	t.Logf("prepull remote on 3 hosts, 2 paks:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	rows := r.tableRows(t)
	if len(rows) != 6 {
		t.Fatalf("%d table rows, want 6 (3 hosts × 2 paks):\n%s", len(rows), r.stdout)
	}
	pulled := map[string]bool{}
	for i := range p.proxies {
		for j, pak := range []string{f.pak, second} {
			row := rows[2*i+j]
			wantRef := []string{f.ref, secondRef}[j]
			if len(row) != 6 || row[0] != p.dest(i) || row[1] != pak || row[2] != wantRef || row[5] != "-" {
				t.Errorf("row %d = %q, want host %s, pak %s, %s, no error", 2*i+j, row, p.dest(i), pak, wantRef)
				continue
			}
			if row[3] != "pulled" && row[3] != "present" {
				t.Errorf("row %d status %q, want pulled or present", 2*i+j, row[3])
			}
			pulled[row[2]] = pulled[row[2]] || row[3] == "pulled"
		}
	}
	if !pulled[f.ref] || !pulled[secondRef] {
		t.Errorf("not every image was pulled by some host: %v\n%s", pulled, r.stdout)
	}
	for _, ref := range []string{f.ref, secondRef} {
		if !f.docker.HasImage(t, ref) {
			t.Errorf("the engine does not hold %s", ref)
		}
	}
	// The remote diagnostics come back live, each line prefixed by its host.
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if l != "" && !strings.HasPrefix(l, "root@127.0.0.1:") {
			t.Errorf("stderr line without a host prefix: %q", l)
		}
	}

	// Again, as JSON: everything is present now.
	r = f.prepull(nil, p.args(t, "--json", f.pak, second)...)
	r.want(t, 0)
	results := r.remoteResults(t)
	if len(results) != 6 {
		t.Fatalf("%d JSON rows, want 6:\n%s", len(results), r.stdout)
	}
	for i := range p.proxies {
		for _, c := range []struct{ pak, ref string }{{f.pak, f.ref}, {second, secondRef}} {
			row, ok := results[p.dest(i)+" "+c.pak]
			if !ok || row.Status != "present" || row.Reference != c.ref || row.ExitCode != 0 || row.Error != "" || row.DurationMS <= 0 {
				t.Errorf("%s %s: %+v, want present %s", p.dest(i), c.pak, row, c.ref)
			}
		}
	}
}

func TestRemoteHostDownOthersSucceed(t *testing.T) {
	f := newFixture(t, "fleet/down")
	p := newProxyFleet(t, f, f.config, f.config, f.config)
	p.proxies[1].Stop(t)
	// A host that takes the connection and never speaks SSH.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	silentDest := "root@" + silent.Addr().String()
	hostsFile := filepath.Join(t.TempDir(), "hosts")
	writeTestFile(t, hostsFile, fmt.Sprintf("# the fleet\n%s\n\n%s   # stopped\n%s\n", p.dest(0), p.dest(1), p.dest(2)))

	start := time.Now()
	args := []string{"remote", "--known-hosts", p.knownHosts, "-i", p.key.Path, "--remote-command", p.remoteCommand(t),
		"--json", "--connect-timeout", "2s", "--hosts-file", hostsFile, "-H", silentDest, f.pak}
	r := f.prepull(nil, args...)
	elapsed := time.Since(start)
	r.want(t, 1)
	results := r.remoteResults(t)
	for _, i := range []int{0, 2} {
		if row := results[p.dest(i)+" "+f.pak]; row.ExitCode != 0 || (row.Status != "pulled" && row.Status != "present") {
			t.Errorf("%s: %+v, want success", p.dest(i), row)
		}
	}
	down := results[p.dest(1)+" "+f.pak]
	if down.Status != "failed" || down.ExitCode != 1 || !strings.Contains(down.Error, "connection refused") || down.Reference != f.ref {
		t.Errorf("stopped host: %+v, want failed, exit_code 1, connection refused, reference %s", down, f.ref)
	}
	hung := results[silentDest+" "+f.pak]
	if hung.Status != "failed" || hung.ExitCode != 1 || !strings.Contains(hung.Error, "no SSH handshake within 2s") {
		t.Errorf("silent host: %+v, want failed with a handshake timeout", hung)
	}
	if elapsed > 15*time.Second {
		t.Errorf("the run took %v: the silent host held up the others", elapsed)
	}
	if !strings.Contains(r.stderr, p.dest(1)+": connect to "+p.proxies[1].Addr()) {
		t.Errorf("stderr does not say why %s failed:\n%s", p.dest(1), r.stderr)
	}
}

func TestRemoteUnknownHostKeyRefusedThenAcceptNew(t *testing.T) {
	f := newFixture(t, "fleet/unknown")
	p := newProxyFleet(t, f, f.config)
	writeTestFile(t, p.knownHosts, "") // knows no host
	line := p.proxies[0].HostKeyLine(t)

	r := f.prepull(nil, p.args(t, "--json", f.pak)...)
	r.want(t, 1)
	row := r.remoteResults(t)[p.dest(0)+" "+f.pak]
	want := fmt.Sprintf("host [127.0.0.1]:%d is unknown (ED25519 key %s); run with --accept-new to trust it, or add it to %s",
		p.proxies[0].Port(), fingerprint(t, line), p.knownHosts)
	if row.Status != "failed" || row.Error != want {
		t.Fatalf("row %+v\nwant error %q", row, want)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks the refusal:\n%s", r.stderr)
	}
	if data, _ := os.ReadFile(p.knownHosts); len(data) != 0 {
		t.Fatalf("known_hosts was written without --accept-new: %q", data)
	}

	f.prepull(nil, p.args(t, "--accept-new", f.pak)...).want(t, 0)
	data, err := os.ReadFile(p.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != line+"\n" {
		t.Fatalf("known_hosts after --accept-new:\n%q\nwant\n%q", data, line+"\n")
	}
	// Recorded: trusted from now on without --accept-new.
	f.prepull(nil, p.args(t, f.pak)...).want(t, 0)
}

func TestRemoteChangedHostKeyRefused(t *testing.T) {
	f := newFixture(t, "fleet/changed")
	p := newProxyFleet(t, f, f.config, f.config)
	old := p.proxies[0].HostKeyLine(t)
	p.proxies[0].ReplaceHostKey(t)
	before, _ := os.ReadFile(p.knownHosts)

	for _, accept := range []bool{false, true} {
		args := p.args(t, "--json", f.pak)
		if accept {
			args = append(args, "--accept-new")
		}
		r := f.prepull(nil, args...)
		r.want(t, 1)
		results := r.remoteResults(t)
		row := results[p.dest(0)+" "+f.pak]
		for _, part := range []string{
			fmt.Sprintf("WARNING: host key for [127.0.0.1]:%d CHANGED", p.proxies[0].Port()),
			fingerprint(t, p.proxies[0].HostKeyLine(t)),
			fingerprint(t, old),
			"refusing",
		} {
			if !strings.Contains(row.Error, part) {
				t.Errorf("accept-new=%v: error %q lacks %q", accept, row.Error, part)
			}
		}
		if other := results[p.dest(1)+" "+f.pak]; other.ExitCode != 0 {
			t.Errorf("accept-new=%v: the unchanged host failed: %+v", accept, other)
		}
	}
	if after, _ := os.ReadFile(p.knownHosts); !bytes.Equal(before, after) {
		t.Fatalf("known_hosts changed:\n%s", after)
	}
}

func TestRemoteRejectedCredentialsInThatHostsRow(t *testing.T) {
	f := newFixture(t, "fleet/creds")
	wrong := filepath.Join(f.dir, "wrong.password")
	writeTestFile(t, wrong, "not-the-password\n")
	bad := f.writeConfig(fmt.Sprintf("registries:\n  - host: %s\n    username: alice\n    password_file: %s\n", f.reg.Addr, wrong))
	p := newProxyFleet(t, f, f.config, bad)

	// --force, passed on, makes both log in even once the image is present.
	r := f.prepull(nil, p.args(t, "--json", "--force", f.pak)...)
	r.want(t, 4)
	results := r.remoteResults(t)
	if good := results[p.dest(0)+" "+f.pak]; good.Status != "pulled" || good.ExitCode != 0 {
		t.Errorf("host with the right password: %+v, want pulled", good)
	}
	row := results[p.dest(1)+" "+f.pak]
	if row.Status != "failed" || row.ExitCode != 4 || !strings.Contains(row.Error, f.reg.Addr) || row.Reference != f.ref {
		t.Errorf("host with the wrong password: %+v, want failed with exit_code 4 naming %s", row, f.reg.Addr)
	}
	if strings.Contains(r.stdout+r.stderr, "not-the-password") {
		t.Fatal("the wrong password appears in the output")
	}
}

func TestRemoteBadPakFailsBeforeAnyConnection(t *testing.T) {
	f := newFixture(t, "fleet/badpak")
	addr, accepted := countConnections(t)
	bad := filepath.Join(f.dir, "Broken_1.0.0.pak")
	writeTestFile(t, bad, "PK\x03\x04 this is no zip")
	noDigest := paktest.Pak{Kind: "NoDigest", Registry: f.reg.Addr, ExtraConf: map[string]string{"DIGEST": ""}}.WriteFile(t, f.dir)

	r := f.prepull(nil, "remote", "-H", "root@"+addr, "-i", testenv.NewSSHKey(t, "").Path, f.pak, bad, noDigest)
	r.want(t, 3)
	for _, name := range []string{bad, noDigest} {
		if !strings.Contains(r.stderr, name) {
			t.Errorf("stderr does not name %s:\n%s", name, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d connection(s) were made despite a bad pak", n)
	}
}

func TestRemoteSSHConfigAliasAndProxyJump(t *testing.T) {
	f := newFixture(t, "fleet/alias")
	p := newProxyFleet(t, f, f.config, f.config)
	sshConfig := filepath.Join(t.TempDir(), "ssh_config")
	writeTestFile(t, sshConfig, fmt.Sprintf(`Host proxy-dc1
  HostName 127.0.0.1
  Port %d
  User root
  IdentityFile %s

Host proxy-dc2
  HostName 127.0.0.1
  Port %d
  User root
  IdentityFile %s
  ProxyJump proxy-dc1
`, p.proxies[0].Port(), p.key.Path, p.proxies[1].Port(), p.key.Path))
	base := []string{"remote", "--ssh-config", sshConfig, "--json", "--remote-command", p.remoteCommand(t), "-H", "proxy-dc1", "-H", "proxy-dc2", f.pak}

	// No -i, no port, no user on the command line: ssh_config gives them.
	r := f.prepull(nil, append(base, "--known-hosts", p.knownHosts)...)
	r.want(t, 0)
	results := r.remoteResults(t)
	for _, alias := range []string{"proxy-dc1", "proxy-dc2"} {
		if row := results[alias+" "+f.pak]; row.ExitCode != 0 || row.Reference != f.ref {
			t.Errorf("%s: %+v, want success with %s", alias, row, f.ref)
		}
	}

	// The jump host is verified too: one known_hosts that lacks it.
	onlyDC2 := filepath.Join(t.TempDir(), "known_hosts")
	writeTestFile(t, onlyDC2, p.proxies[1].HostKeyLine(t)+"\n")
	r = f.prepull(nil, append(base, "--known-hosts", onlyDC2)...)
	r.want(t, 1)
	row := r.remoteResults(t)["proxy-dc2 "+f.pak]
	want := fmt.Sprintf("jump host proxy-dc1: host [127.0.0.1]:%d is unknown", p.proxies[0].Port())
	if !strings.Contains(row.Error, want) {
		t.Errorf("proxy-dc2 through an unknown jump host: %+v, want %q", row, want)
	}
}

func TestRemoteAgentAndPassphraseKey(t *testing.T) {
	f := newFixture(t, "fleet/agent")
	locked := testenv.NewSSHKey(t, "correct horse")
	q := newProxyFleetWithKey(t, f, locked, f.config)

	// No agent: a clear refusal naming the key, never a prompt (stdin is
	// empty and the run must end by itself).
	args := []string{"remote", "--json", "--known-hosts", q.knownHosts, "-i", locked.Path,
		"--remote-command", q.remoteCommand(t), "-H", q.dest(0), f.pak}
	r := f.prepull(nil, args...)
	r.want(t, 1)
	row := r.remoteResults(t)[q.dest(0)+" "+f.pak]
	if !strings.Contains(row.Error, locked.Path+" is passphrase-protected") || !strings.Contains(row.Error, "never prompts") {
		t.Errorf("locked key without an agent: %+v", row)
	}

	// A real ssh-agent holding it: no -i needed.
	agent := testenv.StartSSHAgent(t)
	agent.Add(t, locked, "correct horse")
	r = f.prepullEnv([]string{"SSH_AUTH_SOCK=" + agent.Sock}, nil,
		"remote", "--json", "--known-hosts", q.knownHosts, "--remote-command", q.remoteCommand(t), "-H", q.dest(0), f.pak)
	r.want(t, 0)
}

// sleeper is a remote command that records its pid in dir and then sleeps
// without reading its input, as a hung command would.
func sleeper(dir string) string {
	return fmt.Sprintf(`sh -c 'echo $$ > %s/pid-$PPID-$(date +%%s%%N); exec sleep 600' sh`, dir)
}

// waitPids waits until n pid files appear in dir and returns the pids.
func waitPids(t *testing.T, dir string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "pid-*"))
		var pids []int
		for _, f := range files {
			data, _ := os.ReadFile(f)
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				pids = append(pids, pid)
			}
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d remote commands started", len(pids), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether process pid exists (and is not a zombie).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}

// remoteProc is a prepull process the test controls while it runs.
type remoteProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when the process has exited
	code           int           // exit code, once done
}

// startRemote starts prepull with args in the clean environment of
// fixture.prepull. A process still running when the test ends is killed.
func startRemote(t *testing.T, f *fixture, args ...string) *remoteProc {
	t.Helper()
	p := &remoteProc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(testenv.Prepull(t), args...)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + f.dir, "TMPDIR=" + f.dir}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			p.code = exit.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// exited reports whether the process has ended.
func (p *remoteProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit and returns what it printed
// and its exit code.
func (p *remoteProc) wait(t *testing.T, d time.Duration) run {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("prepull did not exit within %v\nstdout:\n%s\nstderr:\n%s", d, p.stdout, p.stderr)
	}
	return run{stdout: p.stdout.String(), stderr: p.stderr.String(), code: p.code}
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test
// reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRemoteCtrlCEndsRemoteCommands(t *testing.T) {
	f := newFixture(t, "fleet/cancel")
	p := newProxyFleet(t, f, f.config, f.config)
	pidDir := t.TempDir()
	args := p.args(t, "--json", f.pak)
	for i, a := range args {
		if a == "--remote-command" {
			args[i+1] = sleeper(pidDir)
		}
	}
	proc := startRemote(t, f, args...)
	pids := waitPids(t, pidDir, 2)

	proc.cmd.Process.Signal(os.Interrupt)
	r := proc.wait(t, 10*time.Second)
	r.want(t, 130)
	for i := range p.proxies {
		if row := r.remoteResults(t)[p.dest(i)+" "+f.pak]; row.Status != "interrupted" || row.ExitCode != 130 || row.Error != "interrupted (Ctrl-C, SIGINT)" {
			t.Errorf("%s after Ctrl-C: %+v, want interrupted, exit_code 130", p.dest(i), row)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("remote command (pid %d) still runs after Ctrl-C", pid)
		}
	}
}

// relay forwards TCP connections to target until frozen; frozen, it keeps
// the connections open and passes nothing, as a dead network path does.
type relay struct {
	l       net.Listener
	frozen  atomic.Bool
	answers atomic.Int64 // reads passed from the target to the client
	mu      sync.Mutex
	conns   []net.Conn
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{l: l}
	t.Cleanup(func() {
		l.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.conns {
			c.Close()
		}
	})
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, in, out)
			r.mu.Unlock()
			go r.pipe(in, out, &r.answers)
			go r.pipe(out, in, nil)
		}
	}()
	return r
}

// pipe copies src to dst until either closes, counting the reads passed on
// in count when it is set.
func (r *relay) pipe(dst, src net.Conn, count *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if r.frozen.Load() {
			continue // dropped on the floor
		}
		if count != nil {
			count.Add(1)
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func TestRemoteKeepaliveDetectsDeadConnection(t *testing.T) {
	f := newFixture(t, "fleet/keepalive")
	p := newProxyFleet(t, f, f.config)
	r := startRelay(t, p.proxies[0].Addr())
	port := r.l.Addr().(*net.TCPAddr).Port
	// known_hosts names the relay's port: it is the host as the client sees it.
	line := strings.Replace(p.proxies[0].HostKeyLine(t), fmt.Sprintf(":%d ", p.proxies[0].Port()), fmt.Sprintf(":%d ", port), 1)
	writeTestFile(t, p.knownHosts, line+"\n")
	sshConfig := filepath.Join(t.TempDir(), "ssh_config")
	writeTestFile(t, sshConfig, fmt.Sprintf("Host flaky\n  HostName 127.0.0.1\n  Port %d\n  User root\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n", port))
	pidDir := t.TempDir()

	proc := startRemote(t, f, "remote", "--json", "--ssh-config", sshConfig, "--known-hosts", p.knownHosts,
		"-i", p.key.Path, "--remote-command", sleeper(pidDir), "-H", "flaky", f.pak)
	pids := waitPids(t, pidDir, 1)
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// The remote command prints nothing: what the proxy sends now answers
	// the client's keepalives (one a second). Three answered show the
	// client kept a live connection open past its ServerAliveCountMax.
	from := r.answers.Load()
	deadline := time.Now().Add(30 * time.Second)
	for r.answers.Load() < from+3 && !proc.exited() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := r.answers.Load() - from; n < 3 && !proc.exited() {
		t.Fatalf("the proxy answered %d keepalives in 30s, want 3", n)
	}
	if proc.exited() {
		t.Fatalf("prepull ended while the connection was alive\nstderr:\n%s", proc.stderr)
	}
	r.frozen.Store(true)
	// Noticed by the keepalives (the row says so), well before the remote
	// command's own end.
	out := proc.wait(t, 15*time.Second)
	out.want(t, 1)
	if row := out.remoteResults(t)["flaky "+f.pak]; !strings.Contains(row.Error, "connection lost: no answer to 2 keepalives") {
		t.Errorf("row %+v, want a lost connection", row)
	}
}

// TestRemoteSendsOnlyWhatTheProxyNeeds runs prepull remote with a 128 MiB
// pak through a remote command that keeps a copy of what it reads on
// standard input and of the proxy's result: the proxy gets a few KiB, an
// adapter.zip of the .conf and manifest.txt that names the same adapter,
// pack and image, and pulls from it; the proxy's checks apply as to a pak.
func TestRemoteSendsOnlyWhatTheProxyNeeds(t *testing.T) {
	f := newFixture(t, "fleet/slim")
	big := paktest.Pak{Kind: "BigAdapter", Version: "2.1.0", Registry: f.reg.Addr, Repository: "/fleet/slim", Digest: f.digest,
		ContentBytes: 128 << 20}.WriteFile(t, f.dir)
	noRegistry := filepath.Join(t.TempDir(), "NoRegistry_1.0.0.pak")
	if err := (paktest.Pak{Kind: "NoRegistry", Repository: "/fleet/slim", Digest: f.digest}).Save(noRegistry); err != nil {
		t.Fatal(err)
	}
	p := newProxyFleet(t, f, f.config)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "wrap.sh")
	writeTestFile(t, wrapper, fmt.Sprintf(`#!/bin/sh
n=$(ls %[1]q | wc -l)
tee %[1]q/stdin.$n | %[2]q --config "$PROXY_CONFIG" "$@" > %[1]q/stdout.$n
rc=$?
cat %[1]q/stdout.$n
exit $rc
`, dir, testenv.Prepull(t)))
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}

	r := f.prepull(nil, "remote", "--json", "--known-hosts", p.knownHosts, "-i", p.key.Path, "--remote-command", wrapper,
		"-H", p.dest(0), big, noRegistry)
	r.want(t, 3)
	results := r.remoteResults(t)
	if row := results[p.dest(0)+" "+big]; row.Status != "pulled" || row.Reference != f.ref || row.ExitCode != 0 {
		t.Errorf("big pak: %+v, want pulled %s", row, f.ref)
	}
	if row := results[p.dest(0)+" "+noRegistry]; row.Status != "failed" || row.ExitCode != 3 || !strings.Contains(row.Error, "no REGISTRY in the pack and no default_registry configured") {
		t.Errorf("pak without REGISTRY on a proxy without default_registry: %+v, want the proxy's own exit 3", row)
	}
	if !f.docker.HasImage(t, f.ref) {
		t.Errorf("the engine does not hold %s", f.ref)
	}

	for i, c := range []struct {
		pak, kind, version, registry string
	}{{big, "BigAdapter", "2.1.0", f.reg.Addr}, {noRegistry, "NoRegistry", "1.0.0", ""}} {
		sent := filepath.Join(dir, fmt.Sprintf("stdin.%d", 2*i+1))
		st, err := os.Stat(sent)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 64<<10 {
			t.Errorf("%s: the proxy read %d bytes on standard input, want at most 64 KiB", c.pak, st.Size())
		}
		img, err := pak.Open(sent)
		if err != nil {
			t.Fatalf("what the proxy read: %v", err)
		}
		if img.Format != pak.FormatAdapterZip || img.AdapterKind != c.kind || img.PackVersion != c.version || img.Registry != c.registry || img.Digest != f.digest {
			t.Errorf("%s: the proxy read %+v", c.pak, img)
		}
		var proxyResults []struct {
			File        string `json:"file"`
			AdapterKind string `json:"adapter_kind"`
		}
		out, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("stdout.%d", 2*i+1)))
		if err == nil {
			err = json.Unmarshal(out, &proxyResults)
		}
		if err != nil || len(proxyResults) != 1 || (c.registry != "" && proxyResults[0].AdapterKind != c.kind) {
			t.Errorf("%s: the proxy's own result %s (%v), want adapter_kind %s", c.pak, out, err, c.kind)
		}
		t.Logf("%s (%d MiB): the proxy read %d bytes", filepath.Base(c.pak), fileSize(t, c.pak)>>20, st.Size())
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestRemoteKeepHandsThePakToTheAgent runs prepull remote --keep against a
// proxy whose agent runs: after the pull, the proxy's agent takes the small
// adapter.zip (written into its watch_dir by prepull keep over the same
// connection) and finds the image present; run again, the agent keeps it
// already and nothing is written; with the agent stopped, the file waits in
// watch_dir and the row says the agent did not take it.
func TestRemoteKeepHandsThePakToTheAgent(t *testing.T) {
	f := newFixture(t, "fleet/keep")
	config, inbox, state := f.agentConfig("")
	a := f.startAgent(config, inbox, state)
	a.eventually(10*time.Second, "the agent holds its lock", func() bool {
		_, err := os.Stat(filepath.Join(state, "agent.lock"))
		return err == nil
	})
	big := paktest.Pak{Kind: "KeepAdapter", Version: "3.0.0", Registry: f.reg.Addr, Repository: "/fleet/keep", Digest: f.digest,
		ContentBytes: 16 << 20}.WriteFile(t, f.dir)
	p := newProxyFleet(t, f, config)
	const name = "KeepAdapter_3.0.0.pak"

	r := f.prepull(nil, p.args(t, "--json", "--keep", big)...)
	r.want(t, 0)
	row := r.remoteResults(t)[p.dest(0)+" "+big]
	if row.Status != "pulled" || row.Keep == nil || row.Keep.Status != "taken" || row.Keep.PakStatus != "present" || row.Keep.Agent != "running" ||
		row.Keep.ExitCode != 0 || !strings.HasPrefix(row.Keep.Path, inbox+"/") || filepath.Base(row.Keep.Path) != name {
		t.Fatalf("--keep with the agent running: %+v keep %+v\nstderr:\n%s", row, row.Keep, r.stderr)
	}
	a.eventually(10*time.Second, name+" is in done/", func() bool { return a.inDone(name) })
	kept := filepath.Join(inbox, "done", name)
	fi, err := os.Stat(kept)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() > 64<<10 {
		t.Fatalf("the agent's file %s: %v, %v; want mode 0600, a few KiB", kept, fi, err)
	}
	img, err := pak.Open(kept)
	if err != nil || img.Format != pak.FormatAdapterZip || img.AdapterKind != "KeepAdapter" || img.PackVersion != "3.0.0" || img.Digest != f.digest {
		t.Fatalf("the agent's file reads %+v, %v", img, err)
	}
	entries, _ := os.ReadDir(inbox)
	for _, e := range entries {
		if e.Name() != "done" && e.Name() != "failed" {
			t.Errorf("watch_dir holds %s besides done/ and failed/", e.Name())
		}
	}
	if failed, _ := os.ReadDir(filepath.Join(inbox, "failed")); len(failed) > 0 {
		t.Errorf("failed/ holds %s", failed[0].Name())
	}

	// Again: the agent keeps that image already.
	r = f.prepull(nil, p.args(t, "--json", "--keep", big)...)
	r.want(t, 0)
	row = r.remoteResults(t)[p.dest(0)+" "+big]
	if row.Status != "present" || row.Keep == nil || row.Keep.Status != "kept" || row.Keep.Path != kept {
		t.Fatalf("--keep again: %+v keep %+v", row, row.Keep)
	}
	if entries, _ := os.ReadDir(filepath.Join(inbox, "done")); len(entries) != 1 {
		t.Errorf("done/ holds %d files, want the one", len(entries))
	}

	// The agent stopped: the file waits in watch_dir, the table says so.
	if code, _ := a.terminate(); code != 0 {
		t.Fatalf("the agent exited %d on SIGTERM", code)
	}
	second := f.docker.PushImage(t, f.reg, "fleet/keep2", testenv.ImageOptions{})
	other := paktest.Pak{Kind: "Other", Registry: f.reg.Addr, Repository: "/fleet/keep2", Digest: second}.WriteFile(t, f.dir)
	r = f.prepull(nil, p.args(t, "--keep", other)...)
	r.want(t, 1)
	rows := r.tableRows(t)
	if len(rows) != 1 || rows[0][3] != "pulled" || rows[0][4] != "not-taken" || !strings.Contains(r.stdout, "keep: no agent is running (stopped): it takes Other_1.0.0.pak when it starts") {
		t.Fatalf("--keep with the agent stopped:\n%s\n%s", r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(inbox, "Other_1.0.0.pak")); err != nil {
		t.Errorf("the file is not waiting in watch_dir: %v", err)
	}
}
