package remote

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

func newEd25519(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newECDSA(t *testing.T) ssh.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

var anyAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}

func TestKnownHostsDecisions(t *testing.T) {
	known, other, hashedKey := newEd25519(t).PublicKey(), newEd25519(t).PublicKey(), newECDSA(t).PublicKey()
	dir := t.TempDir()
	file := filepath.Join(dir, "known_hosts")
	hashed := xknownhosts.HashHostname(knownhosts.Normalize("10.1.1.1:22"))
	writeFile(t, file, knownhosts.Line([]string{"127.0.0.1:2222"}, known)+"\n"+
		hashed+" "+hashedKey.Type()+" "+strings.Fields(string(ssh.MarshalAuthorizedKey(hashedKey)))[1]+"\n")

	tests := []struct {
		name      string
		host      string
		key       ssh.PublicKey
		acceptNew bool
		want      string // "ok", "unknown" or "changed"
	}{
		{name: "known", host: "127.0.0.1:2222", key: known, want: "ok"},
		{name: "hashed entry", host: "10.1.1.1:22", key: hashedKey, want: "ok"},
		{name: "hashed entry changed", host: "10.1.1.1:22", key: known, want: "changed"},
		{name: "changed", host: "127.0.0.1:2222", key: other, want: "changed"},
		{name: "changed with accept-new", host: "127.0.0.1:2222", key: other, acceptNew: true, want: "changed"},
		{name: "other port is another host", host: "127.0.0.1:2223", key: known, want: "unknown"},
		{name: "unknown", host: "192.0.2.1:22", key: other, want: "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKnownHosts([]string{file}, tt.acceptNew)
			if err != nil {
				t.Fatal(err)
			}
			err = k.Callback()(tt.host, anyAddr, tt.key)
			var unknown *UnknownHostError
			var changed *HostKeyChangedError
			got := "ok"
			switch {
			case errors.As(err, &unknown):
				got = "unknown"
			case errors.As(err, &changed):
				got = "changed"
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Fatalf("decision %s (%v), want %s", got, err, tt.want)
			}
		})
	}
}

func TestKnownHostsMessages(t *testing.T) {
	key, other := newEd25519(t).PublicKey(), newEd25519(t).PublicKey()
	dir := t.TempDir()
	file := filepath.Join(dir, "known_hosts")
	writeFile(t, file, knownhosts.Line([]string{"127.0.0.1:2222"}, key)+"\n")
	k, err := LoadKnownHosts([]string{file}, false)
	if err != nil {
		t.Fatal(err)
	}

	err = k.Callback()("127.0.0.1:2200", anyAddr, other)
	want := "host [127.0.0.1]:2200 is unknown (ED25519 key " + ssh.FingerprintSHA256(other) + "); run with --accept-new to trust it, or add it to " + file
	if err == nil || err.Error() != want {
		t.Errorf("unknown host:\n got %v\nwant %s", err, want)
	}

	err = k.Callback()("127.0.0.1:2222", anyAddr, other)
	for _, part := range []string{"WARNING: host key for [127.0.0.1]:2222 CHANGED", ssh.FingerprintSHA256(other),
		file + ":1 has ED25519 key " + ssh.FingerprintSHA256(key), "refusing", "ssh-keygen -R '[127.0.0.1]:2222' -f " + file} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("changed key: %v\nlacks %q", err, part)
		}
	}
}

func TestKnownHostsAcceptNew(t *testing.T) {
	key, other := newEd25519(t).PublicKey(), newEd25519(t).PublicKey()
	dir := t.TempDir()
	file := filepath.Join(dir, "sub", "known_hosts") // neither exists yet
	system := filepath.Join(dir, "ssh_known_hosts")
	writeFile(t, system, knownhosts.Line([]string{"10.0.0.1"}, other)+"\n")

	k, err := LoadKnownHosts([]string{file, system}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Callback()("127.0.0.1:2222", anyAddr, key); err != nil {
		t.Fatalf("accept-new refused an unknown host: %v", err)
	}
	if got := k.Algorithms("127.0.0.1:2222"); len(got) != 1 || got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("Algorithms after accepting = %q, want only %s", got, ssh.KeyAlgoED25519)
	}
	// Once in this run, and not again.
	if err := k.Callback()("127.0.0.1:2222", anyAddr, key); err != nil {
		t.Fatalf("second connection: %v", err)
	}
	// Accepted in this run with another key: changed.
	var changed *HostKeyChangedError
	if err := k.Callback()("127.0.0.1:2222", anyAddr, other); !errors.As(err, &changed) {
		t.Fatalf("another key for a host accepted in this run: %v, want a changed key", err)
	}
	// A host of the second file changed: refused even with accept-new.
	if err := k.Callback()("10.0.0.1:22", anyAddr, key); !errors.As(err, &changed) {
		t.Fatalf("changed key with accept-new: %v, want refused", err)
	}

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := knownhosts.Line([]string{"127.0.0.1:2222"}, key) + "\n"
	if string(data) != want {
		t.Fatalf("known_hosts holds %q, want %q", data, want)
	}
	if !strings.HasPrefix(want, "[127.0.0.1]:2222 ssh-ed25519 ") {
		t.Fatalf("line %q does not bracket the port", want)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts mode: %v %v, want 0600", fi.Mode(), err)
	}
	if data, _ := os.ReadFile(system); strings.Contains(string(data), "2222") {
		t.Fatal("accept-new wrote to the second file")
	}

	// A new run knows the host without --accept-new.
	k2, err := LoadKnownHosts([]string{file, system}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := k2.Callback()("127.0.0.1:2222", anyAddr, key); err != nil {
		t.Fatalf("recorded host in a new run: %v", err)
	}
}

func TestAppendKnownHostNoFinalNewline(t *testing.T) {
	file := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, file, "# no newline at the end")
	if err := appendKnownHost(file, "h ssh-ed25519 AAAA"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	if string(data) != "# no newline at the end\nh ssh-ed25519 AAAA\n" {
		t.Fatalf("file = %q", data)
	}
}

// startHostKeyServer starts an in-process SSH server on loopback offering
// hostKeys that lets anyone in, and returns its address. It only serves the
// handshake: enough to test host key checking.
func startHostKeyServer(t *testing.T, hostKeys ...ssh.Signer) string {
	t.Helper()
	config := &ssh.ServerConfig{NoClientAuth: true}
	for _, k := range hostKeys {
		config.AddHostKey(k)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveConns(t, l, func(c net.Conn) {
		sc, chans, reqs, err := ssh.NewServerConn(c, config)
		if err != nil {
			return
		}
		defer sc.Close()
		go ssh.DiscardRequests(reqs)
		for ch := range chans {
			ch.Reject(ssh.Prohibited, "handshake only")
		}
	})
	return l.Addr().String()
}

// serveConns accepts connections on l until the test ends, each served by
// handle in a goroutine of its own and closed after it.
func serveConns(t *testing.T, l net.Listener, handle func(net.Conn)) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// TestHostKeyAlgorithmsPitfall: a server that has an ECDSA and an Ed25519
// key, known only by its Ed25519 key. Offering every algorithm, the client
// prefers ECDSA, gets that key and takes the host for changed; restricted to
// the recorded types, it connects.
func TestHostKeyAlgorithmsPitfall(t *testing.T) {
	ed, ec := newEd25519(t), newECDSA(t)
	addr := startHostKeyServer(t, ed, ec)
	file := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, file, knownhosts.Line([]string{addr}, ed.PublicKey())+"\n")
	k, err := LoadKnownHosts([]string{file}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Algorithms(addr); len(got) != 1 || got[0] != ssh.KeyAlgoED25519 {
		t.Fatalf("Algorithms(%s) = %q, want only %s", addr, got, ssh.KeyAlgoED25519)
	}

	dial := func(algos []string) error {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "u", HostKeyCallback: k.Callback(), HostKeyAlgorithms: algos})
		if err == nil {
			c.Close()
		}
		return err
	}
	var changed *HostKeyChangedError
	if err := dial(nil); !errors.As(err, &changed) {
		t.Fatalf("unrestricted: %v; want the pitfall (a changed key)", err)
	}
	if err := dial(k.Algorithms(addr)); err != nil {
		t.Fatalf("restricted to the recorded types: %v", err)
	}

	// A genuinely changed key of the recorded type is still refused.
	addr2 := startHostKeyServer(t, newEd25519(t), ec)
	writeFile(t, file, knownhosts.Line([]string{addr2}, ed.PublicKey())+"\n")
	k, err = LoadKnownHosts([]string{file}, true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", addr2, &ssh.ClientConfig{User: "u", HostKeyCallback: k.Callback(), HostKeyAlgorithms: k.Algorithms(addr2)})
	if err == nil {
		c.Close()
	}
	if !errors.As(err, &changed) {
		t.Fatalf("changed key of the recorded type: %v, want refused", err)
	}
}
