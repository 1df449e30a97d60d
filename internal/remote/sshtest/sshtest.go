//go:build unix

// Package sshtest runs an SSH server in the test process, on loopback, for
// unit tests of what prepull does over SSH. It runs each command it is asked
// to with /bin/sh in a session of its own, as sshd does, so the command lines
// prepull builds are run for real; what they run (a fake prepull) is the
// test's to choose. End-to-end tests use OpenSSH (testenv) instead.
package sshtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Server is an SSH server that lets in the holder of one key.
type Server struct {
	// Addr is the host:port it listens on.
	Addr string
	// KnownHosts is a known_hosts file that lists its host key for Addr.
	KnownHosts string
	// Identity is the private key file (OpenSSH format, no passphrase) it
	// lets in.
	Identity string

	config *ssh.ServerConfig
	wg     sync.WaitGroup
}

// Start starts a Server, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	host, _ := newKey(t)
	client, clientPriv := newKey(t)
	s := &Server{Identity: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts")}
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Identity, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), client.PublicKey().Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	s.config.AddHostKey(host)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, host.PublicKey())
	if err := os.WriteFile(s.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.wg.Wait()
	})
	return s
}

func newKey(t testing.TB) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, priv
}

// serve runs one connection: its sessions, until the client leaves.
func (s *Server) serve(c net.Conn) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs) // keepalives are answered "no", as OpenSSH does
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
		case "direct-tcpip": // a jump host's forwarding
			wg.Add(1)
			go func() {
				defer wg.Done()
				forward(nc)
			}()
			continue
		default:
			nc.Reject(ssh.UnknownChannelType, "sessions and forwarding only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			session(ch, creqs)
		}()
	}
}

// forward serves a direct-tcpip channel: a connection to a port on
// loopback, for a client that uses this server as its jump host.
func forward(nc ssh.NewChannel) {
	var to struct {
		Host       string
		Port       uint32
		OriginHost string
		OriginPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &to); err != nil || (to.Host != "127.0.0.1" && to.Host != "localhost") {
		nc.Reject(ssh.Prohibited, "loopback only")
		return
	}
	c, err := net.Dial("tcp", net.JoinHostPort(to.Host, strconv.Itoa(int(to.Port))))
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	defer c.Close()
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() { io.Copy(ch, c); ch.CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, ch); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// session serves one session channel: one exec request, signals to it.
func session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var cmd *exec.Cmd
	done := make(chan struct{})
	for req := range reqs {
		switch req.Type {
		case "exec":
			var payload struct{ Command string }
			if cmd != nil || ssh.Unmarshal(req.Payload, &payload) != nil {
				req.Reply(false, nil)
				continue
			}
			cmd = exec.Command("/bin/sh", "-c", payload.Command)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // a session and process group of its own, as sshd
			cmd.WaitDelay = time.Second
			if err := cmd.Start(); err != nil {
				req.Reply(false, nil)
				return
			}
			req.Reply(true, nil)
			go func() {
				defer close(done)
				exit(ch, cmd.Wait())
				ch.CloseWrite()
				ch.Close()
			}()
		case "signal":
			var payload struct{ Signal string }
			if cmd != nil && ssh.Unmarshal(req.Payload, &payload) == nil && payload.Signal == string(ssh.SIGTERM) {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
	if cmd != nil {
		<-done
	}
}

// exit reports how the command ended: its exit status, or the signal that
// ended it.
func exit(ch ssh.Channel, err error) {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			name := map[syscall.Signal]ssh.Signal{syscall.SIGTERM: ssh.SIGTERM, syscall.SIGKILL: ssh.SIGKILL, syscall.SIGINT: ssh.SIGINT}[ws.Signal()]
			if name == "" {
				name = ssh.Signal(ws.Signal().String())
			}
			ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
				Signal     string
				CoreDumped bool
				Message    string
				Lang       string
			}{Signal: string(name)}))
			return
		}
	}
	status := uint32(0)
	if err != nil {
		status = 255
		if ee != nil {
			status = uint32(ee.ExitCode())
		}
	}
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
}
