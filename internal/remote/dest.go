package remote

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// ErrDest is wrapped by every error about a destination as written.
var ErrDest = errors.New("bad destination")

// Dest is one destination as the user wrote it: [user@]host[:port], an
// ssh://[user@]host[:port] address, or an alias of the ssh_config file. Host
// is looked up in ssh_config, so it may be an alias.
type Dest struct {
	Raw  string // as written, for messages and the results table
	User string // empty when not given
	Host string // host name, address or ssh_config alias, without brackets
	Port int    // 0 when not given
}

// ParseDest parses one destination.
func ParseDest(s string) (Dest, error) {
	d := Dest{Raw: s}
	if s == "" {
		return d, fmt.Errorf("%w: empty", ErrDest)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return d, fmt.Errorf("%w %q: contains a space or control character", ErrDest, s)
		}
	}
	rest := strings.TrimPrefix(s, "ssh://")
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		d.User, rest = rest[:i], rest[i+1:]
		if d.User == "" {
			return d, fmt.Errorf("%w %q: empty user name", ErrDest, s)
		}
	}
	var port string
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.Index(rest, "]")
		if end < 0 {
			return d, fmt.Errorf("%w %q: missing ]", ErrDest, s)
		}
		d.Host, port = rest[1:end], rest[end+1:]
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return d, fmt.Errorf("%w %q: unexpected %q after ]", ErrDest, s, port)
			}
			port = port[1:]
			if port == "" {
				return d, fmt.Errorf("%w %q: empty port", ErrDest, s)
			}
		}
	case strings.Count(rest, ":") == 1:
		d.Host, port, _ = strings.Cut(rest, ":")
		if port == "" {
			return d, fmt.Errorf("%w %q: empty port", ErrDest, s)
		}
	default:
		d.Host = rest // a name, or an IPv6 address without a port
	}
	if d.Host == "" {
		return d, fmt.Errorf("%w %q: empty host", ErrDest, s)
	}
	if strings.HasPrefix(d.Host, "-") {
		return d, fmt.Errorf("%w %q: a host cannot start with -", ErrDest, s)
	}
	if strings.Contains(d.Host, "/") || strings.Contains(d.Host, "@") {
		return d, fmt.Errorf("%w %q: not a host name", ErrDest, s)
	}
	if port != "" {
		n, err := parsePort(port)
		if err != nil {
			return d, fmt.Errorf("%w %q: %v", ErrDest, s, err)
		}
		d.Port = n
	}
	return d, nil
}

// parsePort parses a TCP port number, 1 to 65535.
func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return n, nil
}

// ReadHostsFile reads destinations one a line. Blank lines and everything
// from a # to the end of its line are ignored. name is used in errors, which
// give the line number.
func ReadHostsFile(r io.Reader, name string) ([]Dest, error) {
	var dests []Dest
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		d, err := ParseDest(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		dests = append(dests, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return dests, nil
}

// hostPort joins a host and port as x/crypto and known_hosts expect them.
func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
