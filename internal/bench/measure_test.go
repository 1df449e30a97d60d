//go:build linux

package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// sample is one finished run of a program: its wall time and its CPU time
// (user and system, children included).
type sample struct {
	wall time.Duration
	cpu  time.Duration
}

// run runs cmd to its end and measures it. Standard output and error are
// kept for the failure message only. A failed command fails b.
func run(b *testing.B, cmd *exec.Cmd) sample {
	b.Helper()
	var out bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &out
	}
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return sample{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
}

// gnuTimes are where GNU time (Debian's package time), which measures a
// command's peak RSS, is looked for: the machine's, else the one
// scripts/lib.sh unpacks (GNU_TIME_DIR), never installed.
var gnuTimes = []string{"/usr/bin/time", "/var/cache/prepull-test/time/usr/bin/time"}

// peakRSS runs cmd under GNU time and returns its peak resident set size in
// bytes; for a shell pipeline, the largest of its processes.
//
// The rusage a Go program gets for its own child cannot tell this: Go starts
// children with vfork (CLONE_VM), and at exec the kernel records the shared
// address space's high-water mark, the parent's, as the child's maxrss. GNU
// time is a small C program that forks, so what it reports is the command's
// own. Without GNU time b fails saying where it was looked for.
func peakRSS(b *testing.B, cmd *exec.Cmd) int64 {
	b.Helper()
	i := slices.IndexFunc(gnuTimes, func(p string) bool { _, err := os.Stat(p); return err == nil })
	if i < 0 {
		b.Fatalf("peak RSS needs GNU time, in none of %v: scripts/test.sh or bench.sh as root unpacks it", gnuTimes)
	}
	gnuTime := gnuTimes[i]
	out := filepath.Join(b.TempDir(), "rusage")
	cmd.Args = append([]string{gnuTime, "--format", "%M", "--output", out}, cmd.Args...)
	cmd.Path = gnuTime
	run(b, cmd)
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		b.Fatalf("GNU time wrote %q: %v", data, err)
	}
	return kib << 10
}

// median returns the median of xs (the mean of the middle two for an even
// count); 0 for none.
func median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// walls returns the wall times of samples.
func walls(ss []sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.wall
	}
	return out
}

// cpus returns the CPU times of samples.
func cpus(ss []sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.cpu
	}
	return out
}

// smoke is full, or short in the test command's smoke run (go test
// -short): every benchmark runs once, small, so that its code keeps
// working; what a smoke run measures means nothing and is not recorded.
func smoke[T any](full, short T) T {
	if testing.Short() {
		return short
	}
	return full
}

// ms is d in milliseconds, for metrics.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mib is n bytes in MiB, for metrics.
func mib(n int64) float64 { return float64(n) / (1 << 20) }

// fmtDur prints d for the summary table: milliseconds below 10 s.
func fmtDur(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1f ms", ms(d))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// figure is one line of the summary table.
type figure struct {
	Name    string // what is measured
	Prepull string // prepull's figure
	Peer    string // the peer's figure, measured in the same run, or "-"
	Ratio   string // prepull / peer, or "-"
	Target  string // the target
	Met     bool
}

var summaryMu sync.Mutex

// record logs f and appends it to the file $PREPULL_BENCH_SUMMARY names, if
// any, as one tab-separated line: name, prepull, peer, ratio, target, met,
// and the load average when it was recorded.
func record(b *testing.B, f figure) {
	b.Helper()
	met := "no"
	if f.Met {
		met = "yes"
	}
	load := loadAvg()
	b.Logf("FIGURE %s | prepull %s | peer %s | ratio %s | target %s | met %s | load %s", f.Name, f.Prepull, f.Peer, f.Ratio, f.Target, met, load)
	path := os.Getenv("PREPULL_BENCH_SUMMARY")
	if path == "" {
		return
	}
	summaryMu.Lock()
	defer summaryMu.Unlock()
	file, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Errorf("summary: %v", err)
		return
	}
	defer file.Close()
	line := strings.Join([]string{f.Name, f.Prepull, f.Peer, f.Ratio, f.Target, met, load}, "\t")
	if _, err := fmt.Fprintln(file, line); err != nil {
		b.Errorf("summary: %v", err)
	}
}

// loadAvg returns the 1-, 5- and 15-minute load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// env is a proxy's worth of real parts for a benchmark: the shared Docker
// Engine, a registry of the benchmark's own with a login, and a prepull
// configuration with the password in a 0600 file. Docker's config.json is
// isolated in the benchmark's own folder.
type env struct {
	b        *testing.B
	dir      string
	docker   *testenv.DockerEngine
	reg      *testenv.Registry
	password string
	base     string // prepull's configuration: engine, Docker config folder, login
	config   string // the file holding base
	prepull  string // the prepull binary
}

// newEnv starts a registry with a login and writes a configuration for it.
func newEnv(b *testing.B) *env {
	b.Helper()
	e := &env{b: b, dir: b.TempDir(), password: fmt.Sprintf("bench-%d", time.Now().UnixNano())}
	e.docker = testenv.Docker(b)
	e.reg = testenv.StartRegistry(b, testenv.RegistryOptions{User: "alice", Password: e.password})
	e.prepull = testenv.Prepull(b)
	pwFile := filepath.Join(e.dir, "registry.password")
	writeFile(b, pwFile, e.password+"\n")
	dockerConfig := filepath.Join(e.dir, "docker")
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		b.Fatal(err)
	}
	e.base = fmt.Sprintf("docker_host: %s\ndocker_config: %s\nregistries:\n  - host: %s\n    username: alice\n    password_file: %s\n",
		e.docker.Host, dockerConfig, e.reg.Addr, pwFile)
	e.config = filepath.Join(e.dir, "config.yaml")
	writeFile(b, e.config, e.base)
	return e
}

// image pushes a new image of random content as repo and returns its
// reference, registry/repo@digest, and the pak of adapter kind kind naming
// it.
func (e *env) image(repo, kind string, opts testenv.ImageOptions) (ref string, p paktest.Pak) {
	e.b.Helper()
	digest := e.docker.PushImage(e.b, e.reg, repo, opts)
	ref = e.reg.Addr + "/" + repo + "@" + digest
	return ref, paktest.Pak{Kind: kind, Registry: e.reg.Addr, Repository: "/" + repo, Digest: digest}
}

// command returns the prepull binary with args, in a clean environment: no
// DOCKER_ variables, a HOME and TMPDIR of the benchmark's own.
func (e *env) command(args ...string) *exec.Cmd {
	cmd := exec.Command(e.prepull, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir, "TMPDIR=" + e.dir}
	return cmd
}

// dockerCLI is the docker CLI against the engine with its own DOCKER_CONFIG
// folder, as an operator would run it.
//
// Its PATH is an empty folder, as on a proxy without credential helpers:
// where docker-credential-pass is installed, docker login would otherwise
// try to keep the login in pass.
func (e *env) dockerCLI(config string, args ...string) *exec.Cmd {
	noHelpers := filepath.Join(e.dir, "no-helpers")
	_ = os.MkdirAll(noHelpers, 0o700)
	cmd := exec.Command("/usr/bin/docker", args...)
	cmd.Env = []string{"PATH=" + noHelpers, "HOME=" + e.dir, "DOCKER_HOST=" + e.docker.Host, "DOCKER_CONFIG=" + config, "DOCKER_CLI_HINTS=false"}
	return cmd
}

func writeFile(b *testing.B, path, content string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		b.Fatal(err)
	}
}
