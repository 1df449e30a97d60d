package remote

import (
	"net"
	"strings"

	"github.com/Microsoft/go-winio"
)

// dialAgent connects to the ssh-agent: a named pipe (\\.\pipe\..., as
// Windows' OpenSSH serves it), else a Unix socket, which Windows 10 has too
// (Git for Windows' and WSL's agents).
func dialAgent(addr string) (net.Conn, error) {
	if strings.HasPrefix(addr, `\\.\pipe\`) {
		return winio.DialPipe(addr, nil)
	}
	return net.Dial("unix", addr)
}
