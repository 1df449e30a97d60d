package credentials

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
)

// isolationHint is added to the error of a login program (a credential
// helper, a password command) that failed in a process without a network:
// such a program may have needed one, and its own words rarely say so.
const isolationHint = "this process has no network (prepull.service sets PrivateNetwork=yes and RestrictAddressFamilies=AF_UNIX), " +
	"so a helper or command that must reach the network fails: let it with install.sh --network-logins " +
	"(the drop-in systemd/network-logins.conf; see systemd/README.md)"

// networkHint returns isolationHint when this process can reach no network,
// "" otherwise.
func networkHint() string {
	if networkIsolated() {
		return isolationHint
	}
	return ""
}

// networkIsolated reports whether this process can reach no network: it may
// not open an Internet socket (RestrictAddressFamilies=AF_UNIX refuses it
// with EAFNOSUPPORT), or its network namespace holds nothing but loopback
// (PrivateNetwork=yes).
func networkIsolated() bool {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPERM)
	}
	c.Close()
	return onlyLoopback("/proc/self/net/dev")
}

// onlyLoopback reports whether the network devices file (Linux's
// /proc/self/net/dev) lists no device but lo. A file that cannot be read
// reports false: nothing is known then.
func onlyLoopback(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	devices := 0
	for _, line := range strings.Split(string(data), "\n") {
		name, _, ok := strings.Cut(line, ":")
		if !ok {
			continue // the two header lines
		}
		if strings.TrimSpace(name) != "lo" {
			return false
		}
		devices++
	}
	return devices > 0
}
