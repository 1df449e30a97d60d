package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Keepalive defaults, used unless ssh_config sets ServerAliveInterval and
// ServerAliveCountMax for the host.
const (
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultKeepaliveCountMax = 3
)

// Connector opens an SSH connection along a route. A Fleet connects with
// one; *Dialer is the one prepull uses.
type Connector interface {
	Connect(ctx context.Context, route []Hop) (*Conn, error)
}

// Dialer opens SSH connections, through jump hosts where the route has them,
// checking every host key and logging in to every hop.
type Dialer struct {
	KnownHosts *KnownHosts
	Auth       *Auth
	// Timeout bounds the TCP connection and the SSH handshake (login
	// included) of each hop.
	Timeout time.Duration
}

// Conn is an SSH connection to the last hop of a route.
type Conn struct {
	*ssh.Client
	jumps []*ssh.Client // the connections it goes through, first to last

	stopKeepalive context.CancelFunc
	mu            sync.Mutex
	lost          error // why the keepalive gave up, if it did
}

// Lost returns why the connection was given up as dead, or nil.
func (c *Conn) Lost() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// Close closes the connection and those it goes through.
func (c *Conn) Close() error {
	c.stopKeepalive()
	err := c.Client.Close()
	for i := len(c.jumps) - 1; i >= 0; i-- {
		c.jumps[i].Close()
	}
	return err
}

// Connect connects to the last hop of route through the others. The
// connection sends keepalives and closes itself when they go unanswered.
func (d *Dialer) Connect(ctx context.Context, route []Hop) (*Conn, error) {
	if len(route) == 0 {
		return nil, errors.New("no host to connect to")
	}
	var jumps []*ssh.Client
	closeJumps := func() {
		for i := len(jumps) - 1; i >= 0; i-- {
			jumps[i].Close()
		}
	}
	var client *ssh.Client
	for i, hop := range route {
		conn, err := d.dial(ctx, jumps, hop)
		if err == nil {
			client, err = d.handshake(ctx, conn, hop)
		}
		if err != nil {
			closeJumps()
			if i < len(route)-1 {
				return nil, fmt.Errorf("jump host %s: %w", hop.Name, err)
			}
			return nil, err
		}
		if i < len(route)-1 {
			jumps = append(jumps, client)
		}
	}
	last := route[len(route)-1]
	interval, countMax := last.KeepaliveInterval, last.KeepaliveCountMax
	if interval == 0 {
		interval = DefaultKeepaliveInterval
	}
	if countMax == 0 {
		countMax = DefaultKeepaliveCountMax
	}
	kctx, stop := context.WithCancel(context.Background())
	c := &Conn{Client: client, jumps: jumps, stopKeepalive: stop}
	go func() {
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		keepalive(kctx, client, ticker.C, interval, countMax, c.lose)
	}()
	return c, nil
}

// lose records why the connection was lost and closes it.
func (c *Conn) lose(err error) {
	c.mu.Lock()
	c.lost = err
	c.mu.Unlock()
	c.Close()
}

// dial opens the transport to hop: TCP for the first hop, a channel through
// the previous hop after that.
func (d *Dialer) dial(ctx context.Context, jumps []*ssh.Client, hop Hop) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	var conn net.Conn
	var err error
	if len(jumps) == 0 {
		var dialer net.Dialer
		conn, err = dialer.DialContext(ctx, "tcp", hop.Addr)
	} else {
		conn, err = jumps[len(jumps)-1].DialContext(ctx, "tcp", hop.Addr)
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("connect to %s: no answer within %v", hop.Addr, d.Timeout)
		}
		return nil, fmt.Errorf("connect to %s: %w", hop.Addr, err)
	}
	return conn, nil
}

// handshake runs the SSH handshake and login on conn, within the timeout and
// until ctx ends, whichever comes first.
func (d *Dialer) handshake(ctx context.Context, conn net.Conn, hop Hop) (*ssh.Client, error) {
	methods, offered, err := d.Auth.methods(hop)
	if err != nil {
		conn.Close()
		return nil, err
	}
	config := &ssh.ClientConfig{
		User:              hop.User,
		Auth:              methods,
		HostKeyCallback:   d.KnownHosts.Callback(),
		HostKeyAlgorithms: d.KnownHosts.Algorithms(hop.Addr),
	}
	// Deadlines do not work on a channel through a jump host, so a timer
	// closes the connection instead.
	timer := time.AfterFunc(d.Timeout, func() { conn.Close() })
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, hop.Addr, config)
	inTime, notCanceled := timer.Stop(), stop()
	switch {
	case err == nil && inTime && notCanceled:
		return ssh.NewClient(c, chans, reqs), nil
	case err == nil:
		c.Close()
	}
	var unknown *UnknownHostError
	var changed *HostKeyChangedError
	switch {
	case errors.As(err, &unknown):
		return nil, unknown
	case errors.As(err, &changed):
		return nil, changed
	case !notCanceled:
		return nil, fmt.Errorf("ssh to %s: %w", hop.Addr, context.Cause(ctx))
	case !inTime:
		return nil, fmt.Errorf("ssh to %s: no SSH handshake within %v", hop.Addr, d.Timeout)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return nil, fmt.Errorf("ssh to %s: the server rejected login as %q (offered %s)", hop.Addr, hop.User, offered)
	default:
		return nil, fmt.Errorf("ssh to %s: %w", hop.Addr, err)
	}
}

// requester is the part of an SSH connection that keepalive uses.
type requester interface {
	SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error)
}

// keepalive sends a keepalive@openssh.com request at each tick (interval
// apart), as OpenSSH's ServerAliveInterval does, until ctx ends. When
// countMax of them in a row go unanswered, or sending fails, it calls dead
// once and returns. The caller owns the ticks, so a test can give them.
func keepalive(ctx context.Context, conn requester, ticks <-chan time.Time, interval time.Duration, countMax int, dead func(error)) {
	replies := make(chan error, 1)
	l := liveness{countMax: countMax}
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-replies:
			if err != nil {
				dead(fmt.Errorf("connection lost: %w", err))
				return
			}
			l.answered()
		case <-ticks:
			send, gone := l.tick()
			if gone {
				dead(fmt.Errorf("connection lost: no answer to %d keepalives %v apart", l.missed, interval))
				return
			}
			if send {
				go func() {
					// Any reply, even a refusal, shows the server is alive.
					_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
					replies <- err
				}()
			}
		}
	}
}

// liveness counts the ticks a keepalive request has been out unanswered.
type liveness struct {
	countMax int
	waiting  bool // a request is out
	missed   int  // ticks since it went out
}

// tick says whether to send a request now, or that countMax ticks have
// passed without an answer.
func (l *liveness) tick() (send, gone bool) {
	if !l.waiting {
		l.waiting = true
		return true, false
	}
	l.missed++
	return false, l.missed >= l.countMax
}

// answered records an answer to the request that is out.
func (l *liveness) answered() {
	l.waiting, l.missed = false, 0
}
