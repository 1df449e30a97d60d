package credentials

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/testenv"
)

// TestRunCommandTimeoutEndsChildren runs a command that starts a child in
// the background and hangs: when the timeout ends it, no process it
// started may remain.
func TestRunCommandTimeoutEndsChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	_, err := runCommand(t.Context(), nil, 300*time.Millisecond, []string{"sh", "-c", "sleep 300 & echo $! > " + pidFile + "; sleep 300"}, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error = %v, want a timeout", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if !testenv.Exited(t, pid) {
		t.Fatalf("the command's child %d still runs after the timeout", pid)
	}
}

// TestForCancelEndsHelperGroup asks a credential helper, then a
// password_command, that starts a child in the background and hangs, and
// cancels the lookup once both run, as Ctrl-C does: For must return the
// cancellation, not wait for CommandTimeout, and no process of the group
// may remain. The moment to cancel is an event (the program writes its
// and its child's PIDs into a FIFO), not a sleep.
func TestForCancelEndsHelperGroup(t *testing.T) {
	bin := helperPATH(t)
	fifo := filepath.Join(t.TempDir(), "pids")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	hang := "sleep 300 & echo $$ $! > '" + fifo + "'; wait"
	script(t, bin, "docker-credential-hang", hang)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "config.json"), `{"credsStore": "hang"}`, 0o600)
	cfg := &config.Config{Registries: []config.Registry{
		{Host: "cmd.example", Username: "u", PasswordCommand: []string{"sh", "-c", hang}},
	}}
	for _, host := range []string{"helper.example", "cmd.example"} {
		t.Run(host, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := (&Resolver{Config: cfg, DockerConfigDir: dir}).For(ctx, host)
				done <- err
			}()
			data, err := os.ReadFile(fifo) // returns once the program wrote and closed it
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("For = %v, want it ended by the cancel (context.Canceled)", err)
			}
			for _, f := range strings.Fields(string(data)) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("pids %q: %v", data, err)
				}
				if !testenv.Exited(t, pid) {
					t.Errorf("process %d of the program still runs after the cancel", pid)
				}
			}
		})
	}
}
