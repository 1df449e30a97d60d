//go:build linux

package credentials

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/testenv"
)

// TestOneShotInterruptedInPasswordCommand sends SIGINT, as Ctrl-C does,
// while the registry's password_command hangs with a child in the
// background: prepull exits 130 with the pak interrupted, and neither the
// command nor its child outlives it. The moment to interrupt is an event
// (the command writes its and its child's PIDs into a FIFO).
func TestOneShotInterruptedInPasswordCommand(t *testing.T) {
	f := e2e.NewFixture(t, "proj/interrupt-command")
	fifo := filepath.Join(t.TempDir(), "pids")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	hang := "sleep 300 & echo $$ $! > " + fifo + "; wait"
	cfg := f.WriteConfig(fmt.Sprintf("registries:\n  - host: %s\n    username: alice\n    password_command: [sh, -c, %q]\n", f.Reg.Addr, hang))
	var data []byte
	r := f.PrepullInterrupted(func() {
		var err error
		data, err = os.ReadFile(fifo) // returns once the command wrote and closed it
		if err != nil {
			t.Fatal(err)
		}
	}, "--config", cfg, "--json", f.Pak)
	if res := e2e.OneResult(t, r); res.Status != "interrupted" || res.ExitCode != 130 {
		t.Errorf("result %+v; want interrupted, exit_code 130", res)
	}
	for _, field := range strings.Fields(string(data)) {
		p, err := strconv.Atoi(field)
		if err != nil {
			t.Fatalf("pids %q: %v", data, err)
		}
		if !testenv.Exited(t, p) {
			t.Errorf("process %d of the password_command still runs after prepull exited", p)
		}
	}
}
