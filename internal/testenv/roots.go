//go:build linux

package testenv

import (
	"slices"
	"strings"
)

// Root is a Debian root that tests run something in: the suite debootstrap
// builds it from, and the packages it includes.
type Root struct {
	Suite    string
	Packages []string
}

// String names the root as TestBuildRoots' subtests do: suite+packages.
func (r Root) String() string { return r.Suite + "+" + strings.Join(sortedPackages(r.Packages), ",") }

// dockerPackages are what a root running a Docker Engine includes.
var dockerPackages = []string{"ca-certificates", "docker.io"}

// RootBooted is the root that the systemd end-to-end test boots: systemd
// as PID 1, with the Docker Engine the installed unit starts.
var RootBooted = Root{Suite: "bookworm", Packages: []string{"dbus", "docker.io", "systemd", "systemd-sysv"}}

// RootAnsible is the controller the Ansible role's test runs
// ansible-playbook and ansible-lint from: Debian's, never the machine's own.
// python3-cffi-backend is named because debootstrap does not resolve the
// virtual package python3-cryptography depends on.
var RootAnsible = Root{Suite: "bookworm", Packages: []string{"ansible-core", "ansible-lint", "openssh-client", "python3-cffi-backend"}}

// RootProxy is a Cloud Proxy that the Ansible role's test boots and reaches
// over SSH: RootBooted with an OpenSSH server and the python3 Ansible needs.
var RootProxy = Root{Suite: "bookworm", Packages: []string{"dbus", "docker.io", "openssh-server", "python3", "systemd", "systemd-sysv"}}

// Roots is every root any test uses, the one list scripts/test.sh builds
// (TestBuildRoots) before go test starts, so that go test's timeout bounds
// tests alone. Rootfs fails a test that asks for a root missing here: add
// yours.
var Roots = []Root{
	{Suite: "trixie", Packages: dockerPackages}, // Engines: Docker 26.1
	{Suite: "sid", Packages: dockerPackages},    // Engines: the newest Docker
	RootBooted,
	RootAnsible,
	RootProxy,
	RootWine,
}

// listed reports whether Roots holds the root of suite with pkgs, in any
// order.
func listed(suite string, pkgs []string) bool {
	want := sortedPackages(pkgs)
	for _, r := range Roots {
		if r.Suite == suite && slices.Equal(sortedPackages(r.Packages), want) {
			return true
		}
	}
	return false
}
