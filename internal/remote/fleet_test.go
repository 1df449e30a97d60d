//go:build unix

package remote

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/remote/sshtest"
)

// testDialer is a Dialer that trusts srv's host key and logs in with its
// identity.
func testDialer(t *testing.T, srv *sshtest.Server) *Dialer {
	t.Helper()
	kh, err := LoadKnownHosts([]string{srv.KnownHosts}, false)
	if err != nil {
		t.Fatal(err)
	}
	auth := NewAuth("", []string{srv.Identity}, "")
	t.Cleanup(func() { auth.Close() })
	return &Dialer{KnownHosts: kh, Auth: auth, Timeout: 10 * time.Second}
}

func TestDialerConnect(t *testing.T) {
	srv := sshtest.Start(t)
	d := testDialer(t, srv)
	ctx := context.Background()

	conn, err := d.Connect(ctx, []Hop{{Name: "proxy", Addr: srv.Addr, User: "root"}})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	out, err := func() ([]byte, error) {
		s, err := conn.NewSession()
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return s.Output("echo hello")
	}()
	if err != nil || string(out) != "hello\n" {
		t.Errorf("command over the connection: %q, %v", out, err)
	}
	if err := conn.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if conn.Lost() != nil {
		t.Errorf("Lost after a clean close: %v", conn.Lost())
	}

	// Through a jump host: the same server, reached through itself.
	conn, err = d.Connect(ctx, []Hop{{Name: "jump", Addr: srv.Addr, User: "j"}, {Name: "proxy", Addr: srv.Addr, User: "root"}})
	if err != nil {
		t.Fatalf("Connect through a jump host: %v", err)
	}
	conn.Close()

	tests := []struct {
		name  string
		d     *Dialer
		route []Hop
		want  string
	}{
		{name: "no route", d: d, want: "no host to connect to"},
		{name: "nothing listens", d: d, route: []Hop{{Name: "down", Addr: "127.0.0.1:1", User: "root"}}, want: "connect to 127.0.0.1:1"},
		{name: "jump host down", d: d, route: []Hop{{Name: "down", Addr: "127.0.0.1:1"}, {Name: "proxy", Addr: srv.Addr}}, want: "jump host down: connect to 127.0.0.1:1"},
		{name: "unknown host key", d: func() *Dialer {
			other := *d
			kh, err := LoadKnownHosts([]string{sshtest.Start(t).KnownHosts}, false)
			if err != nil {
				t.Fatal(err)
			}
			other.KnownHosts = kh
			return &other
		}(), route: []Hop{{Name: "proxy", Addr: srv.Addr, User: "root"}}, want: "is unknown"},
		{name: "key not accepted", d: func() *Dialer {
			other := *d
			other.Auth = NewAuth("", []string{sshtest.Start(t).Identity}, "")
			return &other
		}(), route: []Hop{{Name: "proxy", Addr: srv.Addr, User: "root"}}, want: `rejected login as "root"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tt.d.Connect(ctx, tt.route)
			if err == nil {
				conn.Close()
				t.Fatalf("connected; want an error with %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to hold %q", err, tt.want)
			}
		})
	}
}

// downDialer connects to srv except for the hosts it names, which it
// reports unreachable.
type downDialer struct {
	*Dialer
	addr string
	down map[string]bool
}

func (d downDialer) Connect(ctx context.Context, route []Hop) (*Conn, error) {
	last := route[len(route)-1]
	if d.down[last.Name] {
		return nil, errors.New("connect to " + last.Name + ": connection refused")
	}
	return d.Dialer.Connect(ctx, []Hop{{Name: last.Name, Addr: d.addr, User: last.User}})
}

func TestFleetRun(t *testing.T) {
	srv := sshtest.Start(t)
	var stderr bytes.Buffer
	f := &Fleet{
		Dialer: downDialer{Dialer: testDialer(t, srv), addr: srv.Addr, down: map[string]bool{"down": true}},
		// The input's first line is the exit status the command ends with.
		Command:  `read code; echo "out $code"; echo "err $code" >&2; exit "$code"`,
		Parallel: 2,
		Stderr:   &stderr,
		Then: func(o Output) string {
			if o.ExitStatus == 0 {
				return "cat >/dev/null; echo then"
			}
			return ""
		},
	}
	hosts := []Host{{Name: "a", Route: []Hop{{Name: "a"}}}, {Name: "down", Route: []Hop{{Name: "down"}}}, {Name: "bad", Err: errors.New("no such alias")}}
	inputs := []Input{{Name: "ok.pak", Data: []byte("0\n")}, {Name: "three.pak", Data: []byte("3\n")}}
	out := f.Run(context.Background(), hosts, inputs)

	if len(out) != 3 || len(out[0]) != 2 {
		t.Fatalf("outputs %v", out)
	}
	ok, three := out[0][0], out[0][1]
	if ok.Err != nil || ok.ExitStatus != 0 || string(ok.Stdout) != "out 0\n" || ok.LastStderr != "err 0" || ok.File != "ok.pak" || ok.Host != "a" {
		t.Errorf("first run: %+v", ok)
	}
	if ok.Then == nil || string(ok.Then.Stdout) != "then\n" {
		t.Errorf("then after the first run: %+v", ok.Then)
	}
	if three.Err != nil || three.ExitStatus != 3 || three.Then != nil {
		t.Errorf("second run: %+v", three)
	}
	for _, o := range append(out[1], out[2]...) {
		if o.Err == nil || o.ExitStatus != -1 {
			t.Errorf("run on a host not reached: %+v", o)
		}
	}
	for _, want := range []string{"a: err 0\n", "a: err 3\n", "down: connect to down: connection refused\n", "bad: no such alias\n"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), pgidMarker) {
		t.Errorf("stderr shows the process group marker:\n%s", stderr.String())
	}
}

func TestFleetRunTimeoutEndsTheCommand(t *testing.T) {
	srv := sshtest.Start(t)
	var stderr bytes.Buffer
	f := &Fleet{
		Dialer:   downDialer{Dialer: testDialer(t, srv), addr: srv.Addr},
		Command:  "cat >/dev/null; exec sleep infinity",
		Parallel: 1,
		Stderr:   &stderr,
		Timeout:  500 * time.Millisecond,
	}
	out := f.Run(context.Background(), []Host{{Name: "slow", Route: []Hop{{Name: "slow"}}}}, []Input{{Name: "x.pak"}})
	if o := out[0][0]; !errors.Is(o.Err, ErrTimedOut) {
		t.Errorf("output %+v, want ErrTimedOut", o)
	}
	// The command never ends on its own: the run ended because the timeout
	// killed it.
}

func TestFleetRunCanceledBeforeStart(t *testing.T) {
	srv := sshtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &Fleet{Dialer: downDialer{Dialer: testDialer(t, srv), addr: srv.Addr}, Command: "true", Parallel: 1, Stderr: &bytes.Buffer{}}
	out := f.Run(ctx, []Host{{Name: "a", Route: []Hop{{Name: "a"}}}}, []Input{{Name: "x.pak"}})
	if o := out[0][0]; !errors.Is(o.Err, context.Canceled) || !strings.Contains(o.Err.Error(), "not started") {
		t.Errorf("output %+v, want not started: canceled", o)
	}
}
