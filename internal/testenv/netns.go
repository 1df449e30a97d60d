//go:build linux

package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

var partIP = part{name: "ip", pkg: "iproute2", purpose: "network namespaces for the TLS registry"}

// Netns is a network namespace of one test, joined to the host by a veth
// pair on a /30 of 10.213.0.0/16 used nowhere else.
//
// It exists for registries that Docker Engine must reach over verified TLS:
// Engine treats 127.0.0.0/8 as an insecure registry (no certificate check),
// and Engine 20.10 does not accept IPv6 literals such as [::1]:5000 in image
// references, so a registry on loopback never shows a certificate error.
// Addr, the namespace's end of the pair, is an ordinary address to Engine.
type Netns struct {
	// Name is the namespace's name for ip netns.
	Name string
	// Addr is the address inside the namespace, e.g. "10.213.3.2".
	Addr string
	// HostAddr is the host's end of the veth pair, e.g. "10.213.3.1".
	HostAddr string
	hostLink string
}

// netnsPrefix starts the name of every namespace testenv makes; the test
// binary's pid follows, so that a dead binary's namespaces can be found.
const netnsPrefix = "pp-"

var netnsCount atomic.Int32

// NewNetns makes a network namespace joined to the host by a veth pair, with
// its loopback up, and removes it when t ends. It calls Require and needs
// ip from Debian's iproute2.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	Require(t)
	ip := partIP.mustPath(t)
	removeStaleNetns(ip)

	pid := os.Getpid()
	n := int(netnsCount.Add(1))
	ns := &Netns{
		Name:     fmt.Sprintf("%s%d-%d", netnsPrefix, pid, n),
		hostLink: fmt.Sprintf("pp%dh%d", pid%100000, n%100),
	}
	// A /30 of 10.213.0.0/16 picked from the pid and the count, skipping
	// one that an address of this host already uses.
	for try := 0; ; try++ {
		idx := (pid*16 + n + try*7919) % 16384
		host, inside := subnetAddrs(idx)
		if !addrInUse(host) {
			ns.HostAddr, ns.Addr = host, inside
			break
		}
		if try == 32 {
			t.Fatalf("testenv: no free /30 in 10.213.0.0/16 for a network namespace")
		}
	}
	nsLink := fmt.Sprintf("pp%dn%d", pid%100000, n%100)

	t.Cleanup(func() {
		_, _ = runCmd(os.Environ(), nil, ip, "link", "del", ns.hostLink)
		if _, err := runCmd(os.Environ(), nil, ip, "netns", "del", ns.Name); err != nil {
			t.Errorf("testenv: remove network namespace: %v", err)
		}
	})
	steps := [][]string{
		{"netns", "add", ns.Name},
		{"link", "add", ns.hostLink, "type", "veth", "peer", "name", nsLink, "netns", ns.Name},
		{"addr", "add", ns.HostAddr + "/30", "dev", ns.hostLink},
		{"link", "set", ns.hostLink, "up"},
		{"-n", ns.Name, "addr", "add", ns.Addr + "/30", "dev", nsLink},
		{"-n", ns.Name, "link", "set", nsLink, "up"},
		{"-n", ns.Name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if _, err := runCmd(os.Environ(), nil, append([]string{ip}, s...)...); err != nil {
			t.Fatalf("testenv: network namespace: %v", err)
		}
	}
	return ns
}

// Exec returns argv prefixed so that it runs inside the namespace. ip netns
// exec replaces itself with the program, so the pid stays the program's.
func (ns *Netns) Exec(t testing.TB, argv ...string) []string {
	t.Helper()
	return append([]string{partIP.mustPath(t), "netns", "exec", ns.Name}, argv...)
}

// subnetAddrs returns the host's and the namespace's address in the idx-th
// /30 of 10.213.0.0/16.
func subnetAddrs(idx int) (host, inside string) {
	base := idx * 4
	return fmt.Sprintf("10.213.%d.%d", base>>8, base&0xff+1), fmt.Sprintf("10.213.%d.%d", base>>8, base&0xff+2)
}

// addrInUse reports whether an interface of this host has addr.
func addrInUse(addr string) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.String() == addr {
			return true
		}
	}
	return false
}

// removeStaleNetns removes the namespaces of test binaries that died before
// their cleanup ran. Removing a namespace removes its veth pair too.
func removeStaleNetns(ip string) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), netnsPrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue
		}
		_, _ = runCmd(os.Environ(), nil, ip, "netns", "del", filepath.Base(e.Name()))
	}
}
