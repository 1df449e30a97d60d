//go:build linux

package testenv

import "testing"

// RootWine is the root that Windows binaries run in: Debian trixie's Wine 10
// (bookworm's Wine 8 cannot start Go 1.24+ binaries). debootstrap follows
// Depends, not Recommends, so the root holds wine64 as apt-get install
// --no-install-recommends would: about 1.4 GB.
var RootWine = Root{Suite: "trixie", Packages: []string{"wine64"}}

// WineRoot returns the cached root of RootWine, and fails t when
// systemd-nspawn, which runs it, is missing.
func WineRoot(t testing.TB) string {
	t.Helper()
	if _, err := partNspawn.path(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return Rootfs(t, RootWine.Suite, RootWine.Packages...)
}
