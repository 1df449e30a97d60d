//go:build linux

package testenv

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var partDebootstrap = part{name: "debootstrap", pkg: "debootstrap", purpose: "the Debian roots of newer engines and of a booted systemd"}

// rootfsCacheDir holds the debootstrapped roots, outside any clone, so that
// every test binary and every checkout shares them. PREPULL_ROOTFS_CACHE
// overrides it.
const rootfsCacheDir = "/var/cache/prepull-test/rootfs"

// rootfsFormat is part of each root's key: raise it when the way a root is
// built changes, so that old roots are built anew.
const rootfsFormat = "1"

// rootfsMarker is the file, inside a root, that a complete build leaves; it
// holds the root's suite and packages.
const rootfsMarker = "etc/prepull-rootfs"

// Rootfs returns a Debian root made by debootstrap --variant=minbase for
// suite with pkgs included, cached outside the clone (by default in
// /var/cache/prepull-test/rootfs/<suite>-<short hash of the package list>).
// It is built on first use under an exclusive file lock, since several test
// binaries run at once, into a temporary directory that is then renamed; it
// is built again when missing or incomplete. The root is shared: callers
// must not change it (bind their own writable directories instead). The
// Debian mirror is the one this machine's apt sources name. It calls Require
// and fails t when debootstrap is missing, or when Roots does not list the
// root (scripts/test.sh builds those before go test starts).
func Rootfs(t testing.TB, suite string, pkgs ...string) string {
	t.Helper()
	Require(t)
	if !listed(suite, pkgs) {
		t.Fatalf("testenv: the %s root with %s is not in testenv.Roots: add it there, so that scripts/test.sh builds it before go test starts",
			suite, strings.Join(pkgs, ","))
	}
	debootstrap, err := partDebootstrap.path()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cache := os.Getenv("PREPULL_ROOTFS_CACHE")
	if cache == "" {
		cache = rootfsCacheDir
	}
	root, err := buildRootfs(t, debootstrap, cache, suite, pkgs)
	if err != nil {
		t.Fatalf("testenv: the %s root with %s: %v", suite, strings.Join(pkgs, ","), err)
	}
	return root
}

// rootfsKey names the root of suite with pkgs: the suite and a short hash of
// the sorted package list and the build format.
func rootfsKey(suite string, pkgs []string) string {
	sum := sha256.Sum256([]byte(rootfsFormat + "\n" + strings.Join(pkgs, ",")))
	return suite + "-" + hex.EncodeToString(sum[:])[:12]
}

// sortedPackages returns pkgs sorted, without duplicates or empty names.
func sortedPackages(pkgs []string) []string {
	var out []string
	for _, p := range pkgs {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// buildRootfs returns cache/<key>, building it first if it is missing or
// incomplete.
func buildRootfs(t testing.TB, debootstrap, cache, suite string, pkgs []string) (string, error) {
	if suite == "" || strings.ContainsAny(suite, "/ \t\n") {
		return "", fmt.Errorf("suite %q is not a Debian suite name", suite)
	}
	pkgs = sortedPackages(pkgs)
	key := rootfsKey(suite, pkgs)
	root := filepath.Join(cache, key)
	want := rootfsMarkerText(suite, pkgs)
	if rootfsComplete(root, want, pkgs) == nil {
		return root, nil
	}

	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("make the cache directory: %w", err)
	}
	unlock, err := lockFile(filepath.Join(cache, key+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another test binary may have built it while this one waited.
	incomplete := rootfsComplete(root, want, pkgs)
	if incomplete == nil {
		return root, nil
	}
	// Under the lock, nothing else builds this key: what a build killed
	// midway left is garbage.
	leftovers, _ := filepath.Glob(filepath.Join(cache, ".tmp-"+key+"-*"))
	for _, dir := range leftovers {
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("remove the leftover of a killed build: %w", err)
		}
	}
	if _, err := os.Lstat(root); err == nil {
		t.Logf("testenv: rebuilding %s: %v", root, incomplete)
		if err := os.RemoveAll(root); err != nil {
			return "", fmt.Errorf("remove the incomplete root: %w", err)
		}
	}

	mirror, err := debianMirror()
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cache, ".tmp-"+key+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone after the rename, unless the build failed
	logPath := filepath.Join(cache, key+".log")
	argv := []string{debootstrap, "--variant=minbase"}
	if len(pkgs) > 0 {
		argv = append(argv, "--include="+strings.Join(pkgs, ","))
	}
	argv = append(argv, suite, tmp, mirror)
	t.Logf("testenv: building the %s root with %s in %s (about a minute; cached afterwards); log in %s",
		suite, strings.Join(pkgs, ","), root, logPath)
	start := time.Now()
	if err := runLogged(logPath, argv); err != nil {
		return "", fmt.Errorf("%w; last lines of %s:\n%s", err, logPath, logTail(logPath, 20))
	}
	if err := os.WriteFile(filepath.Join(tmp, rootfsMarker), []byte(want), 0o644); err != nil {
		return "", fmt.Errorf("mark the root complete: %w", err)
	}
	if err := rootfsComplete(tmp, want, pkgs); err != nil {
		return "", fmt.Errorf("debootstrap succeeded but the root is incomplete: %w", err)
	}
	// debootstrap makes its target 0700 when it made it; the root of a
	// container must be readable like any /.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", fmt.Errorf("move the built root into place: %w", err)
	}
	t.Logf("testenv: built the %s root in %v", suite, time.Since(start).Round(time.Second))
	return root, nil
}

// rootfsMarkerText is what the marker of a complete root holds.
func rootfsMarkerText(suite string, pkgs []string) string {
	return fmt.Sprintf("format %s\nsuite %s\npackages %s\n", rootfsFormat, suite, strings.Join(pkgs, ","))
}

// rootfsComplete returns nil when root holds a finished build for want: its
// marker says so and dpkg has every package installed.
func rootfsComplete(root, want string, pkgs []string) error {
	got, err := os.ReadFile(filepath.Join(root, rootfsMarker))
	if err != nil {
		return fmt.Errorf("no marker of a finished build: %w", err)
	}
	if string(got) != want {
		return fmt.Errorf("its marker %s says %q, want %q", rootfsMarker, got, want)
	}
	installed, err := dpkgInstalled(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		if !installed[p] {
			return fmt.Errorf("package %s is not installed in it", p)
		}
	}
	return nil
}

// dpkgInstalled returns the packages that the dpkg status file at path marks
// "install ok installed".
func dpkgInstalled(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the dpkg status: %w", err)
	}
	defer f.Close()
	installed := map[string]bool{}
	var name string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			name = ""
		case strings.HasPrefix(line, "Package: "):
			name = strings.TrimSpace(strings.TrimPrefix(line, "Package: "))
		case strings.HasPrefix(line, "Status: ") && name != "":
			if strings.TrimSpace(strings.TrimPrefix(line, "Status: ")) == "install ok installed" {
				installed[name] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the dpkg status: %w", err)
	}
	return installed, nil
}

// lockFile takes an exclusive flock on path, waiting as long as another
// holder keeps it, and returns its release. Locks of separate opens conflict
// within one process too.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// runLogged runs argv to the end with its output written to logPath.
func runLogged(logPath string, argv []string) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = cleanEnv([]string{"DEBIAN_", "LANG", "LC_"}, "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return nil
}

// aptSources are where debianMirror looks, in order.
var aptSources = struct{ deb822Glob, listFile, listGlob, osRelease string }{
	deb822Glob: "/etc/apt/sources.list.d/*.sources",
	listFile:   "/etc/apt/sources.list",
	listGlob:   "/etc/apt/sources.list.d/*.list",
	osRelease:  "/etc/os-release",
}

// aptEntry is one "deb" source: an archive URI and its suites.
type aptEntry struct {
	uri    string
	suites []string
}

// debianMirror returns the URI of the machine's Debian archive as its apt
// sources name it: the deb entry for the machine's own release (bookworm),
// else the first deb entry that is not security updates. The harness never
// names a mirror of its own.
func debianMirror() (string, error) {
	var entries []aptEntry
	files, _ := filepath.Glob(aptSources.deb822Glob)
	for _, path := range files {
		if data, err := os.ReadFile(path); err == nil {
			entries = append(entries, parseDeb822Sources(string(data))...)
		}
	}
	lists, _ := filepath.Glob(aptSources.listGlob)
	for _, path := range append([]string{aptSources.listFile}, lists...) {
		if data, err := os.ReadFile(path); err == nil {
			entries = append(entries, parseSourcesList(string(data))...)
		}
	}
	osRelease, _ := os.ReadFile(aptSources.osRelease)
	if uri := pickMirror(entries, osCodename(string(osRelease))); uri != "" {
		return uri, nil
	}
	return "", fmt.Errorf("no Debian archive in the apt sources (%s, %s): debootstrap needs one",
		aptSources.deb822Glob, aptSources.listFile)
}

// pickMirror returns the URI of the entry with the suite codename, else of
// the first entry without security suites, else "".
func pickMirror(entries []aptEntry, codename string) string {
	if codename != "" {
		for _, e := range entries {
			if slices.Contains(e.suites, codename) {
				return e.uri
			}
		}
	}
	for _, e := range entries {
		if !securitySuites(e.suites) {
			return e.uri
		}
	}
	return ""
}

// osCodename returns VERSION_CODENAME of an os-release file, or "".
func osCodename(text string) string {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}

// parseDeb822Sources returns the enabled deb entries of a deb822 sources
// file, one per URI.
func parseDeb822Sources(text string) []aptEntry {
	var entries []aptEntry
	for _, stanza := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue // comments and continuation lines
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !slices.Contains(strings.Fields(fields["types"]), "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			entries = append(entries, aptEntry{uri: uri, suites: strings.Fields(fields["suites"])})
		}
	}
	return entries
}

// parseSourcesList returns the "deb [options] URI SUITE COMPONENT..." lines
// of a one-line sources list.
func parseSourcesList(text string) []aptEntry {
	var entries []aptEntry
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // [arch=amd64 signed-by=...]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 {
			entries = append(entries, aptEntry{uri: f[0], suites: f[1:2]})
		}
	}
	return entries
}

// securitySuites reports whether suites are security updates
// (bookworm-security, or the old bookworm/updates).
func securitySuites(suites []string) bool {
	for _, s := range suites {
		if strings.HasSuffix(s, "-security") || strings.HasSuffix(s, "/updates") {
			return true
		}
	}
	return false
}
