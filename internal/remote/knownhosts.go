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

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// UnknownHostError refuses a host that no known_hosts file lists.
type UnknownHostError struct {
	Host string        // as looked up, e.g. "[127.0.0.1]:2222"
	Key  ssh.PublicKey // the key the host offered
	File string        // where --accept-new would record it
}

func (e *UnknownHostError) Error() string {
	return fmt.Sprintf("host %s is unknown (%s key %s); run with --accept-new to trust it, or add it to %s",
		e.Host, keyKind(e.Key), ssh.FingerprintSHA256(e.Key), e.File)
}

// HostKeyChangedError refuses a host whose key is not the one recorded.
type HostKeyChangedError struct {
	Host string
	Key  ssh.PublicKey          // the key the host offered
	Want []xknownhosts.KnownKey // the keys recorded for it
}

func (e *HostKeyChangedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "WARNING: host key for %s CHANGED: it offered %s key %s, but ",
		e.Host, keyKind(e.Key), ssh.FingerprintSHA256(e.Key))
	for i, w := range e.Want {
		if i > 0 {
			b.WriteString(", ")
		}
		if w.Filename == "" {
			fmt.Fprintf(&b, "%s key %s was accepted earlier in this run", keyKind(w.Key), ssh.FingerprintSHA256(w.Key))
			continue
		}
		fmt.Fprintf(&b, "%s:%d has %s key %s", w.Filename, w.Line, keyKind(w.Key), ssh.FingerprintSHA256(w.Key))
	}
	b.WriteString("; someone may be intercepting the connection, or the host was reinstalled; refusing to connect")
	if len(e.Want) > 0 && e.Want[0].Filename != "" {
		fmt.Fprintf(&b, " (if the change is expected, remove the old key with: ssh-keygen -R %s -f %s)",
			Quote(e.Host), Quote(e.Want[0].Filename))
	}
	return b.String()
}

// keyKind names a key type as OpenSSH prints it, e.g. "ED25519".
func keyKind(k ssh.PublicKey) string {
	switch t := k.Type(); {
	case t == ssh.KeyAlgoED25519:
		return "ED25519"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ECDSA"
	case t == ssh.KeyAlgoRSA:
		return "RSA"
	case t == ssh.KeyAlgoSKED25519:
		return "ED25519-SK"
	case t == ssh.KeyAlgoSKECDSA256:
		return "ECDSA-SK"
	default:
		return t
	}
}

// KnownHosts checks host keys against known_hosts files, strictly: an
// unknown host is refused unless accept-new is on, and a changed key is
// always refused.
type KnownHosts struct {
	files     []string // every file given; the first receives accepted keys
	db        *knownhosts.HostKeyDB
	acceptNew bool

	mu       sync.Mutex
	accepted map[string]ssh.PublicKey // keys accepted in this run, by normalized host
}

// LoadKnownHosts reads the known_hosts files (hashed entries too). Files that
// do not exist are read as empty. With acceptNew, the key of an unknown host
// is appended to the first file, which is created (0600) if missing, as
// OpenSSH's StrictHostKeyChecking=accept-new does.
func LoadKnownHosts(files []string, acceptNew bool) (*KnownHosts, error) {
	if len(files) == 0 {
		return nil, errors.New("known_hosts: no file given")
	}
	var existing []string
	for _, f := range files {
		_, err := os.Stat(f)
		switch {
		case err == nil:
			existing = append(existing, f)
		case errors.Is(err, fs.ErrNotExist):
		default:
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
	}
	db, err := knownhosts.NewDB(existing...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	return &KnownHosts{files: files, db: db, acceptNew: acceptNew, accepted: map[string]ssh.PublicKey{}}, nil
}

// Algorithms returns the host key algorithms to offer addr: only those of
// the keys recorded for it, so that a host that also has a key of another
// type cannot make a recorded host look changed (or slip past its recorded
// key). Nil, meaning every algorithm, for an unknown host.
func (k *KnownHosts) Algorithms(addr string) []string {
	algos := k.db.HostKeyAlgorithms(addr)
	k.mu.Lock()
	key, ok := k.accepted[knownhosts.Normalize(addr)]
	k.mu.Unlock()
	if ok && len(algos) == 0 {
		algos = []string{key.Type()}
		if key.Type() == ssh.KeyAlgoRSA {
			algos = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
	}
	return algos
}

// Callback returns the host key check for ssh.ClientConfig.
func (k *KnownHosts) Callback() ssh.HostKeyCallback {
	check := k.db.HostKeyCallback()
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var keyErr *xknownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case knownhosts.IsHostKeyChanged(err) && errors.As(err, &keyErr):
			return &HostKeyChangedError{Host: knownhosts.Normalize(hostname), Key: key, Want: keyErr.Want}
		case knownhosts.IsHostUnknown(err):
			return k.unknown(hostname, key)
		default:
			return fmt.Errorf("known_hosts: %w", err)
		}
	}
}

// unknown decides on a host no file lists: refused, or recorded with
// accept-new. A host accepted earlier in this run must offer the same key.
func (k *KnownHosts) unknown(hostname string, key ssh.PublicKey) error {
	host := knownhosts.Normalize(hostname)
	k.mu.Lock()
	defer k.mu.Unlock()
	if prev, ok := k.accepted[host]; ok {
		if string(prev.Marshal()) == string(key.Marshal()) {
			return nil
		}
		return &HostKeyChangedError{Host: host, Key: key, Want: []xknownhosts.KnownKey{{Key: prev}}}
	}
	if !k.acceptNew {
		return &UnknownHostError{Host: host, Key: key, File: k.files[0]}
	}
	if err := appendKnownHost(k.files[0], knownhosts.Line([]string{hostname}, key)); err != nil {
		return err
	}
	k.accepted[host] = key
	return nil
}

// appendKnownHost appends line to the known_hosts file at path, creating it
// (0600) and its directory (0700) when missing.
func appendKnownHost(path, line string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	// A file that does not end in a newline would glue the line to its last.
	last := make([]byte, 1)
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("known_hosts: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	return nil
}
