//go:build windows

// Command pipeagent is the ssh-agent of the windows area's tests: it serves
// the keys of the files it is given on a named pipe, as Windows' OpenSSH
// agent service does, runs a command while it does, and exits with the
// command's exit code. It says on stderr how many signatures it made.
//
//	pipeagent PIPE KEYFILE... -- COMMAND [ARG...]
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/sys/windows"
)

func main() {
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "pipeagent: %v\n", err)
		os.Exit(125)
	}
	os.Exit(code)
}

// countingAgent counts the signatures of an agent.
type countingAgent struct {
	agent.Agent
	signed atomic.Int32
}

func (a *countingAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	a.signed.Add(1)
	return a.Agent.Sign(key, data)
}

func run(args []string) (int, error) {
	sep := slices.Index(args, "--")
	if sep < 2 || sep == len(args)-1 {
		return 0, errors.New("usage: pipeagent PIPE KEYFILE... -- COMMAND [ARG...]")
	}
	keyring := &countingAgent{Agent: agent.NewKeyring()}
	for _, path := range args[1:sep] {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		key, err := ssh.ParseRawPrivateKey(data)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
			return 0, err
		}
	}
	first, err := newPipe(args[0])
	if err != nil {
		return 0, err
	}
	go serve(keyring, args[0], first)
	cmd := exec.Command(args[sep+1], args[sep+2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	fmt.Fprintf(os.Stderr, "pipeagent: %d signatures\n", keyring.signed.Load())
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}

// newPipe makes an instance of the named pipe name, in byte mode with
// blocking calls: plain Win32. go-winio's ListenPipe (overlapped I/O on a
// completion port) is not used: under Wine 10 a client's first write to
// it never completes, while go-winio's DialPipe, prepull's side, works
// against this server.
func newPipe(name string) (windows.Handle, error) {
	n, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return 0, err
	}
	h, err := windows.CreateNamedPipe(n, windows.PIPE_ACCESS_DUPLEX,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT,
		windows.PIPE_UNLIMITED_INSTANCES, 4096, 4096, 0, nil)
	if err != nil {
		return 0, fmt.Errorf("create the pipe %s: %w", name, err)
	}
	return h, nil
}

// serve serves the agent to each client of pipe name, h its first
// instance, each client on an instance of its own.
func serve(a agent.Agent, name string, h windows.Handle) {
	for {
		if err := windows.ConnectNamedPipe(h, nil); err != nil && !errors.Is(err, windows.ERROR_PIPE_CONNECTED) {
			fmt.Fprintf(os.Stderr, "pipeagent: %v\n", err)
			return
		}
		next, err := newPipe(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pipeagent: %v\n", err)
			return
		}
		go func(f *os.File) {
			defer f.Close()
			_ = agent.ServeAgent(a, f)
		}(os.NewFile(uintptr(h), name))
		h = next
	}
}
