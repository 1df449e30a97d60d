//go:build linux

package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv/await"
)

var (
	partSSHD      = part{name: "sshd", pkg: "openssh-server", prefer: "/usr/sbin/sshd", purpose: "the OpenSSH server"}
	partSSHKeygen = part{name: "ssh-keygen", pkg: "openssh-client", purpose: "SSH key generation"}
	partSSHAgent  = part{name: "ssh-agent", pkg: "openssh-client", purpose: "the SSH agent"}
	partSSHAdd    = part{name: "ssh-add", pkg: "openssh-client", purpose: "loading keys into the SSH agent"}
)

// SSHKey is a key pair made with ssh-keygen in a test's temporary directory.
type SSHKey struct {
	// Path is the private key file; Path+".pub" is the public one.
	Path string
	// Public is the public key as one authorized_keys line,
	// "ssh-ed25519 AAAA… comment".
	Public string
}

// NewSSHKey generates an Ed25519 key pair with ssh-keygen, protected by
// passphrase when it is not empty, in a new temporary directory of t.
func NewSSHKey(t testing.TB, passphrase string) SSHKey {
	t.Helper()
	Require(t)
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := generateKey(partSSHKeygen.mustPath(t), path, passphrase); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return SSHKey{Path: path, Public: strings.TrimSpace(string(pub))}
}

// generateKey runs ssh-keygen for a new Ed25519 key at path, replacing any.
func generateKey(keygen, path, passphrase string) error {
	_ = os.Remove(path)
	_ = os.Remove(path + ".pub")
	if _, err := runCmd(os.Environ(), nil, keygen, "-q", "-t", "ed25519", "-N", passphrase, "-C", "testenv", "-f", path); err != nil {
		return fmt.Errorf("generate an SSH key: %w", err)
	}
	return nil
}

// SSHDOptions configure StartSSHD.
type SSHDOptions struct {
	// AuthorizedKeys are the public keys, one authorized_keys line each,
	// that may log in, as any user (root included).
	AuthorizedKeys []string
	// Env holds NAME=VALUE pairs set in every session (sshd's SetEnv), for
	// what tells one test server from another. Values must not hold spaces.
	Env []string
}

// SSHD is a real OpenSSH server (sshd of Debian's openssh-server) on a free
// port of 127.0.0.1, with an Ed25519 host key of its own, public key logins
// only, stopped when its test ends. Commands run as the user who logs in,
// with the clean environment sshd gives them.
type SSHD struct {
	dir     string
	config  string
	hostKey string
	bin     string
	keygen  string
	setEnv  []string // sshd_config SetEnv
	port    int

	service
}

// StartSSHD generates a host key, starts sshd on a free port of 127.0.0.1
// and waits until it sends its banner. It calls Require; the server is
// stopped when t ends, and the tail of its log is logged if t failed.
func StartSSHD(t testing.TB, opts SSHDOptions) *SSHD {
	t.Helper()
	Require(t)
	s := &SSHD{dir: t.TempDir(), bin: partSSHD.mustPath(t), keygen: partSSHKeygen.mustPath(t), setEnv: opts.Env}
	for _, kv := range s.setEnv {
		if !strings.Contains(kv, "=") || strings.ContainsAny(kv, " \t\n\"") {
			t.Fatalf("testenv: SSHDOptions.Env %q is not NAME=VALUE without spaces", kv)
		}
	}
	if abs, err := filepath.Abs(s.bin); err == nil {
		s.bin = abs // sshd re-executes itself and insists on an absolute path
	}
	s.config = filepath.Join(s.dir, "sshd_config")
	s.hostKey = filepath.Join(s.dir, "ssh_host_ed25519_key")
	s.service = service{
		name:    "sshd",
		logPath: filepath.Join(s.dir, "sshd.log"),
		env:     cleanEnv([]string{"SSH_"}),
		argv:    []string{s.bin, "-D", "-e", "-f", s.config},
		probe:   s.probe,
		grace:   5 * time.Second,
	}
	// sshd's privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := generateKey(s.keygen, s.hostKey, ""); err != nil {
		t.Fatalf("testenv: sshd host key: %v", err)
	}
	authorized := strings.Join(opts.AuthorizedKeys, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(s.dir, "authorized_keys"), []byte(authorized), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: last lines of %s:\n%s", s.logPath, logTail(s.logPath, 30))
		}
		if err := s.stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})

	// The port was free a moment ago; another process may take it first.
	var err error
	for try := 0; try < 5; try++ {
		if s.port, err = freePort(); err != nil {
			break
		}
		if err = s.writeConfig(); err != nil {
			break
		}
		if err = s.start(await.Limit(t)); err == nil || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("testenv: start sshd: %v", err)
	}
	return s
}

// writeConfig writes sshd_config for s.port.
func (s *SSHD) writeConfig() error {
	config := fmt.Sprintf(`# testenv: one sshd of one test
ListenAddress 127.0.0.1:%d
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin yes
StrictModes no
UsePAM no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding yes
MaxStartups 100
MaxSessions 100
LogLevel VERBOSE
`, s.port, s.hostKey, filepath.Join(s.dir, "sshd.pid"), filepath.Join(s.dir, "authorized_keys"))
	if len(s.setEnv) > 0 {
		config += "SetEnv " + strings.Join(s.setEnv, " ") + "\n"
	}
	if err := os.WriteFile(s.config, []byte(config), 0o600); err != nil {
		return fmt.Errorf("write sshd_config: %w", err)
	}
	return nil
}

// Addr returns "127.0.0.1:PORT". It stays the same across Stop and Start.
func (s *SSHD) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Log returns what the server has logged so far (LogLevel VERBOSE): a test
// reads from it what happened in which order, "Accepted publickey" say.
func (s *SSHD) Log() string {
	data, _ := os.ReadFile(s.logPath)
	return string(data)
}

// Port returns the server's port.
func (s *SSHD) Port() int { return s.port }

// HostKeyLine returns the server's current host key as a known_hosts line,
// "[127.0.0.1]:PORT ssh-ed25519 AAAA…".
func (s *SSHD) HostKeyLine(t testing.TB) string {
	t.Helper()
	pub, err := os.ReadFile(s.hostKey + ".pub")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	fields := strings.Fields(string(pub))
	if len(fields) < 2 {
		t.Fatalf("testenv: %s.pub is not a public key", s.hostKey)
	}
	return fmt.Sprintf("[127.0.0.1]:%d %s %s", s.port, fields[0], fields[1])
}

// ReplaceHostKey gives the server a new Ed25519 host key and restarts it, as
// a reinstalled host (or a man in the middle) would present.
func (s *SSHD) ReplaceHostKey(t testing.TB) {
	t.Helper()
	s.Stop(t)
	if err := generateKey(s.keygen, s.hostKey, ""); err != nil {
		t.Fatalf("testenv: sshd host key: %v", err)
	}
	s.Start(t)
}

// Start starts the server again after Stop, on the same address and host
// key, and waits until it answers.
func (s *SSHD) Start(t testing.TB) {
	t.Helper()
	if err := s.start(await.Limit(t)); err != nil {
		t.Fatalf("testenv: start sshd: %v", err)
	}
}

// Stop stops the server; its address then refuses connections. Sessions
// already open keep running until their client leaves.
func (s *SSHD) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// probe checks that the server sends an SSH-2.0 banner.
func (s *SSHD) probe() error {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the banner: %w", err)
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("banner %q is not SSH-2.0", strings.TrimSpace(line))
	}
	return nil
}

// SSHAgent is a real ssh-agent (of Debian's openssh-client) listening on a
// socket in a test's temporary directory, stopped when its test ends.
type SSHAgent struct {
	// Sock is the agent's socket, for SSH_AUTH_SOCK.
	Sock string

	proc *process
}

// StartSSHAgent starts an ssh-agent with no keys and waits for its socket.
func StartSSHAgent(t testing.TB) *SSHAgent {
	t.Helper()
	Require(t)
	bin := partSSHAgent.mustPath(t)
	dir := t.TempDir()
	a := &SSHAgent{Sock: filepath.Join(dir, "agent.sock")}
	logPath := filepath.Join(dir, "ssh-agent.log")
	p, err := startProcess("ssh-agent", logPath, cleanEnv([]string{"SSH_"}), bin, "-D", "-a", a.Sock)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	a.proc = p
	t.Cleanup(func() {
		if err := p.stop(5*time.Second, nil); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	err = p.waitReady(await.Limit(t), func() error {
		c, err := net.Dial("unix", a.Sock)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		t.Fatalf("testenv: start ssh-agent: %v", err)
	}
	return a
}

// Add loads key into the agent with ssh-add, giving passphrase through
// SSH_ASKPASS as a desktop would, never through a terminal.
func (a *SSHAgent) Add(t testing.TB, key SSHKey, passphrase string) {
	t.Helper()
	askpass := filepath.Join(t.TempDir(), "askpass")
	script := "#!/bin/sh\nprintf '%s\\n' \"$TESTENV_PASSPHRASE\"\n"
	if err := os.WriteFile(askpass, []byte(script), 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	env := cleanEnv([]string{"SSH_", "DISPLAY="},
		"SSH_AUTH_SOCK="+a.Sock,
		"SSH_ASKPASS="+askpass,
		"SSH_ASKPASS_REQUIRE=force",
		"DISPLAY=testenv:0",
		"TESTENV_PASSPHRASE="+passphrase,
	)
	if _, err := runCmd(env, nil, partSSHAdd.mustPath(t), key.Path); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
