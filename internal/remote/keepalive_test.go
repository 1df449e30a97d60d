package remote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLiveness(t *testing.T) {
	// Events: 't' a tick, 'a' an answer to the request that is out.
	tests := []struct {
		events string
		sends  int  // requests sent
		gone   bool // given up after the last event
	}{
		{events: "t", sends: 1},
		{events: "tatata", sends: 3},
		{events: "ttta", sends: 1},      // answered after two missed ticks: alive
		{events: "tttatttat", sends: 3}, // missed ticks reset on each answer
		{events: "tttt", sends: 1, gone: true},
		{events: "ttatttt", sends: 2, gone: true},
	}
	for _, tt := range tests {
		t.Run(tt.events, func(t *testing.T) {
			l := liveness{countMax: 3}
			sends, gone := 0, false
			for i, e := range tt.events {
				if gone {
					t.Fatalf("gave up at event %d of %q", i, tt.events)
				}
				if e == 'a' {
					l.answered()
					continue
				}
				send, g := l.tick()
				if send {
					sends++
				}
				gone = g
			}
			if sends != tt.sends || gone != tt.gone {
				t.Errorf("sent %d, gave up %v; want %d, %v", sends, gone, tt.sends, tt.gone)
			}
		})
	}
}

// fakeConn hands each keepalive request to the test and returns its answer.
type fakeConn struct {
	asked  chan struct{}
	answer chan error
}

func (f *fakeConn) SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error) {
	if name != "keepalive@openssh.com" || !wantReply {
		return false, nil, errors.New("not a keepalive")
	}
	f.asked <- struct{}{}
	return false, nil, <-f.answer
}

// TestKeepalive drives the loop by hand: each tick is a send the loop must
// take, so the outcome follows from ticks and answers, not from time.
func TestKeepalive(t *testing.T) {
	tests := []struct {
		name   string
		answer error // the first request's answer; nil: none, ever
		dead   string
	}{
		{name: "never answers", dead: "no answer to 3 keepalives 1s apart"},
		{name: "send fails", answer: errors.New("EOF"), dead: "connection lost: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			conn := &fakeConn{asked: make(chan struct{}), answer: make(chan error, 1)}
			ticks := make(chan time.Time)
			died := make(chan error, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				keepalive(ctx, conn, ticks, time.Second, 3, func(err error) { died <- err })
			}()
			ticks <- time.Time{}
			<-conn.asked
			if tt.answer != nil {
				conn.answer <- tt.answer
			} else {
				for range 3 {
					ticks <- time.Time{}
				}
			}
			if err := <-died; !strings.Contains(err.Error(), tt.dead) {
				t.Errorf("gave up: %v; want %q", err, tt.dead)
			}
			<-done
			conn.answer <- nil // lets the request's goroutine end
		})
	}
}

func TestKeepaliveEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	conn := &fakeConn{asked: make(chan struct{}), answer: make(chan error, 1)}
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() {
		defer close(done)
		keepalive(ctx, conn, ticks, time.Second, 3, func(err error) { t.Errorf("gave up: %v", err) })
	}()
	ticks <- time.Time{}
	<-conn.asked
	conn.answer <- nil
	cancel()
	<-done
}
