//go:build !windows

package remote

import "net"

// dialAgent connects to the ssh-agent's Unix socket.
func dialAgent(addr string) (net.Conn, error) { return net.Dial("unix", addr) }
