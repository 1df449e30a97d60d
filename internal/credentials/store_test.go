package credentials

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
)

// TestDefaultStore checks the credential helper chosen, as Docker's client
// chooses it, when config.json names none: per system, and only when its
// program is there.
func TestDefaultStore(t *testing.T) {
	found := func(name string) (string, error) { return `C:\Program Files\Docker\` + name + ".exe", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	var asked []string
	for _, tt := range []struct {
		goos     string
		lookPath func(string) (string, error)
		want     string
	}{
		{"windows", found, "wincred"},
		{"darwin", found, "osxkeychain"},
		{"windows", missing, ""},
		{"darwin", missing, ""},
		{"linux", found, ""},
	} {
		look := func(name string) (string, error) {
			asked = append(asked, name)
			return tt.lookPath(name)
		}
		if got := defaultStore(tt.goos, look); got != tt.want {
			t.Errorf("defaultStore(%s) = %q, want %q", tt.goos, got, tt.want)
		}
	}
	if want := []string{"docker-credential-wincred", "docker-credential-osxkeychain", "docker-credential-wincred", "docker-credential-osxkeychain"}; !slices.Equal(asked, want) {
		t.Errorf("programs looked up %q, want %q (none on Linux)", asked, want)
	}
}

// TestConfiguredHelperKinds checks that a credHelpers entry wins over any
// store, and that the store's kind is said as given.
func TestConfiguredHelperKinds(t *testing.T) {
	helpers := map[string]string{"harbor.example": "ecr-login"}
	for _, tt := range []struct{ key, store, storeKind, want, wantKind string }{
		{"harbor.example", "desktop", "credsStore", "ecr-login", "credHelpers"},
		{"other.example", "desktop", "credsStore", "desktop", "credsStore"},
		{"other.example", "wincred", "default credsStore", "wincred", "default credsStore"},
		{"other.example", "", "default credsStore", "", ""},
	} {
		name, kind := configuredHelper(helpers, tt.store, tt.storeKind, tt.key)
		if name != tt.want || kind != tt.wantKind {
			t.Errorf("configuredHelper(%s, %s) = %s, %s; want %s, %s", tt.key, tt.store, name, kind, tt.want, tt.wantKind)
		}
	}
}

// TestModeWarning checks the warning about a password file open to others:
// by its mode on Unix, never on Windows, where every writable file shows
// mode 0666 and ACLs guard it.
func TestModeWarning(t *testing.T) {
	for _, tt := range []struct {
		goos string
		perm fs.FileMode
		warn bool
	}{
		{"linux", 0o600, false},
		{"linux", 0o640, true},
		{"darwin", 0o644, true},
		{"windows", 0o666, false},
	} {
		if got := modeWarning(tt.goos, "pw", tt.perm); (got != "") != tt.warn {
			t.Errorf("%s, mode %04o: warning %q, want one: %v", tt.goos, tt.perm, got, tt.warn)
		}
	}
}
