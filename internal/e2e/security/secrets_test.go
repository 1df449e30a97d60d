//go:build linux

package security

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// procSampler reads the command line and environment of every process on
// the machine, every interval, and records those that hold the password,
// and every command line of a prepull process it saw.
type procSampler struct {
	leaks   *e2e.LeakFinder
	prepull string // the binary's path

	mu       sync.Mutex
	seen     map[string]bool // prepull command lines, NUL turned to space
	envReads int             // environments of prepull processes read
	samples  int
	stop     chan struct{}
	done     chan struct{}
}

func startProcSampler(t *testing.T, leaks *e2e.LeakFinder, every time.Duration) *procSampler {
	s := &procSampler{leaks: leaks, prepull: testenv.Prepull(t), seen: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			s.scanAll()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

// close stops the sampler after a last round; it is idempotent.
func (s *procSampler) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *procSampler) scanAll() {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			s.scan(pid)
		}
	}
	s.mu.Lock()
	s.samples++
	s.mu.Unlock()
}

// scan reads one process's command line and environment. A process that
// ended meanwhile is skipped.
func (s *procSampler) scan(pid int) {
	dir := "/proc/" + strconv.Itoa(pid)
	cmdline, err := os.ReadFile(dir + "/cmdline")
	if err != nil || len(cmdline) == 0 {
		return
	}
	comm, _ := os.ReadFile(dir + "/comm")
	who := fmt.Sprintf("process %d (%s)", pid, strings.TrimSpace(string(comm)))
	s.leaks.Check(who+" command line", cmdline)
	// Kernel threads and the machine's init may refuse; every process of
	// the test's user may not, which envReads checks for prepull's.
	env, envErr := os.ReadFile(dir + "/environ")
	if envErr == nil {
		s.leaks.Check(who+" environment", env)
	}
	if exe, err := os.Readlink(dir + "/exe"); err == nil && exe == s.prepull {
		s.mu.Lock()
		s.seen[string(bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte(" ")))] = true
		if envErr == nil {
			s.envReads++
		}
		s.mu.Unlock()
	}
}

// sawPrepull reports whether a prepull process ran whose command line,
// its arguments joined by spaces, satisfies match.
func (s *procSampler) sawPrepull(match func(cmd string) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cmd := range s.seen {
		if match(cmd) {
			return true
		}
	}
	return false
}

// secretRun is one prepull run of the secrets test.
type secretRun struct {
	t       *testing.T
	f       *e2e.Fixture
	sampler *procSampler
	leaks   *e2e.LeakFinder
	outputs int
}

// prepull runs the real prepull with stdin and args in the clean environment
// of fixture.prepull; its process is sampled as soon as it started, and its
// output checked for the password.
func (s *secretRun) prepull(stdin io.Reader, args ...string) e2e.Run {
	s.t.Helper()
	r := s.f.Prepull(stdin, args...)
	s.check("prepull "+strings.Join(args, " "), r)
	return r
}

// check looks for the password in what a run printed.
func (s *secretRun) check(what string, r e2e.Run) {
	s.outputs++
	s.leaks.Check("stdout of "+what, []byte(r.Stdout))
	s.leaks.Check("stderr of "+what, []byte(r.Stderr))
}

// fileState is what a file was before the test: absent, or its content and
// modification time.
type fileState struct {
	exists  bool
	content []byte
	mtime   time.Time
}

// statFile returns what the file at path is now.
func statFile(t *testing.T, path string) fileState {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{exists: true, content: data, mtime: st.ModTime()}
}

// TestSecretNeverLeaks runs the whole flow with a known password: the
// one-shot (password file, world-readable password file, --password-stdin,
// credentials the registry rejects, the password file given as a pak), the
// agent (a pull, a rejected login, the password file dropped as a pak) and
// remote through real sshd proxies. Meanwhile every process's command line
// and environment is sampled; afterwards every output, log, state and error
// file, HOME and TMPDIR, and dockerd's log are searched. The password must
// show nowhere, and no Docker config.json may be written.
func TestSecretNeverLeaks(t *testing.T) {
	f := e2e.NewFixture(t, "secret/first")
	pw := f.Password
	leaks := &e2e.LeakFinder{Forms: e2e.SecretForms(pw)}
	// A second registry that knows alice by another password: logging in
	// there with the known password is the rejected-credentials path.
	reg2 := testenv.StartRegistry(t, testenv.RegistryOptions{User: "alice", Password: "other-" + e2e.RandomWord(t)})
	digest2 := f.Docker.PushImage(t, reg2, "secret/second", testenv.ImageOptions{})
	ref2 := reg2.Addr + "/secret/second@" + digest2
	pak2 := paktest.Pak{Kind: "Rejected", Registry: reg2.Addr, Repository: "/secret/second", Digest: digest2}.WriteFile(t, f.Dir)

	openPW := filepath.Join(f.Dir, "registry-0644.password")
	e2e.WriteTestFile(t, openPW, pw+"\n")
	if err := os.Chmod(openPW, 0o644); err != nil {
		t.Fatal(err)
	}
	groupPW := filepath.Join(f.Dir, "registry-0640.password")
	e2e.WriteTestFile(t, groupPW, pw+"\n")
	if err := os.Chmod(groupPW, 0o640); err != nil {
		t.Fatal(err)
	}
	entry := func(host, file string) string {
		return fmt.Sprintf("  - host: %s\n    username: alice\n    password_file: %s\n", host, file)
	}
	cfgOpen := f.WriteConfig("registries:\n" + entry(f.Reg.Addr, openPW))
	cfgGroup := f.WriteConfig("registries:\n" + entry(f.Reg.Addr, groupPW))
	cfgBoth := f.WriteConfig("registries:\n" + entry(f.Reg.Addr, f.PasswordFile()) + entry(reg2.Addr, openPW))
	cfgNone := f.WriteConfig("registries: []\n")

	// The proxies run prepull as the user the test runs as, root, in the
	// HOME that sshd gives it.
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	rootDockerConfig := filepath.Join(me.HomeDir, ".docker", "config.json")
	rootBefore := statFile(t, rootDockerConfig)

	sampler := startProcSampler(t, leaks, 20*time.Millisecond)
	s := &secretRun{t: t, f: f, sampler: sampler, leaks: leaks}
	f.OnStart = sampler.scan

	// The one-shot.
	{
		r := s.prepull(nil, "--config", f.Config, "--json", f.Pak)
		r.Want(t, 0)
		if rs := r.Results(t); rs[0].Status != "pulled" {
			t.Fatalf("results %+v, want pulled", rs)
		}
		if strings.Contains(r.Stderr, "accessible by group or others") {
			t.Errorf("a warning for a 0600 password file:\n%s", r.Stderr)
		}
		for _, c := range []struct{ cfg, file, mode string }{{cfgOpen, openPW, "0644"}, {cfgGroup, groupPW, "0640"}} {
			r = s.prepull(nil, "--config", c.cfg, "--force", f.Pak)
			r.Want(t, 0)
			want := fmt.Sprintf("password file %s is accessible by group or others (mode %s); chmod 600 it", c.file, c.mode)
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("no warning for the %s password file; want %q in stderr:\n%s", c.mode, want, r.Stderr)
			}
		}
		r = s.prepull(strings.NewReader(pw+"\n"), "--config", cfgNone, "--registry", f.Reg.Addr, "--username", "alice", "--password-stdin", "--force", "--json", f.Pak)
		r.Want(t, 0)
		if rs := r.Results(t); rs[0].Status != "pulled" || !strings.HasPrefix(rs[0].CredentialSource, "command line") {
			t.Fatalf("--password-stdin: results %+v, want pulled with the command line's login", rs)
		}
		r = s.prepull(nil, "--config", cfgBoth, pak2)
		r.Want(t, 4)
		for _, want := range []string{reg2.Addr, `"alice"`, "password_file " + openPW} {
			if !strings.Contains(r.Stdout+r.Stderr, want) {
				t.Errorf("the rejection does not name %s:\nstdout:\n%s\nstderr:\n%s", want, r.Stdout, r.Stderr)
			}
		}
		// The password file given by mistake as a pak: refused, never echoed.
		s.prepull(nil, "--config", f.Config, f.PasswordFile()).Want(t, 3)
		s.prepull(nil, "inspect", "--config", f.Config, f.PasswordFile()).Want(t, 3)
	}

	// The agent: the image is removed first, so that it logs in and pulls.
	{
		f.Docker.RemoveImage(t, f.Ref)
		_, inbox, state := f.AgentConfig("")
		cfg := f.WriteConfig(strings.Join([]string{
			"watch_dir: " + inbox, "state_dir: " + state, "log_format: json", "concurrency: 2",
			"rescan_interval: 1s", "settle: 200ms", "verify_interval: 1h", "stall_timeout: 5s", "pull_timeout: 5m",
			"registries:\n" + entry(f.Reg.Addr, f.PasswordFile()) + entry(reg2.Addr, openPW),
		}, "\n"))
		a := f.StartAgent(cfg, inbox, state)
		a.Drop(f.Pak, "good.pak")
		a.Drop(pak2, "rejected.pak")
		a.Drop(f.PasswordFile(), "oops.pak")
		a.Eventually("good.pak is in done/", func() bool { return a.InDone("good.pak") })
		a.Eventually("oops.pak.error is in failed/", func() bool {
			_, err := os.Stat(filepath.Join(inbox, "failed", "oops.pak.error"))
			return err == nil
		})
		a.Eventually("the rejected login is in the state", func() bool {
			for _, im := range a.ReadState().Images {
				if im.Reference == ref2 && im.Status == "failed" && im.LastError != "" {
					return true
				}
			}
			return false
		})
		if !f.Docker.HasImage(t, f.Ref) {
			t.Errorf("the agent did not pull %s", f.Ref)
		}
		if want := "password file " + openPW + " is accessible by group or others"; !strings.Contains(a.LogText(), want) {
			t.Errorf("the agent's log does not warn %q", want)
		}
		s.prepull(nil, "status", "--config", cfg).Want(t, 0)
		s.prepull(nil, "status", "--json", "--config", cfg).Want(t, 0)
		if !sampler.sawPrepull(func(cmd string) bool { return strings.HasSuffix(cmd, " agent --config "+cfg) }) {
			t.Error("the sampler never saw the agent's process")
		}
		code, _ := a.Terminate()
		if code != 0 {
			t.Errorf("the agent exited %d on SIGTERM, want 0", code)
		}
		leaks.Check("the agent's log", []byte(a.LogText()))
	}

	// Remote: proxy 0 has the password file, proxy 1 also sends the password
	// where it is rejected.
	{
		fleet := e2e.NewProxyFleet(t, f, f.Config, cfgBoth)
		proc := e2e.StartRemote(t, f, fleet.Args(t, "--json", "--force", f.Pak, pak2)...)
		sampler.scan(proc.Cmd.Process.Pid)
		r := proc.Wait(t)
		s.check("prepull remote", r)
		r.Want(t, 4)
		results := r.RemoteResults(t)
		if row := results[fleet.Dest(0)+" "+f.Pak]; row.Status != "pulled" {
			t.Errorf("proxy 0, %s: %+v, want pulled", f.Pak, row)
		}
		if row := results[fleet.Dest(1)+" "+pak2]; row.ExitCode != 4 || !strings.Contains(row.Error, "password_file "+openPW) {
			t.Errorf("proxy 1, %s: %+v, want exit code 4 naming the password file", pak2, row)
		}
		onProxy := func(cmd string) bool {
			// As remoteFlags.commandLine builds it: --json --name X ... -
			return strings.Contains(cmd, " --json --name ") && strings.HasSuffix(cmd, " -") && !strings.Contains(cmd, " remote ")
		}
		if !sampler.sawPrepull(onProxy) {
			t.Error("the sampler never saw a proxy's prepull process")
		}
		if !sampler.sawPrepull(func(cmd string) bool { return strings.Contains(cmd, " remote --known-hosts ") }) {
			t.Error("the sampler never saw the workstation's prepull remote")
		}
	}

	sampler.close()
	if !sampler.sawPrepull(func(cmd string) bool { return strings.Contains(cmd, " --password-stdin ") }) {
		t.Error("the sampler never saw the --password-stdin run")
	}
	if sampler.envReads == 0 {
		t.Error("the sampler could not read the environment of any prepull process")
	}

	// Files: HOME and TMPDIR of every local run, with the inbox, done/,
	// failed/, the .error files and the state; Docker's configurations;
	// dockerd's log. The password files themselves, and the one dropped into
	// the inbox by mistake, are the only files that may hold it.
	own := map[string]bool{
		f.PasswordFile(): true, openPW: true, groupPW: true,
		filepath.Join(f.Dir, "inbox", "failed", "oops.pak"): true,
	}
	scanned := 0
	err = filepath.WalkDir(f.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		leaks.Check("the name of "+path, []byte(path))
		if d.Type().IsRegular() && !own[path] {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			leaks.Check(path, data)
			scanned++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"state/state.json", "inbox/failed/oops.pak.error", "inbox/done/good.pak"} {
		if _, err := os.Stat(filepath.Join(f.Dir, want)); err != nil {
			t.Errorf("%s was not there to be searched: %v", want, err)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(f.Docker.Dir, "*.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		leaks.Check(l, data)
	}
	if spools, _ := filepath.Glob("/tmp/prepull-stdin-*"); len(spools) > 0 {
		t.Errorf("spooled standard input left behind: %v", spools)
	}
	for _, dir := range []string{f.DockerConfigDir, filepath.Join(f.Dir, ".docker")} {
		if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
			t.Errorf("%s/config.json was written", dir)
		}
	}
	if rootAfter := statFile(t, rootDockerConfig); rootAfter.exists != rootBefore.exists ||
		!bytes.Equal(rootAfter.content, rootBefore.content) || !rootAfter.mtime.Equal(rootBefore.mtime) {
		t.Errorf("%s changed during the test", rootDockerConfig)
	}

	for _, leak := range leaks.Found() {
		t.Error(leak)
	}
	seen := slices.Sorted(maps.Keys(sampler.seen))
	for _, cmd := range seen {
		t.Logf("sampled: %s", cmd)
	}
	t.Logf("searched %d outputs, %d files and %d rounds over every process's command line and environment; %d prepull command lines seen, %d prepull environments read",
		s.outputs, scanned, sampler.samples, len(sampler.seen), sampler.envReads)
}

// TestSecretAgentRefusesUnsafeFolders starts the agent on drop folders and
// state folders that others could write to or that are not plain folders:
// it must refuse to start (exit 2), say which folder and how to fix it, and
// create nothing.
func TestSecretAgentRefusesUnsafeFolders(t *testing.T) {
	testenv.Require(t)
	testenv.Prepull(t)
	tests := []struct {
		name    string
		prepare func(t *testing.T, inbox, state string)
		want    []string
	}{
		{"world-writable watch_dir", func(t *testing.T, inbox, _ string) { chmod(t, inbox, 0o777) },
			[]string{"watch_dir", "mode 0777 lets others drop files into it", "chmod go-w"}},
		{"group-writable watch_dir", func(t *testing.T, inbox, _ string) { chmod(t, inbox, 0o770) },
			[]string{"watch_dir", "mode 0770", "chmod go-w"}},
		{"world-writable watch_dir with the sticky bit", func(t *testing.T, inbox, _ string) { chmod(t, inbox, 0o777|fs.ModeSticky) },
			[]string{"watch_dir", "mode 0777", "chmod go-w"}},
		{"world-writable state_dir", func(t *testing.T, _, state string) { chmod(t, state, 0o777) },
			[]string{"state_dir", "mode 0777", "chmod go-w"}},
		{"watch_dir of another user", func(t *testing.T, inbox, _ string) { chown(t, inbox, 65534) },
			[]string{"watch_dir", "owned by uid 65534", "chown"}},
		{"watch_dir is a file", func(t *testing.T, inbox, _ string) {
			if err := os.Remove(inbox); err != nil {
				t.Fatal(err)
			}
			e2e.WriteTestFile(t, inbox, "")
		}, []string{"watch_dir", "not a directory"}},
		{"watch_dir is another user's symlink to a safe folder", func(t *testing.T, inbox, _ string) {
			real := inbox + ".real"
			mkdirAll(t, real)
			if err := os.Remove(inbox); err != nil {
				t.Fatal(err)
			}
			symlink(t, real, inbox)
			if err := os.Lchown(inbox, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, []string{"watch_dir", "symlink " + "INBOX is owned by uid 65534", "chown -h"}},
		{"done/ is a symlink", func(t *testing.T, inbox, _ string) { symlink(t, t.TempDir(), filepath.Join(inbox, "done")) },
			[]string{"done", "must be a directory, not a symlink"}},
		{"failed/ is a symlink", func(t *testing.T, inbox, _ string) { symlink(t, "/etc", filepath.Join(inbox, "failed")) },
			[]string{"failed", "must be a directory, not a symlink"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &e2e.Fixture{T: t, Dir: t.TempDir(), Password: "unused-" + e2e.RandomWord(t)}
			inbox, state := filepath.Join(f.Dir, "inbox"), filepath.Join(f.Dir, "state")
			for _, d := range []string{inbox, state} {
				mkdirAll(t, d)
			}
			tt.prepare(t, inbox, state)
			config := filepath.Join(f.Dir, "config.yaml")
			e2e.WriteTestFile(t, config, fmt.Sprintf("watch_dir: %s\nstate_dir: %s\ndocker_host: unix://%s\n", inbox, state, filepath.Join(f.Dir, "none.sock")))
			r := f.Prepull(nil, "agent", "--config", config)
			r.Want(t, 2)
			for _, want := range tt.want {
				if want = strings.ReplaceAll(want, "INBOX", inbox); !strings.Contains(r.Stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, r.Stderr)
				}
			}
			if _, err := os.Stat(filepath.Join(state, "state.json")); err == nil {
				t.Error("the agent wrote state.json before refusing")
			}
		})
	}
}

func chmod(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
