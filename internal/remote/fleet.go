package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/prepull/prepull/internal/display"
)

// maxStdout bounds what is kept of a command's standard output: the
// one-shot's JSON result is small.
const maxStdout = 1 << 20

// cancelGrace bounds each step of ending a canceled command: killing its
// process group, then waiting for its session to end.
const cancelGrace = 2 * time.Second

// pgidMarker starts the first line of standard error, in which the remote
// shell reports its process group before it runs the command. sshd puts each
// command in a session and process group of its own, so that a canceled
// command and everything it started can be ended from a second session even
// where sshd refuses signal requests, as OpenSSH does for root logins.
const pgidMarker = "prepull-remote-pgid="

// Host is one destination of a fleet run.
type Host struct {
	// Name is the destination as written; it prefixes the host's stderr lines.
	Name string
	// Route leads to the host (see SSHConfig.Route).
	Route []Hop
	// Err, when set, is why the destination could not be resolved: the
	// host is not contacted and each of its outputs carries Err.
	Err error
}

// Output is what one run of the command on one host produced.
type Output struct {
	Host string // Host.Name
	File string // Input.Name of what was sent on its standard input

	// Stdout is the command's standard output, up to 1 MiB.
	Stdout []byte
	// ExitStatus is the command's exit status, or -1 when it reported none.
	ExitStatus int
	// Signal names the signal that ended the command, if one did.
	Signal string
	// LastStderr is the last non-empty line of its standard error.
	LastStderr string
	// Err is why the command did not run to an exit status: no connection,
	// a lost connection, cancellation. Nil when it has an exit status.
	Err error
	// Command is the command line that ran.
	Command string
	// Duration is the wall time of the run, streaming included; for a host
	// that could not be reached, the time spent trying.
	Duration time.Duration
	// Then is the output of the command Fleet.Then chose to run next, if any.
	Then *Output
}

// Input is what one run of the command reads on its standard input.
type Input struct {
	Name string // where it comes from, for Output.File
	Data []byte
	// Command, when set, is run for this input instead of Fleet.Command.
	Command string
}

// Fleet runs one command on many hosts over SSH: one connection per host, one
// session per input, each input sent to the command's standard input, the
// command's standard error streamed back live with each line prefixed by the
// host's name.
type Fleet struct {
	Dialer Connector
	// Command is the shell command line run for each file, by the login
	// shell of the remote user, which must be a POSIX shell.
	Command string
	// Sudo runs Command, and the kill that ends it on cancel, with sudo -n.
	Sudo bool
	// Parallel is how many hosts are worked on at once; at least 1.
	Parallel int
	// Stderr receives the prefixed remote standard error and the reason a
	// host could not be reached.
	Stderr io.Writer
	// Timeout, when positive, bounds each run of the command: one still
	// running after Timeout is ended as on cancel, and its Output.Err wraps
	// ErrTimedOut. The other runs and hosts go on.
	Timeout time.Duration
	// Then, when set, is called with the output of each run of Command
	// that reported an exit status; when it returns a command line, that
	// runs next, on the same connection, with the same standard input, as
	// Command does, and its output is the first one's Then.
	Then func(Output) string
	// Retry, when set, is called with the output of each run (of Command
	// or of Then's command) that reported an exit status; when it returns
	// a command line, that runs in its place, on the same connection, with
	// the same standard input, and its output replaces the first one's.
	// prepull remote uses it to try again without a flag that an older
	// prepull on the proxy refused.
	Retry func(Output) string
}

// ErrTimedOut is wrapped by the Err of a command run that Fleet.Timeout ended.
var ErrTimedOut = errors.New("timed out")

// Run runs the command for each input on each host, and returns the outputs
// by host, then input, in the order given. A slow or dead host holds up only
// its own outputs. When ctx ends, running commands are sent SIGTERM and their
// sessions closed, and what had not started yet is reported canceled.
func (f *Fleet) Run(ctx context.Context, hosts []Host, inputs []Input) [][]Output {
	stderr := &syncWriter{w: f.Stderr}
	out := make([][]Output, len(hosts))
	sem := make(chan struct{}, max(f.Parallel, 1))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				out[i] = f.runHost(ctx, h, inputs, stderr)
			case <-ctx.Done():
				out[i] = failAll(h, inputs, 0, fmt.Errorf("not started: %w", context.Cause(ctx)))
			}
		}()
	}
	wg.Wait()
	return out
}

// failAll is the outputs of a host where every input failed with err.
func failAll(h Host, inputs []Input, d time.Duration, err error) []Output {
	out := make([]Output, len(inputs))
	for i, in := range inputs {
		out[i] = Output{Host: h.Name, File: in.Name, ExitStatus: -1, Err: err, Duration: d}
	}
	return out
}

// runHost connects to h and runs the command for each input in turn.
func (f *Fleet) runHost(ctx context.Context, h Host, inputs []Input, stderr io.Writer) []Output {
	start := time.Now()
	if ctx.Err() != nil {
		return failAll(h, inputs, 0, fmt.Errorf("not started: %w", context.Cause(ctx)))
	}
	if h.Err != nil {
		report(stderr, h.Name, h.Err)
		return failAll(h, inputs, 0, h.Err)
	}
	conn, err := f.Dialer.Connect(ctx, h.Route)
	if err != nil {
		report(stderr, h.Name, err)
		return failAll(h, inputs, time.Since(start), err)
	}
	defer conn.Close()
	out := make([]Output, len(inputs))
	for i, in := range inputs {
		command := f.Command
		if in.Command != "" {
			command = in.Command
		}
		out[i] = f.runRetried(ctx, conn, h.Name, in, command, stderr)
		if f.Then == nil || out[i].Err != nil {
			continue
		}
		if next := f.Then(out[i]); next != "" {
			then := f.runRetried(ctx, conn, h.Name, in, next, stderr)
			out[i].Then = &then
		}
	}
	return out
}

// runRetried runs command with in, and again with what Retry returns for
// as long as it returns a command line not run yet.
func (f *Fleet) runRetried(ctx context.Context, conn *Conn, host string, in Input, command string, stderr io.Writer) Output {
	o := f.runInput(ctx, conn, host, in, command, stderr)
	ran := map[string]bool{command: true}
	for f.Retry != nil && o.Err == nil {
		next := f.Retry(o)
		if next == "" || ran[next] {
			break
		}
		ran[next] = true
		d := o.Duration
		o = f.runInput(ctx, conn, host, in, next, stderr)
		o.Duration += d
	}
	return o
}

// runInput runs command once on conn, with in on its standard input.
func (f *Fleet) runInput(ctx context.Context, conn *Conn, host string, in Input, command string, stderr io.Writer) (o Output) {
	start := time.Now()
	o = Output{Host: host, File: in.Name, ExitStatus: -1, Command: command}
	defer func() { o.Duration = time.Since(start) }()
	if ctx.Err() != nil {
		o.Err = fmt.Errorf("not started: %w", context.Cause(ctx))
		return o
	}
	s, err := conn.NewSession()
	if err != nil {
		o.Err = connError(conn, fmt.Errorf("open a session: %w", err))
		report(stderr, host, o.Err)
		return o
	}
	defer s.Close()
	if f.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, f.Timeout, fmt.Errorf("%w: no result within %v", ErrTimedOut, f.Timeout))
		defer cancel()
	}
	stdout := &limitedBuffer{max: maxStdout}
	lines := &prefixWriter{out: stderr, prefix: display.Text(host) + ": ", marker: pgidMarker}
	s.Stdin, s.Stdout, s.Stderr = bytes.NewReader(in.Data), stdout, lines
	if err := s.Start("echo " + pgidMarker + "$$ >&2; " + f.sudo() + command); err != nil {
		o.Err = connError(conn, fmt.Errorf("start the command: %w", err))
		report(stderr, host, o.Err)
		return o
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// The signal request is the standard way; sshd may refuse it, so
		// the command's process group is killed too. Closing the session
		// then ends what still reads its input or writes its output.
		_ = s.Signal(ssh.SIGTERM)
		f.kill(conn, lines.Marked())
		s.Close()
		select {
		case <-done:
		case <-time.After(cancelGrace):
		}
		lines.Flush()
		o.LastStderr = lines.Last()
		o.Err = fmt.Errorf("canceled: %w", context.Cause(ctx))
		if errors.Is(o.Err, ErrTimedOut) {
			o.Err = fmt.Errorf("%w; the remote command was ended", context.Cause(ctx))
			report(stderr, host, o.Err)
		}
		return o
	}
	lines.Flush()
	o.Stdout, o.LastStderr = stdout.Bytes(), lines.Last()
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		o.ExitStatus = 0
	case errors.As(err, &exit):
		o.ExitStatus, o.Signal = exit.ExitStatus(), exit.Signal()
		if o.Signal != "" {
			o.ExitStatus = -1
		}
	case errors.As(err, &missing):
		o.Err = connError(conn, errors.New("the command ended without an exit status"))
	default:
		o.Err = connError(conn, err)
	}
	if o.Err != nil {
		report(stderr, host, o.Err)
	}
	return o
}

// report writes why host failed to stderr. SSH errors may carry what the
// server sent (a disconnect message, a version string), so it is escaped.
func report(stderr io.Writer, host string, err error) {
	fmt.Fprintf(stderr, "%s: %s\n", display.Text(host), display.Text(err.Error()))
}

// sudo returns the prefix that runs a command with sudo, if asked for.
func (f *Fleet) sudo() string {
	if f.Sudo {
		return "sudo -n "
	}
	return ""
}

// kill sends SIGTERM to the remote process group pgid through a new session
// on conn, waiting at most cancelGrace.
func (f *Fleet) kill(conn *Conn, pgid string) {
	if n, err := strconv.Atoi(pgid); err != nil || n <= 1 {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := conn.NewSession()
		if err != nil {
			return
		}
		defer s.Close()
		_ = s.Run(f.sudo() + "kill -TERM -" + pgid)
	}()
	select {
	case <-done:
	case <-time.After(cancelGrace):
	}
}

// connError prefers the reason the keepalive gave up on conn, if it did.
func connError(conn *Conn, err error) error {
	if lost := conn.Lost(); lost != nil {
		return lost
	}
	return err
}

// limitedBuffer keeps the first max bytes written to it and drops the rest.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf
}
