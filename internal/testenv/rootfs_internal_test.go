//go:build linux

package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPickMirror(t *testing.T) {
	const deb822 = `Types: deb
# a comment: with a colon
URIs: http://archive.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://archive.example/debian-security
Suites: bookworm-security
Components: main
`
	const list = `# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://security.example/debian-security bookworm-security main
deb-src http://src.example/debian bookworm main
deb [signed-by=/k.gpg] http://list.example/debian bookworm main
`
	const thirdParty = `Types: deb
URIs: http://vendor.example/repo
Suites: stable
Components: main
`
	tests := []struct {
		name     string
		entries  []aptEntry
		codename string
		want     string
	}{
		{"deb822", parseDeb822Sources(deb822), "bookworm", "http://archive.example/debian"},
		{"deb822 security only", parseDeb822Sources(deb822)[1:], "bookworm", ""},
		{"one-line list", parseSourcesList(list), "bookworm", "http://list.example/debian"},
		{"a vendor's entry first", append(parseDeb822Sources(thirdParty), parseDeb822Sources(deb822)...), "bookworm", "http://archive.example/debian"},
		{"no codename: first not security", append(parseSourcesList(list), parseDeb822Sources(thirdParty)...), "", "http://list.example/debian"},
		{"disabled", parseDeb822Sources("Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: bookworm\n"), "bookworm", ""},
		{"nothing", nil, "bookworm", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pickMirror(tt.entries, tt.codename); got != tt.want {
				t.Errorf("pickMirror = %q, want %q (entries %+v)", got, tt.want, tt.entries)
			}
		})
	}
	if got := osCodename("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\n"); got != "bookworm" {
		t.Errorf("osCodename = %q, want bookworm", got)
	}
}

func TestRootfsKey(t *testing.T) {
	a := rootfsKey("trixie", sortedPackages([]string{"docker.io", "ca-certificates"}))
	b := rootfsKey("trixie", sortedPackages([]string{"ca-certificates", "docker.io", "docker.io", ""}))
	if a != b {
		t.Errorf("the same packages in another order give keys %s and %s", a, b)
	}
	if !strings.HasPrefix(a, "trixie-") || len(a) != len("trixie-")+12 {
		t.Errorf("key %q: want trixie- and 12 hex digits", a)
	}
	if c := rootfsKey("trixie", []string{"docker.io"}); c == a {
		t.Errorf("other packages give the same key %s", c)
	}
	if c := rootfsKey("sid", sortedPackages([]string{"docker.io", "ca-certificates"})); c == a {
		t.Errorf("another suite gives the same key %s", c)
	}
}

// TestRootfsComplete checks what makes a cached root count as finished: the
// marker of a build of the same suite and packages, and every package
// installed.
func TestRootfsComplete(t *testing.T) {
	pkgs := []string{"ca-certificates", "docker.io"}
	want := rootfsMarkerText("trixie", pkgs)
	status := "Package: docker.io\nStatus: install ok installed\n\nPackage: ca-certificates\nStatus: install ok installed\n"
	tests := []struct {
		name           string
		marker, status string
		ok             bool
	}{
		{"complete", want, status, true},
		{"no marker", "", status, false},
		{"other packages", rootfsMarkerText("trixie", pkgs[:1]), status, false},
		{"half-installed", want, strings.Replace(status, "install ok installed\n\n", "install ok half-configured\n\n", 1), false},
		{"no dpkg status", want, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for path, data := range map[string]string{rootfsMarker: tt.marker, "var/lib/dpkg/status": tt.status} {
				if data == "" {
					continue
				}
				if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, path), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := rootfsComplete(root, want, pkgs)
			if (err == nil) != tt.ok {
				t.Errorf("rootfsComplete = %v, want complete %v", err, tt.ok)
			}
		})
	}
}

// fakeDebootstrap writes a script that does what buildRootfs needs of
// debootstrap: it marks each --include package installed in TARGET's dpkg
// status, and appends a line to count per build. With fail set it fails.
func fakeDebootstrap(t *testing.T, count string, fail bool) string {
	t.Helper()
	script := `#!/bin/sh
set -e
echo build >>"` + count + `"
[ -z "$FAIL" ] || { echo "E: cannot reach the mirror"; exit 1; }
pkgs="" n=0 target=""
for a in "$@"; do
  case "$a" in
  --include=*) pkgs="${a#--include=}" ;;
  --*) ;;
  *) n=$((n+1)); [ $n -eq 2 ] && target="$a" ;; # SUITE TARGET MIRROR
  esac
done
mkdir -p "$target/var/lib/dpkg" "$target/etc"
for p in $(echo "$pkgs" | tr , ' '); do printf 'Package: %s\nStatus: install ok installed\n\n' "$p"; done >"$target/var/lib/dpkg/status"
`
	if fail {
		script = strings.Replace(script, `[ -z "$FAIL" ]`, `false`, 1)
	}
	path := filepath.Join(t.TempDir(), "debootstrap")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBuildRootfs checks the cache around debootstrap: one build for callers
// that come at once, the same root afterwards, a rebuild of an incomplete
// root with the leftovers of a killed build removed, and a failed build that
// leaves nothing behind.
func TestBuildRootfs(t *testing.T) {
	sources := filepath.Join(t.TempDir(), "debian.sources")
	if err := os.WriteFile(sources, []byte("Types: deb\nURIs: http://archive.example/debian\nSuites: bookworm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := aptSources
	aptSources.deb822Glob, aptSources.listFile, aptSources.listGlob = sources, "/nonexistent", "/nonexistent/*"
	t.Cleanup(func() { aptSources = saved })

	cache := t.TempDir()
	count := filepath.Join(t.TempDir(), "count")
	builds := func() int {
		data, _ := os.ReadFile(count)
		return strings.Count(string(data), "build")
	}
	debootstrap := fakeDebootstrap(t, count, false)
	pkgs := []string{"docker.io", "ca-certificates"}

	roots := make(chan string, 3)
	for range 3 {
		go func() {
			root, err := buildRootfs(t, debootstrap, cache, "trixie", pkgs)
			if err != nil {
				t.Error(err)
			}
			roots <- root
		}()
	}
	root := <-roots
	for range 2 {
		if other := <-roots; other != root {
			t.Errorf("callers at once got %s and %s", root, other)
		}
	}
	if n := builds(); n != 1 {
		t.Fatalf("%d builds for three callers at once, want 1", n)
	}
	if fi, err := os.Stat(root); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("the root: %v, %v; want a directory of mode 0755", fi, err)
	}

	// A build killed midway, and a root whose marker is gone.
	leftover := filepath.Join(cache, ".tmp-"+filepath.Base(root)+"-123")
	if err := os.MkdirAll(leftover, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, rootfsMarker)); err != nil {
		t.Fatal(err)
	}
	again, err := buildRootfs(t, debootstrap, cache, "trixie", pkgs)
	if err != nil || again != root || builds() != 2 {
		t.Fatalf("rebuild: %s, %v, %d builds; want %s built again", again, err, builds(), root)
	}
	if _, err := os.Stat(leftover); err == nil {
		t.Error("the leftover of a killed build is still there")
	}
	if _, err := buildRootfs(t, debootstrap, cache, "trixie", pkgs); err != nil || builds() != 2 {
		t.Fatalf("a complete root was built again (%v, %d builds)", err, builds())
	}

	// A failed build names the log's last lines and leaves nothing behind.
	_, err = buildRootfs(t, fakeDebootstrap(t, count, true), cache, "sid", pkgs)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the mirror") {
		t.Fatalf("failed build: %v; want the log's last lines", err)
	}
	if _, err := os.Stat(filepath.Join(cache, rootfsKey("sid", sortedPackages(pkgs)))); err == nil {
		t.Error("a failed build left a root")
	}
	if left, _ := filepath.Glob(filepath.Join(cache, ".tmp-*")); len(left) != 0 {
		t.Errorf("a failed build left %v", left)
	}
}
