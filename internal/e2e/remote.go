//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv"
	"github.com/prepull/prepull/internal/testenv/await"
)

// ProxyFleet is a fleet of Cloud Proxies on loopback: real OpenSSH servers,
// each running the real prepull against the fixture's Docker Engine with a
// configuration of its own (passed in the session environment as
// PROXY_CONFIG, which the remote command hands to --config), and a
// known_hosts file that lists them all.
type ProxyFleet struct {
	f          *Fixture
	Key        testenv.SSHKey
	KnownHosts string
	Proxies    []*testenv.SSHD
}

// NewProxyFleet starts one proxy per configuration, all accepting one
// generated user key.
func NewProxyFleet(t *testing.T, f *Fixture, configs ...string) *ProxyFleet {
	t.Helper()
	return NewProxyFleetWithKey(t, f, testenv.NewSSHKey(t, ""), configs...)
}

// NewProxyFleetWithKey is newProxyFleet for a given user key.
func NewProxyFleetWithKey(t *testing.T, f *Fixture, key testenv.SSHKey, configs ...string) *ProxyFleet {
	t.Helper()
	p := &ProxyFleet{f: f, Key: key}
	var lines []string
	for _, c := range configs {
		s := testenv.StartSSHD(t, testenv.SSHDOptions{AuthorizedKeys: []string{key.Public}, Env: []string{"PROXY_CONFIG=" + c}})
		p.Proxies = append(p.Proxies, s)
		lines = append(lines, s.HostKeyLine(t))
	}
	p.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	WriteTestFile(t, p.KnownHosts, strings.Join(lines, "\n")+"\n")
	return p
}

// Dest is the destination of proxy i, as -H takes it.
func (p *ProxyFleet) Dest(i int) string { return "root@" + p.Proxies[i].Addr() }

// RemoteCommand runs the test's prepull binary with the proxy's own
// configuration: the user's shell text, which the remote shell expands.
func (p *ProxyFleet) RemoteCommand(t *testing.T) string {
	return testenv.Prepull(t) + ` --config "$PROXY_CONFIG"`
}

// Args returns the arguments of a prepull remote run on every proxy with the
// fleet's known_hosts and key, then extra.
func (p *ProxyFleet) Args(t *testing.T, extra ...string) []string {
	args := []string{"remote", "--known-hosts", p.KnownHosts, "-i", p.Key.Path,
		"--remote-command", p.RemoteCommand(t), "--connect-timeout", "5s"}
	for i := range p.Proxies {
		args = append(args, "-H", p.Dest(i))
	}
	return append(args, extra...)
}

// RemoteResult is one row of prepull remote --json.
type RemoteResult struct {
	Host       string `json:"host"`
	File       string `json:"file"`
	Reference  string `json:"reference"`
	Status     string `json:"status"`
	DurationMS int64  `json:"duration_ms"`
	ExitCode   int    `json:"exit_code"`
	Cause      string `json:"cause"`
	Error      string `json:"error"`
	// Version is the proxy's prepull's; VersionDiffers says it is not the
	// workstation's; Lacks what an older prepull on the proxy lacks.
	Version        string   `json:"version"`
	VersionDiffers bool     `json:"version_differs"`
	Lacks          []string `json:"lacks"`
	Keep           *struct {
		Status    string `json:"status"`
		Path      string `json:"path"`
		PakStatus string `json:"pak_status"`
		Agent     string `json:"agent"`
		ExitCode  int    `json:"exit_code"`
		Error     string `json:"error"`
	} `json:"keep"`
}

// RemoteResults decodes the --json output of prepull remote, keyed by host
// and file ("host file").
func (r Run) RemoteResults(t *testing.T) map[string]RemoteResult {
	t.Helper()
	rows := Decode[[]RemoteResult](t, r)
	m := map[string]RemoteResult{}
	for _, row := range rows {
		m[row.Host+" "+row.File] = row
	}
	if len(m) != len(rows) {
		t.Fatalf("duplicate rows in %s", r.Stdout)
	}
	return m
}

// TableRows returns the rows of prepull remote's closing table (run with
// --wide, to compare whole references and file names), split into
// columns, after checking its header.
func (r Run) TableRows(t *testing.T) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "HOST PAK REFERENCE STATUS DURATION VERSION ERROR" && got != "HOST PAK REFERENCE STATUS KEPT DURATION VERSION ERROR" {
		t.Fatalf("table header %q\nstdout:\n%s\nstderr:\n%s", lines[0], r.Stdout, r.Stderr)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		// The table ends with a note on versions, or with the summary.
		if strings.HasPrefix(l, "* ") || strings.Contains(l, " hosts ok") {
			break
		}
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func WriteTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// WaitPids waits until n pid files appear in dir, up to the test's own
// deadline (await.Limit), and returns the pids.
func WaitPids(t *testing.T, dir string, n int) []int {
	t.Helper()
	var pids []int
	started := func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "pid-*"))
		pids = nil
		for _, f := range files {
			data, _ := os.ReadFile(f)
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				pids = append(pids, pid)
			}
		}
		return len(pids) >= n
	}
	if !await.Until(t, 50*time.Millisecond, started) {
		t.Fatalf("%d of %d remote commands started", len(pids), n)
	}
	return pids
}

// Gone waits until process pid has ended, up to the test's own deadline
// (await.Limit), and reports whether it did: a process asked to end may
// take a moment to die.
func Gone(t *testing.T, pid int) bool {
	return await.Until(t, 50*time.Millisecond, func() bool { return !Alive(pid) })
}

// Alive reports whether process pid exists (and is not a zombie).
func Alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}

// RemoteProc is a prepull process the test controls while it runs.
type RemoteProc struct {
	Cmd            *exec.Cmd
	stdout, Stderr *SyncBuffer
	done           chan struct{} // closed when the process has exited
	code           int           // exit code, once done
}

// StartRemote starts prepull with args in the clean environment of
// fixture.prepull. A process still running when the test ends is killed.
func StartRemote(t *testing.T, f *Fixture, args ...string) *RemoteProc {
	t.Helper()
	p := &RemoteProc{stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(testenv.Prepull(t), args...)
	p.Cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + f.Dir, "TMPDIR=" + f.Dir}
	p.Cmd.Stdout, p.Cmd.Stderr = p.stdout, p.Stderr
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.Cmd.Wait()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			p.code = exit.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Cmd.Process.Kill()
		<-p.done
	})
	return p
}

// Exited reports whether the process has ended.
func (p *RemoteProc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit, up to the test's own deadline
// (await.Limit), and returns what it printed and its exit code.
func (p *RemoteProc) Wait(t *testing.T) Run {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(await.Limit(t)):
		t.Fatalf("prepull did not exit\nstdout:\n%s\nstderr:\n%s", p.stdout, p.Stderr)
	}
	return Run{Stdout: p.stdout.String(), Stderr: p.Stderr.String(), Code: p.code}
}

// SyncBuffer is a bytes.Buffer safe for a process writing while the test
// reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
