//go:build linux

// Package testenv starts the real parts that prepull's end-to-end tests run
// against on loopback: a Docker Engine (dockerd from Debian's docker.io), a
// registry with an htpasswd login (docker-registry, apache2-utils), and the
// prepull binary itself. Newer Docker Engines run from debootstrapped Debian
// roots (Rootfs, debootstrap) in systemd-nspawn (systemd-container): see
// StartDocker and EngineSuites.
//
// A package whose tests use it declares
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// and each end-to-end test starts with testenv.Require(t), or with a call
// that makes it (Docker, StartRegistry). End-to-end tests run when
// PREPULL_E2E=1 or CI is set, and then a missing part fails the test instead
// of skipping it; otherwise they are skipped. Everything started dies with
// the test binary.
package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// part is an outside program the harness runs, and the Debian package that
// ships it.
type part struct {
	name    string // binary name
	pkg     string // Debian package
	prefer  string // absolute path to use when it exists, tried before PATH
	purpose string
}

var (
	partDockerd  = part{name: "dockerd", pkg: "docker.io", purpose: "the Docker Engine"}
	partDocker   = part{name: "docker", pkg: "docker.io", prefer: "/usr/bin/docker", purpose: "the docker CLI"}
	partRegistry = part{name: "docker-registry", pkg: "docker-registry", purpose: "the registry"}
	partHtpasswd = part{name: "htpasswd", pkg: "apache2-utils", purpose: "the registry login"}
)

// requiredParts are checked by Require.
var requiredParts = []part{partDockerd, partDocker, partRegistry, partHtpasswd}

// path finds the part: its preferred path, then PATH, then the sbin
// directories a non-login PATH may lack.
func (p part) path() (string, error) {
	if p.prefer != "" {
		if isExecutable(p.prefer) {
			return p.prefer, nil
		}
	}
	if path, err := exec.LookPath(p.name); err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if path := filepath.Join(dir, p.name); isExecutable(path) {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s (%s) not found: install the Debian package %s (apt-get install %s), or run scripts/test.sh as root, which installs what is missing",
		p.name, p.purpose, p.pkg, p.pkg)
}

// mustPath is path for code that runs after Require has checked the part.
func (p part) mustPath(t testing.TB) string {
	t.Helper()
	path, err := p.path()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Enabled reports whether end-to-end tests are to run: PREPULL_E2E=1, or CI
// set to anything.
func Enabled() bool {
	return os.Getenv("PREPULL_E2E") == "1" || os.Getenv("CI") != ""
}

// Require skips t unless end-to-end tests are enabled (see Enabled). When
// they are, it fails t with what to install if a part is missing or the test
// does not run as root; it never skips then.
func Require(t testing.TB) {
	t.Helper()
	if !Enabled() {
		skipped.Add(1)
		t.Skip("end-to-end test: set PREPULL_E2E=1 to run it against a real Docker Engine and registry (scripts/test.sh does, and CI=true does too)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("end-to-end test needs root, because dockerd does: run it as root (scripts/test.sh as root also installs the parts)")
	}
	var missing []string
	for _, p := range requiredParts {
		if _, err := p.path(); err != nil {
			missing = append(missing, err.Error())
		}
	}
	if len(missing) > 0 {
		t.Fatalf("end-to-end test is missing parts:\n\t%s", strings.Join(missing, "\n\t"))
	}
}

var (
	mainActive atomic.Bool
	// skipped counts the tests Require skipped, for Main's one line.
	skipped atomic.Int32

	workOnce sync.Once
	workPath string
	workErr  error
)

// Main runs the tests of m, then stops everything started for the whole test
// binary (the Docker Engine) and removes its files, and exits. Call it from
// TestMain.
func Main(m *testing.M) {
	mainActive.Store(true)
	code := m.Run()
	if n := skipped.Load(); n > 0 {
		fmt.Printf("end-to-end tests skipped: %d (set PREPULL_E2E=1 to run them; scripts/test.sh and CI do)\n", n)
	}
	if err := shutdown(code != 0); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// shutdown stops the shared Docker Engine, if started, and removes the work
// directory. After a failure it prints the tail of dockerd's log.
func shutdown(failed bool) error {
	var errs []error
	if d := startedDocker(); d != nil {
		if failed {
			fmt.Fprintf(os.Stderr, "testenv: last lines of %s:\n%s\n", d.logPath, logTail(d.logPath, 40))
		}
		errs = append(errs, d.stop())
	}
	if workPath != "" {
		unmountUnder(workPath)
		if err := os.RemoveAll(workPath); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", workPath, err))
		}
	}
	return errors.Join(errs...)
}

// workDir returns this test binary's own directory under /tmp, short enough
// for unix socket paths (which must stay under 108 bytes), made on first use
// and removed by Main. Its file "owner" holds the test binary's pid.
func workDir(t testing.TB) string {
	t.Helper()
	if !mainActive.Load() {
		t.Fatal("testenv: this package needs func TestMain(m *testing.M) { testenv.Main(m) } so that what testenv starts for the whole test binary is stopped")
	}
	workOnce.Do(func() {
		reapStaleContainers()
		removeStaleWorkDirs()
		// Not os.TempDir: TMPDIR may be long, and socket paths may not.
		workPath, workErr = os.MkdirTemp("/tmp", workPrefix)
		if workErr == nil {
			workErr = os.WriteFile(filepath.Join(workPath, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o600)
		}
	})
	if workErr != nil {
		t.Fatalf("testenv: make work directory: %v", workErr)
	}
	return workPath
}

// workPrefix starts the name of each test binary's directory under /tmp.
const workPrefix = "pp-e2e-"

// removeStaleWorkDirs removes the directories of test binaries that died
// without Main's cleanup (a test timeout panics past it), unmounting the data
// root that their dockerd left mounted. A directory whose owner file names a
// live process, or that has no owner file yet, is left alone.
func removeStaleWorkDirs() {
	dirs, _ := filepath.Glob(filepath.Join("/tmp", workPrefix+"*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue
		}
		unmountUnder(dir)
		_ = os.RemoveAll(dir)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var (
	prepullOnce sync.Once
	prepullPath string
	prepullErr  error

	prepullExeOnce sync.Once
	prepullExePath string
	prepullExeErr  error
)

// Prepull builds ./cmd/prepull of this module once per test binary and
// returns the binary's path.
func Prepull(t testing.TB) string {
	t.Helper()
	dir := workDir(t)
	prepullOnce.Do(func() { prepullPath, prepullErr = buildProgram(dir, "linux", "./cmd/prepull") })
	if prepullErr != nil {
		t.Fatal(prepullErr)
	}
	return prepullPath
}

// PrepullExe builds ./cmd/prepull for windows/amd64 (CGO_ENABLED=0, as a
// release does) once per test binary and returns the path of prepull.exe,
// alone in its folder, for Wine.Command.
func PrepullExe(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(workDir(t), "windows")
	prepullExeOnce.Do(func() {
		if prepullExeErr = os.MkdirAll(dir, 0o755); prepullExeErr == nil {
			prepullExePath, prepullExeErr = buildProgram(dir, "windows", "./cmd/prepull")
		}
	})
	if prepullExeErr != nil {
		t.Fatal(prepullExeErr)
	}
	return prepullExePath
}

// WindowsExe builds pkg, a package of this module ("./internal/..."), for
// windows/amd64 beside PrepullExe, which it can then run under Wine, and
// returns its path.
func WindowsExe(t testing.TB, pkg string) string {
	t.Helper()
	exe, err := buildProgram(filepath.Dir(PrepullExe(t)), "windows", pkg)
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// buildProgram runs go build for pkg (./cmd/prepull), for goos on amd64
// unless goos is linux (the host's), into dir.
func buildProgram(dir, goos, pkg string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build prepull: %w", err)
	}
	out, err := runCmd(os.Environ(), nil, goTool, "env", "GOMOD")
	if err != nil {
		return "", fmt.Errorf("build prepull: %w", err)
	}
	gomod := strings.TrimSpace(out)
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("build prepull: the test does not run inside a Go module")
	}
	bin := filepath.Join(dir, path.Base(pkg))
	env := os.Environ()
	if goos != "linux" {
		env = append(env, "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
	}
	if goos == "windows" {
		bin += ".exe"
	}
	args := []string{"build", "-o", bin}
	if tags := os.Getenv("PREPULL_TEST_TAGS"); tags != "" {
		// -tags prepull_faults: the model test's faults (agent/fault.go).
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command(goTool, append(args, pkg)...)
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}
