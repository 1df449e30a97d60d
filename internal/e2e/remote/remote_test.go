//go:build linux

package remote

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/testenv"
	"github.com/prepull/prepull/internal/testenv/await"
	"golang.org/x/crypto/ssh"
)

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
	f := e2e.NewFixture(t, "fleet/first")
	secondDigest := f.Docker.PushImage(t, f.Reg, "fleet/second", testenv.ImageOptions{})
	secondRef := f.Reg.Addr + "/fleet/second@" + secondDigest
	second := paktest.Pak{Kind: "SecondAdapter", Registry: f.Reg.Addr, Repository: "/fleet/second", Digest: secondDigest}.WriteFile(t, f.Dir)
	p := e2e.NewProxyFleet(t, f, f.Config, f.Config, f.Config)

	r := f.Prepull(nil, p.Args(t, "--wide", f.Pak, second)...)
	r.Want(t, 0)
	t.Logf("prepull remote on 3 hosts, 2 paks:\nstdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
	rows := r.TableRows(t)
	if len(rows) != 6 {
		t.Fatalf("%d table rows, want 6 (3 hosts × 2 paks):\n%s", len(rows), r.Stdout)
	}
	pulled := map[string]bool{}
	for i := range p.Proxies {
		for j, pak := range []string{f.Pak, second} {
			row := rows[2*i+j]
			wantRef := []string{f.Ref, secondRef}[j]
			if len(row) != 7 || row[0] != p.Dest(i) || row[1] != pak || row[2] != wantRef || row[6] != "-" {
				t.Errorf("row %d = %q, want host %s, pak %s, %s, no error", 2*i+j, row, p.Dest(i), pak, wantRef)
				continue
			}
			if row[3] != "pulled" && row[3] != "present" {
				t.Errorf("row %d status %q, want pulled or present", 2*i+j, row[3])
			}
			pulled[row[2]] = pulled[row[2]] || row[3] == "pulled"
		}
	}
	if !pulled[f.Ref] || !pulled[secondRef] {
		t.Errorf("not every image was pulled by some host: %v\n%s", pulled, r.Stdout)
	}
	for _, ref := range []string{f.Ref, secondRef} {
		if !f.Docker.HasImage(t, ref) {
			t.Errorf("the engine does not hold %s", ref)
		}
	}
	// The remote diagnostics come back live, each line prefixed by its host.
	for _, l := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
		if l != "" && !strings.HasPrefix(l, "root@127.0.0.1:") {
			t.Errorf("stderr line without a host prefix: %q", l)
		}
	}
	// Their log lines name the pak they are about, not "-"; the run ends
	// with its summary.
	for _, pak := range []string{f.Pak, second} {
		if want := `"pak": "` + filepath.Base(pak) + `"`; !strings.Contains(r.Stderr, want) {
			t.Errorf("no relayed log line says %s:\n%s", want, r.Stderr)
		}
	}
	if strings.Contains(r.Stderr, `"pak": "-"`) {
		t.Errorf("a relayed log line names the pak -:\n%s", r.Stderr)
	}
	if !strings.HasSuffix(r.Stdout, "\n3/3 hosts ok\n") {
		t.Errorf("stdout does not end with the summary 3/3 hosts ok:\n%s", r.Stdout)
	}

	// Again, as JSON: everything is present now.
	r = f.Prepull(nil, p.Args(t, "--json", f.Pak, second)...)
	r.Want(t, 0)
	results := r.RemoteResults(t)
	if len(results) != 6 {
		t.Fatalf("%d JSON rows, want 6:\n%s", len(results), r.Stdout)
	}
	for i := range p.Proxies {
		for _, c := range []struct{ pak, ref string }{{f.Pak, f.Ref}, {second, secondRef}} {
			row, ok := results[p.Dest(i)+" "+c.pak]
			if !ok || row.Status != "present" || row.Reference != c.ref || row.ExitCode != 0 || row.Error != "" || row.DurationMS <= 0 {
				t.Errorf("%s %s: %+v, want present %s", p.Dest(i), c.pak, row, c.ref)
			}
		}
	}
}

func TestRemoteHostDownOthersSucceed(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/down")
	p := e2e.NewProxyFleet(t, f, f.Config, f.Config, f.Config)
	p.Proxies[1].Stop(t)
	// A host that takes the connection and never speaks SSH.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// When prepull gives up on the silent host's handshake and closes its
	// connection, the others must have logged in already: the silent host
	// held up nobody. Order, read from the servers' logs, not a run time.
	othersFirst := make(chan bool, 1)
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
			go func() {
				_, _ = io.Copy(io.Discard, c) // until prepull closes it
				loggedIn := func(i int) bool { return strings.Contains(p.Proxies[i].Log(), "Accepted publickey") }
				select {
				case othersFirst <- loggedIn(0) && loggedIn(2):
				default:
				}
			}()
		}
	}()
	silentDest := "root@" + silent.Addr().String()
	hostsFile := filepath.Join(t.TempDir(), "hosts")
	e2e.WriteTestFile(t, hostsFile, fmt.Sprintf("# the fleet\n%s\n\n%s   # stopped\n%s\n", p.Dest(0), p.Dest(1), p.Dest(2)))

	args := []string{"remote", "--known-hosts", p.KnownHosts, "-i", p.Key.Path, "--remote-command", p.RemoteCommand(t),
		"--json", "--connect-timeout", "2s", "--hosts-file", hostsFile, "-H", silentDest, f.Pak}
	r := f.Prepull(nil, args...)
	r.Want(t, 1)
	results := r.RemoteResults(t)
	for _, i := range []int{0, 2} {
		if row := results[p.Dest(i)+" "+f.Pak]; row.ExitCode != 0 || (row.Status != "pulled" && row.Status != "present") {
			t.Errorf("%s: %+v, want success", p.Dest(i), row)
		}
	}
	down := results[p.Dest(1)+" "+f.Pak]
	if down.Status != "failed" || down.ExitCode != 1 || !strings.Contains(down.Error, "connection refused") || down.Reference != f.Ref {
		t.Errorf("stopped host: %+v, want failed, exit_code 1, connection refused, reference %s", down, f.Ref)
	}
	hung := results[silentDest+" "+f.Pak]
	if hung.Status != "failed" || hung.ExitCode != 1 || !strings.Contains(hung.Error, "no SSH handshake within 2s") {
		t.Errorf("silent host: %+v, want failed with a handshake timeout", hung)
	}
	select {
	case ok := <-othersFirst:
		if !ok {
			t.Errorf("the silent host's handshake timed out before both others logged in: it held them up")
		}
	case <-time.After(await.Limit(t)): // prepull has exited: its connection is closed by now
		t.Errorf("prepull closed no connection to the silent host")
	}
	if !strings.Contains(r.Stderr, p.Dest(1)+": connect to "+p.Proxies[1].Addr()) {
		t.Errorf("stderr does not say why %s failed:\n%s", p.Dest(1), r.Stderr)
	}
}

func TestRemoteUnknownHostKeyRefusedThenAcceptNew(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/unknown")
	p := e2e.NewProxyFleet(t, f, f.Config)
	e2e.WriteTestFile(t, p.KnownHosts, "") // knows no host
	line := p.Proxies[0].HostKeyLine(t)

	r := f.Prepull(nil, p.Args(t, "--json", f.Pak)...)
	r.Want(t, 1)
	row := r.RemoteResults(t)[p.Dest(0)+" "+f.Pak]
	want := fmt.Sprintf("host [127.0.0.1]:%d is unknown (ED25519 key %s); run with --accept-new to trust it, or add it to %s",
		p.Proxies[0].Port(), fingerprint(t, line), p.KnownHosts)
	if row.Status != "failed" || row.Error != want {
		t.Fatalf("row %+v\nwant error %q", row, want)
	}
	if !strings.Contains(r.Stderr, want) {
		t.Errorf("stderr lacks the refusal:\n%s", r.Stderr)
	}
	if data, _ := os.ReadFile(p.KnownHosts); len(data) != 0 {
		t.Fatalf("known_hosts was written without --accept-new: %q", data)
	}

	f.Prepull(nil, p.Args(t, "--accept-new", f.Pak)...).Want(t, 0)
	data, err := os.ReadFile(p.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != line+"\n" {
		t.Fatalf("known_hosts after --accept-new:\n%q\nwant\n%q", data, line+"\n")
	}
	// Recorded: trusted from now on without --accept-new.
	f.Prepull(nil, p.Args(t, f.Pak)...).Want(t, 0)
}

func TestRemoteChangedHostKeyRefused(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/changed")
	p := e2e.NewProxyFleet(t, f, f.Config, f.Config)
	old := p.Proxies[0].HostKeyLine(t)
	p.Proxies[0].ReplaceHostKey(t)
	before, _ := os.ReadFile(p.KnownHosts)

	for _, accept := range []bool{false, true} {
		args := p.Args(t, "--json", f.Pak)
		if accept {
			args = append(args, "--accept-new")
		}
		r := f.Prepull(nil, args...)
		r.Want(t, 1)
		results := r.RemoteResults(t)
		row := results[p.Dest(0)+" "+f.Pak]
		for _, part := range []string{
			fmt.Sprintf("WARNING: host key for [127.0.0.1]:%d CHANGED", p.Proxies[0].Port()),
			fingerprint(t, p.Proxies[0].HostKeyLine(t)),
			fingerprint(t, old),
			"refusing",
		} {
			if !strings.Contains(row.Error, part) {
				t.Errorf("accept-new=%v: error %q lacks %q", accept, row.Error, part)
			}
		}
		if other := results[p.Dest(1)+" "+f.Pak]; other.ExitCode != 0 {
			t.Errorf("accept-new=%v: the unchanged host failed: %+v", accept, other)
		}
	}
	if after, _ := os.ReadFile(p.KnownHosts); !bytes.Equal(before, after) {
		t.Fatalf("known_hosts changed:\n%s", after)
	}
}

func TestRemoteRejectedCredentialsInThatHostsRow(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/creds")
	wrong := filepath.Join(f.Dir, "wrong.password")
	e2e.WriteTestFile(t, wrong, "not-the-password\n")
	bad := f.WriteConfig(fmt.Sprintf("registries:\n  - host: %s\n    username: alice\n    password_file: %s\n", f.Reg.Addr, wrong))
	p := e2e.NewProxyFleet(t, f, f.Config, bad)

	// --force, passed on, makes both log in even once the image is present.
	r := f.Prepull(nil, p.Args(t, "--json", "--force", f.Pak)...)
	r.Want(t, 4)
	results := r.RemoteResults(t)
	if good := results[p.Dest(0)+" "+f.Pak]; good.Status != "pulled" || good.ExitCode != 0 {
		t.Errorf("host with the right password: %+v, want pulled", good)
	}
	row := results[p.Dest(1)+" "+f.Pak]
	if row.Status != "failed" || row.ExitCode != 4 || !strings.Contains(row.Error, f.Reg.Addr) || row.Reference != f.Ref {
		t.Errorf("host with the wrong password: %+v, want failed with exit_code 4 naming %s", row, f.Reg.Addr)
	}
	if strings.Contains(r.Stdout+r.Stderr, "not-the-password") {
		t.Fatal("the wrong password appears in the output")
	}
}

// TestRemoteRegistryUnreachableExits8: a proxy whose registry is down
// gives up after pull.DefaultRegistryAttempts attempts (counted in the log
// lines it relays, not timed) and its row says exit 8; the summary counts
// it apart from a host SSH cannot reach.
func TestRemoteRegistryUnreachableExits8(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/regdown")
	p := e2e.NewProxyFleet(t, f, f.Config, f.Config)
	f.Reg.Stop(t)
	p.Proxies[1].Stop(t)
	r := f.Prepull(nil, p.Args(t, "--json", f.Pak)...)
	r.Want(t, 8)
	results := r.RemoteResults(t)
	row := results[p.Dest(0)+" "+f.Pak]
	want := fmt.Sprintf("registry %s unreachable: Docker Engine tried %s: connect: connection refused (%d attempts)", f.Reg.Addr, f.Reg.Addr, pull.DefaultRegistryAttempts)
	if row.Status != "failed" || row.ExitCode != 8 || !strings.Contains(row.Error, want) || row.Reference != f.Ref {
		t.Errorf("host whose registry is down: %+v\nwant failed, exit_code 8, %q", row, want)
	}
	if n := strings.Count(r.Stderr, "will retry"); n != pull.DefaultRegistryAttempts-1 {
		t.Errorf("%d retries relayed, want %d:\n%s", n, pull.DefaultRegistryAttempts-1, r.Stderr)
	}
	if want := "0/2 hosts ok; 2 failed: 1 registry unreachable (exit 8), 1 ssh unreachable"; !strings.Contains(r.Stderr, want) {
		t.Errorf("stderr does not end with the summary %q:\n%s", want, r.Stderr)
	}
}

func TestRemoteBadPakFailsBeforeAnyConnection(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/badpak")
	addr, accepted := e2e.CountConnections(t)
	bad := filepath.Join(f.Dir, "Broken_1.0.0.pak")
	e2e.WriteTestFile(t, bad, "PK\x03\x04 this is no zip")
	noDigest := paktest.Pak{Kind: "NoDigest", Registry: f.Reg.Addr, ExtraConf: map[string]string{"DIGEST": ""}}.WriteFile(t, f.Dir)

	r := f.Prepull(nil, "remote", "-H", "root@"+addr, "-i", testenv.NewSSHKey(t, "").Path, f.Pak, bad, noDigest)
	r.Want(t, 3)
	for _, name := range []string{bad, noDigest} {
		if !strings.Contains(r.Stderr, name) {
			t.Errorf("stderr does not name %s:\n%s", name, r.Stderr)
		}
	}
	if r.Stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.Stdout)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d connection(s) were made despite a bad pak", n)
	}
}

func TestRemoteSSHConfigAliasAndProxyJump(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/alias")
	p := e2e.NewProxyFleet(t, f, f.Config, f.Config)
	sshConfig := filepath.Join(t.TempDir(), "ssh_config")
	e2e.WriteTestFile(t, sshConfig, fmt.Sprintf(`Host proxy-dc1
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
`, p.Proxies[0].Port(), p.Key.Path, p.Proxies[1].Port(), p.Key.Path))
	base := []string{"remote", "--ssh-config", sshConfig, "--json", "--remote-command", p.RemoteCommand(t), "-H", "proxy-dc1", "-H", "proxy-dc2", f.Pak}

	// No -i, no port, no user on the command line: ssh_config gives them.
	r := f.Prepull(nil, append(base, "--known-hosts", p.KnownHosts)...)
	r.Want(t, 0)
	results := r.RemoteResults(t)
	for _, alias := range []string{"proxy-dc1", "proxy-dc2"} {
		if row := results[alias+" "+f.Pak]; row.ExitCode != 0 || row.Reference != f.Ref {
			t.Errorf("%s: %+v, want success with %s", alias, row, f.Ref)
		}
	}

	// The jump host is verified too: one known_hosts that lacks it.
	onlyDC2 := filepath.Join(t.TempDir(), "known_hosts")
	e2e.WriteTestFile(t, onlyDC2, p.Proxies[1].HostKeyLine(t)+"\n")
	r = f.Prepull(nil, append(base, "--known-hosts", onlyDC2)...)
	r.Want(t, 1)
	row := r.RemoteResults(t)["proxy-dc2 "+f.Pak]
	want := fmt.Sprintf("jump host proxy-dc1: host [127.0.0.1]:%d is unknown", p.Proxies[0].Port())
	if !strings.Contains(row.Error, want) {
		t.Errorf("proxy-dc2 through an unknown jump host: %+v, want %q", row, want)
	}
}

func TestRemoteAgentAndPassphraseKey(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/agent")
	locked := testenv.NewSSHKey(t, "correct horse")
	q := e2e.NewProxyFleetWithKey(t, f, locked, f.Config)

	// No agent: a clear refusal naming the key, never a prompt (stdin is
	// empty and the run must end by itself).
	args := []string{"remote", "--json", "--known-hosts", q.KnownHosts, "-i", locked.Path,
		"--remote-command", q.RemoteCommand(t), "-H", q.Dest(0), f.Pak}
	r := f.Prepull(nil, args...)
	r.Want(t, 1)
	row := r.RemoteResults(t)[q.Dest(0)+" "+f.Pak]
	if !strings.Contains(row.Error, locked.Path+" is passphrase-protected") || !strings.Contains(row.Error, "never prompts") {
		t.Errorf("locked key without an agent: %+v", row)
	}

	// A real ssh-agent holding it: no -i needed.
	agent := testenv.StartSSHAgent(t)
	agent.Add(t, locked, "correct horse")
	r = f.PrepullEnv([]string{"SSH_AUTH_SOCK=" + agent.Sock}, nil,
		"remote", "--json", "--known-hosts", q.KnownHosts, "--remote-command", q.RemoteCommand(t), "-H", q.Dest(0), f.Pak)
	r.Want(t, 0)
}

// sleeper is a remote command that records its pid in dir and then sleeps
// without reading its input, as a hung command would.
func sleeper(dir string) string {
	return fmt.Sprintf(`sh -c 'echo $$ > %s/pid-$PPID-$(date +%%s%%N); exec sleep 600' sh`, dir)
}

func TestRemoteCtrlCEndsRemoteCommands(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/cancel")
	p := e2e.NewProxyFleet(t, f, f.Config, f.Config)
	pidDir := t.TempDir()
	args := p.Args(t, "--json", f.Pak)
	for i, a := range args {
		if a == "--remote-command" {
			args[i+1] = sleeper(pidDir)
		}
	}
	proc := e2e.StartRemote(t, f, args...)
	pids := e2e.WaitPids(t, pidDir, 2)

	proc.Cmd.Process.Signal(os.Interrupt)
	r := proc.Wait(t)
	r.Want(t, 130)
	for i := range p.Proxies {
		if row := r.RemoteResults(t)[p.Dest(i)+" "+f.Pak]; row.Status != "interrupted" || row.ExitCode != 130 || row.Error != "interrupted (Ctrl-C, SIGINT)" {
			t.Errorf("%s after Ctrl-C: %+v, want interrupted, exit_code 130", p.Dest(i), row)
		}
	}
	for _, pid := range pids {
		if !e2e.Gone(t, pid) {
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
	f := e2e.NewFixture(t, "fleet/keepalive")
	p := e2e.NewProxyFleet(t, f, f.Config)
	r := startRelay(t, p.Proxies[0].Addr())
	port := r.l.Addr().(*net.TCPAddr).Port
	// known_hosts names the relay's port: it is the host as the client sees it.
	line := strings.Replace(p.Proxies[0].HostKeyLine(t), fmt.Sprintf(":%d ", p.Proxies[0].Port()), fmt.Sprintf(":%d ", port), 1)
	e2e.WriteTestFile(t, p.KnownHosts, line+"\n")
	sshConfig := filepath.Join(t.TempDir(), "ssh_config")
	e2e.WriteTestFile(t, sshConfig, fmt.Sprintf("Host flaky\n  HostName 127.0.0.1\n  Port %d\n  User root\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n", port))
	pidDir := t.TempDir()

	proc := e2e.StartRemote(t, f, "remote", "--json", "--ssh-config", sshConfig, "--known-hosts", p.KnownHosts,
		"-i", p.Key.Path, "--remote-command", sleeper(pidDir), "-H", "flaky", f.Pak)
	pids := e2e.WaitPids(t, pidDir, 1)
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// The remote command prints nothing: what the proxy sends now answers
	// the client's keepalives (one a second). Three answered show the
	// client kept a live connection open past its ServerAliveCountMax.
	from := r.answers.Load()
	answered := func() bool { return r.answers.Load() >= from+3 || proc.Exited() }
	if !await.Until(t, 50*time.Millisecond, answered) {
		t.Fatalf("the proxy answered %d keepalives, want 3", r.answers.Load()-from)
	}
	if proc.Exited() {
		t.Fatalf("prepull ended while the connection was alive\nstderr:\n%s", proc.Stderr)
	}
	r.frozen.Store(true)
	// Noticed by the keepalives (the row says so), well before the remote
	// command's own end.
	out := proc.Wait(t)
	out.Want(t, 1)
	if row := out.RemoteResults(t)["flaky "+f.Pak]; !strings.Contains(row.Error, "connection lost: no answer to 2 keepalives") {
		t.Errorf("row %+v, want a lost connection", row)
	}
}

// TestRemoteSendsOnlyWhatTheProxyNeeds runs prepull remote with a 128 MiB
// pak through a remote command that keeps a copy of what it reads on
// standard input and of the proxy's result: the proxy gets a few KiB, an
// adapter.zip of the .conf and manifest.txt that names the same adapter,
// pack and image, and pulls from it; the proxy's checks apply as to a pak.
func TestRemoteSendsOnlyWhatTheProxyNeeds(t *testing.T) {
	f := e2e.NewFixture(t, "fleet/slim")
	big := paktest.Pak{Kind: "BigAdapter", Version: "2.1.0", Registry: f.Reg.Addr, Repository: "/fleet/slim", Digest: f.Digest,
		ContentBytes: 128 << 20}.WriteFile(t, f.Dir)
	noRegistry := filepath.Join(t.TempDir(), "NoRegistry_1.0.0.pak")
	if err := (paktest.Pak{Kind: "NoRegistry", Repository: "/fleet/slim", Digest: f.Digest}).Save(noRegistry); err != nil {
		t.Fatal(err)
	}
	p := e2e.NewProxyFleet(t, f, f.Config)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "wrap.sh")
	e2e.WriteTestFile(t, wrapper, fmt.Sprintf(`#!/bin/sh
n=$(ls %[1]q | wc -l)
tee %[1]q/stdin.$n | %[2]q --config "$PROXY_CONFIG" "$@" > %[1]q/stdout.$n
rc=$?
cat %[1]q/stdout.$n
exit $rc
`, dir, testenv.Prepull(t)))
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}

	r := f.Prepull(nil, "remote", "--json", "--known-hosts", p.KnownHosts, "-i", p.Key.Path, "--remote-command", wrapper,
		"-H", p.Dest(0), big, noRegistry)
	r.Want(t, 3)
	results := r.RemoteResults(t)
	if row := results[p.Dest(0)+" "+big]; row.Status != "pulled" || row.Reference != f.Ref || row.ExitCode != 0 {
		t.Errorf("big pak: %+v, want pulled %s", row, f.Ref)
	}
	if row := results[p.Dest(0)+" "+noRegistry]; row.Status != "failed" || row.ExitCode != 3 || !strings.Contains(row.Error, "no REGISTRY in the pack and no default_registry configured") {
		t.Errorf("pak without REGISTRY on a proxy without default_registry: %+v, want the proxy's own exit 3", row)
	}
	if !f.Docker.HasImage(t, f.Ref) {
		t.Errorf("the engine does not hold %s", f.Ref)
	}

	for i, c := range []struct {
		pak, kind, version, registry string
	}{{big, "BigAdapter", "2.1.0", f.Reg.Addr}, {noRegistry, "NoRegistry", "1.0.0", ""}} {
		sent := filepath.Join(dir, fmt.Sprintf("stdin.%d", 2*i+1))
		st, err := os.Stat(sent)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 64<<10 {
			t.Errorf("%s: the proxy read %d bytes on standard input, want at most 64 KiB", c.pak, st.Size())
		}
		read, err := pak.OpenFile(sent)
		if err != nil {
			t.Fatalf("what the proxy read: %v", err)
		}
		read.Close()
		img := read.Image
		if img.Format != pak.FormatAdapterZip || img.AdapterKind != c.kind || img.PackVersion != c.version || img.Registry != c.registry || img.Digest != f.Digest {
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
	f := e2e.NewFixture(t, "fleet/keep")
	config, inbox, state := f.AgentConfig("")
	a := f.StartAgent(config, inbox, state)
	a.Eventually("the agent holds its lock", func() bool {
		_, err := os.Stat(filepath.Join(state, "agent.lock"))
		return err == nil
	})
	big := paktest.Pak{Kind: "KeepAdapter", Version: "3.0.0", Registry: f.Reg.Addr, Repository: "/fleet/keep", Digest: f.Digest,
		ContentBytes: 16 << 20}.WriteFile(t, f.Dir)
	p := e2e.NewProxyFleet(t, f, config)
	const name = "KeepAdapter_3.0.0.prepull"

	r := f.Prepull(nil, p.Args(t, "--json", "--keep", big)...)
	r.Want(t, 0)
	row := r.RemoteResults(t)[p.Dest(0)+" "+big]
	if row.Status != "pulled" || row.Keep == nil || row.Keep.Status != "taken" || row.Keep.PakStatus != "present" || row.Keep.Agent != "running" ||
		row.Keep.ExitCode != 0 || !strings.HasPrefix(row.Keep.Path, inbox+"/") || filepath.Base(row.Keep.Path) != name {
		t.Fatalf("--keep with the agent running: %+v keep %+v\nstderr:\n%s", row, row.Keep, r.Stderr)
	}
	a.Eventually(name+" is in done/", func() bool { return a.InDone(name) })
	kept := filepath.Join(inbox, "done", name)
	fi, err := os.Stat(kept)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() > 64<<10 {
		t.Fatalf("the agent's file %s: %v, %v; want mode 0600, a few KiB", kept, fi, err)
	}
	file, err := pak.OpenFile(kept)
	if err != nil {
		t.Fatalf("the agent's file: %v", err)
	}
	file.Close()
	if img := file.Image; img.Format != pak.FormatAdapterZip || img.AdapterKind != "KeepAdapter" || img.PackVersion != "3.0.0" || img.Digest != f.Digest {
		t.Fatalf("the agent's file reads %+v", img)
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
	r = f.Prepull(nil, p.Args(t, "--json", "--keep", big)...)
	r.Want(t, 0)
	row = r.RemoteResults(t)[p.Dest(0)+" "+big]
	if row.Status != "present" || row.Keep == nil || row.Keep.Status != "kept" || row.Keep.Path != kept {
		t.Fatalf("--keep again: %+v keep %+v", row, row.Keep)
	}
	if entries, _ := os.ReadDir(filepath.Join(inbox, "done")); len(entries) != 1 {
		t.Errorf("done/ holds %d files, want the one", len(entries))
	}

	// The agent stopped: the file waits in watch_dir, the table says so.
	if code, _ := a.Terminate(); code != 0 {
		t.Fatalf("the agent exited %d on SIGTERM", code)
	}
	second := f.Docker.PushImage(t, f.Reg, "fleet/keep2", testenv.ImageOptions{})
	other := paktest.Pak{Kind: "Other", Registry: f.Reg.Addr, Repository: "/fleet/keep2", Digest: second}.WriteFile(t, f.Dir)
	r = f.Prepull(nil, p.Args(t, "--wide", "--keep", other)...)
	r.Want(t, 1)
	rows := r.TableRows(t)
	if len(rows) != 1 || rows[0][3] != "pulled" || rows[0][4] != "not-taken" || !strings.Contains(r.Stdout, "keep: no agent is running (stopped): it takes Other_1.0.0.prepull when it starts") {
		t.Fatalf("--keep with the agent stopped:\n%s\n%s", r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(inbox, "Other_1.0.0.prepull")); err != nil {
		t.Errorf("the file is not waiting in watch_dir: %v", err)
	}
}
