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
