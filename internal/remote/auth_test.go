package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// writeKey writes a new Ed25519 private key in OpenSSH format to path,
// encrypted when passphrase is set, and returns the private key.
func writeKey(t *testing.T, path, passphrase string) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(pem.EncodeToMemory(block)))
	return priv
}

// startAgent serves an in-memory ssh-agent holding keys on a unix socket and
// returns the socket's path.
func startAgent(t *testing.T, keys ...ed25519.PrivateKey) string {
	t.Helper()
	keyring := agent.NewKeyring()
	for _, k := range keys {
		if err := keyring.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	serveConns(t, l, func(c net.Conn) { agent.ServeAgent(keyring, c) })
	return sock
}

func TestAuthMethods(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	locked := filepath.Join(dir, "locked")
	garbage := filepath.Join(dir, "garbage")
	writeKey(t, plain, "")
	lockedKey := writeKey(t, locked, "s3cret")
	writeFile(t, garbage, "not a key\n")
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeKey(t, filepath.Join(home, ".ssh", "id_ecdsa"), "") // any key type; the name is what counts
	agentSock := startAgent(t, lockedKey)
	emptyAgent := startAgent(t)

	tests := []struct {
		name       string
		agent      string
		identities []string // -i
		config     []string // ssh_config IdentityFile
		home       string
		offered    string // substring of the description of what is offered
		err        string // substring of the error
	}{
		{name: "identity file", identities: []string{plain}, offered: plain},
		{name: "ssh_config identity", config: []string{plain}, offered: plain},
		{name: "missing ssh_config identity is skipped", config: []string{filepath.Join(dir, "nope"), plain}, offered: plain},
		{name: "defaults when none named", home: home, offered: filepath.Join(home, ".ssh", "id_ecdsa")},
		{name: "defaults not used when one is named", home: home, identities: []string{plain}, offered: plain},
		{name: "locked key without agent", identities: []string{locked},
			err: "identity file " + locked + " is passphrase-protected and there is no ssh-agent to hold it (SSH_AUTH_SOCK is not set); prepull never prompts"},
		{name: "locked key skipped beside a usable one", identities: []string{locked, plain}, offered: "skipped passphrase-protected " + locked},
		{name: "locked key with its agent", agent: agentSock, identities: []string{locked}, offered: "1 ssh-agent key(s)"},
		{name: "locked key with an empty agent", agent: emptyAgent, identities: []string{locked}, err: "the ssh-agent holds no key"},
		{name: "agent alone", agent: agentSock, offered: "1 ssh-agent key(s)"},
		{name: "unreachable agent", agent: filepath.Join(dir, "gone.sock"), identities: []string{locked}, err: "gone.sock"},
		{name: "nothing at all", err: "no key to log in with: no ssh-agent (SSH_AUTH_SOCK is not set)"},
		{name: "nothing in home", home: dir, err: "none of id_ed25519, id_ecdsa, id_rsa (in " + filepath.Join(dir, ".ssh") + ") exists"},
		{name: "empty agent, nothing in home", agent: emptyAgent, home: dir, err: "nor a default key (id_ed25519, id_ecdsa, id_rsa) in " + filepath.Join(dir, ".ssh")},
		{name: "not a key", identities: []string{garbage}, err: "identity file " + garbage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAuth(tt.agent, tt.identities, tt.home)
			defer a.Close()
			methods, offered, err := a.methods(Hop{Identities: tt.config})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(methods) != 1 || !strings.Contains(offered, tt.offered) {
				t.Fatalf("offered %q (%d methods), want it to contain %q", offered, len(methods), tt.offered)
			}
		})
	}
}
