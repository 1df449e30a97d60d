package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// DefaultIdentities are the key files, under ~/.ssh, tried when neither -i
// nor ssh_config names one, in OpenSSH's order.
var DefaultIdentities = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// Auth proves who we are: with the keys of the ssh-agent, then with identity
// files. It never prompts: a key file with a passphrase can only be used
// through the agent.
type Auth struct {
	agent    agent.ExtendedAgent // nil without a reachable agent
	agentErr error               // why there is no agent
	conn     net.Conn

	identities []string // -i files, for every hop
	defaults   []string // existing default key files
	sshDir     string   // where the default key files are, as this system writes it

	mu   sync.Mutex
	keys map[string]loadedKey // by path
}

type loadedKey struct {
	signer ssh.Signer
	err    error
}

// NewAuth connects to the ssh-agent at agentSock (none when empty; see
// AgentAddress) and
// prepares identities (the -i files, tried for every hop) and the default
// key files under home. An agent that cannot be reached is not an error:
// its keys are simply not offered, and failures say why.
func NewAuth(agentSock string, identities []string, home string) *Auth {
	a := &Auth{identities: identities, keys: map[string]loadedKey{}, sshDir: filepath.Join("~", ".ssh")}
	if agentSock == "" {
		a.agentErr = errors.New("SSH_AUTH_SOCK is not set")
	} else if conn, err := dialAgent(agentSock); err != nil {
		a.agentErr = fmt.Errorf("ssh-agent at %s: %w", agentSock, err)
	} else {
		a.conn, a.agent = conn, agent.NewClient(conn)
	}
	if home != "" {
		a.sshDir = filepath.Join(home, ".ssh")
		for _, name := range DefaultIdentities {
			p := filepath.Join(home, ".ssh", name)
			if _, err := os.Stat(p); err == nil {
				a.defaults = append(a.defaults, p)
			}
		}
	}
	return a
}

// Close closes the connection to the agent.
func (a *Auth) Close() error {
	if a.conn == nil {
		return nil
	}
	return a.conn.Close()
}

// load reads and parses a private key file once.
func (a *Auth) load(path string) (ssh.Signer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k, ok := a.keys[path]; ok {
		return k.signer, k.err
	}
	var k loadedKey
	data, err := os.ReadFile(path)
	if err == nil {
		k.signer, err = ssh.ParsePrivateKey(data)
	}
	k.err = err
	a.keys[path] = k
	return k.signer, k.err
}

// methods returns how to log in to hop, and what it offers, for messages.
// It fails, naming the file, when no key can be offered: in particular when
// the only keys have a passphrase and no agent holds a key.
func (a *Auth) methods(hop Hop) ([]ssh.AuthMethod, string, error) {
	var signers []ssh.Signer
	var offered, locked []string
	if a.agent != nil {
		keys, err := a.agent.Signers()
		if err != nil {
			return nil, "", fmt.Errorf("ssh-agent: %w", err)
		}
		if len(keys) > 0 {
			signers = append(signers, keys...)
			offered = append(offered, fmt.Sprintf("%d ssh-agent key(s)", len(keys)))
		}
	}
	files := append(append([]string{}, a.identities...), hop.Identities...)
	if len(files) == 0 {
		files = a.defaults
	}
	seen := map[string]bool{}
	for i, f := range files {
		if seen[f] {
			continue
		}
		seen[f] = true
		s, err := a.load(f)
		var missing *ssh.PassphraseMissingError
		switch {
		case err == nil:
			signers = append(signers, s)
			offered = append(offered, f)
		case errors.As(err, &missing):
			locked = append(locked, f)
		case errors.Is(err, fs.ErrNotExist) && i >= len(a.identities):
			// Not given with -i: skip a key that is not there, as OpenSSH does.
		default:
			return nil, "", fmt.Errorf("identity file %s: %w", f, err)
		}
	}
	if len(signers) == 0 {
		switch {
		case len(locked) > 0 && a.agent == nil:
			return nil, "", fmt.Errorf("identity file %s is passphrase-protected and there is no ssh-agent to hold it (%v); prepull never prompts: load it with ssh-add, or use a key without a passphrase",
				strings.Join(locked, ", "), a.agentErr)
		case len(locked) > 0:
			return nil, "", fmt.Errorf("identity file %s is passphrase-protected and the ssh-agent holds no key; prepull never prompts: load it with ssh-add",
				strings.Join(locked, ", "))
		case a.agent == nil:
			return nil, "", fmt.Errorf("no key to log in with: no ssh-agent (%v), no -i, no IdentityFile in ssh_config, and none of %s (in %s) exists",
				a.agentErr, strings.Join(DefaultIdentities, ", "), a.sshDir)
		default:
			return nil, "", fmt.Errorf("no key to log in with: the ssh-agent holds no key, and there is no -i, no IdentityFile in ssh_config, nor a default key (%s) in %s",
				strings.Join(DefaultIdentities, ", "), a.sshDir)
		}
	}
	desc := strings.Join(offered, ", ")
	if len(locked) > 0 {
		desc += "; skipped passphrase-protected " + strings.Join(locked, ", ")
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, desc, nil
}
