package remote

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConn answers keepalive requests after delay, with err; never when
// delay is negative.
type fakeConn struct {
	delay time.Duration
	err   error
	sent  atomic.Int32
}

func (f *fakeConn) SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error) {
	f.sent.Add(1)
	if name != "keepalive@openssh.com" || !wantReply {
		return false, nil, errors.New("not a keepalive")
	}
	if f.delay < 0 {
		select {} // a dead peer: no answer, ever
	}
	time.Sleep(f.delay)
	return false, nil, f.err
}

func TestKeepalive(t *testing.T) {
	const every = 40 * time.Millisecond
	tests := []struct {
		name string
		conn *fakeConn
		dead string // substring of the reason; empty when it must stay alive
	}{
		{name: "answers", conn: &fakeConn{}},
		{name: "answers slowly but within the count", conn: &fakeConn{delay: every * 3 / 2}},
		{name: "never answers", conn: &fakeConn{delay: -1}, dead: "no answer to 3 keepalives"},
		{name: "send fails", conn: &fakeConn{err: errors.New("EOF")}, dead: "connection lost: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			died := make(chan error, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				keepalive(ctx, tt.conn, every, 3, func(err error) { died <- err })
			}()
			if tt.dead != "" {
				if err := <-died; !strings.Contains(err.Error(), tt.dead) {
					t.Fatalf("gave up: %v; want %q", err, tt.dead)
				}
			}
			// Bounded by keepalives sent, not by a guess at the time they
			// take: alive through 6 of them.
			for tt.dead == "" && tt.conn.sent.Load() < 6 {
				select {
				case err := <-died:
					t.Fatalf("gave up after %d keepalives: %v", tt.conn.sent.Load(), err)
				case <-time.After(every): // pacing between looks at the count
				}
			}
			cancel()
			<-done
		})
	}
}
