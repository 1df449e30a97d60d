package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// maxJumps bounds a ProxyJump chain, so that jump hosts naming each other
// cannot loop.
const maxJumps = 8

// SSHConfig is what destinations are looked up in: ssh_config files, the
// first that sets a keyword wins, as in OpenSSH.
type SSHConfig struct {
	files []*ssh_config.Config

	// User is the login used when neither the destination nor ssh_config
	// names one: the local user, as in OpenSSH.
	User string
	// Home expands ~ and %d in IdentityFile.
	Home string
	// GOOS is the system the paths are for: on Windows, as for its own
	// OpenSSH, ~\ starts a path under Home too.
	GOOS string
}

// LoadSSHConfig parses the ssh_config files at paths, in order of
// precedence. A file that does not exist is skipped; the caller checks a file
// the user named. User and Home are set from the local user.
func LoadSSHConfig(paths ...string) (*SSHConfig, error) {
	c := &SSHConfig{User: localUser(), GOOS: runtime.GOOS}
	c.Home, _ = os.UserHomeDir()
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ssh_config: %w", err)
		}
		cfg, err := ssh_config.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("ssh_config %s: %w", p, err)
		}
		c.files = append(c.files, cfg)
	}
	return c, nil
}

// localUser is the name of the user running prepull.
func localUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	return ""
}

// get returns the first value of key for alias, or "".
func (c *SSHConfig) get(alias, key string) (string, error) {
	for _, f := range c.files {
		v, err := f.Get(alias, key)
		if err != nil {
			return "", fmt.Errorf("ssh_config: %s for %s: %w", key, alias, err)
		}
		if v != "" {
			return v, nil
		}
	}
	return "", nil
}

// getAll returns every value of key for alias, from every file.
func (c *SSHConfig) getAll(alias, key string) ([]string, error) {
	var all []string
	for _, f := range c.files {
		v, err := f.GetAll(alias, key)
		if err != nil {
			return nil, fmt.Errorf("ssh_config: %s for %s: %w", key, alias, err)
		}
		all = append(all, v...)
	}
	return all, nil
}

// Hop is one SSH server to log in to: a proxy, or a jump host on the way.
type Hop struct {
	// Name is the destination as written, for messages.
	Name string
	// Addr is host:port, dialled and looked up in known_hosts.
	Addr string
	// User is the login name.
	User string
	// Identities are the IdentityFile entries of ssh_config, expanded.
	Identities []string
	// KeepaliveInterval and KeepaliveCountMax come from ServerAliveInterval
	// and ServerAliveCountMax; zero when ssh_config does not set them.
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
}

// Route returns the hops that lead to d: the jump hosts of its ProxyJump, in
// order, then d itself. The first jump host's own ProxyJump is honoured, as
// OpenSSH does.
func (c *SSHConfig) Route(d Dest) ([]Hop, error) {
	return c.route(d, 0)
}

func (c *SSHConfig) route(d Dest, depth int) ([]Hop, error) {
	if depth > maxJumps {
		return nil, fmt.Errorf("ProxyJump: more than %d jump hosts (do they name each other?)", maxJumps)
	}
	hop, jump, err := c.hop(d)
	if err != nil {
		return nil, err
	}
	if jump == "" || strings.EqualFold(jump, "none") {
		return []Hop{hop}, nil
	}
	var route []Hop
	for i, j := range strings.Split(jump, ",") {
		jd, err := ParseDest(strings.TrimSpace(j))
		if err != nil {
			return nil, fmt.Errorf("%s: ProxyJump: %w", d.Raw, err)
		}
		if i == 0 {
			first, err := c.route(jd, depth+1)
			if err != nil {
				return nil, err
			}
			route = append(route, first...)
			continue
		}
		h, _, err := c.hop(jd)
		if err != nil {
			return nil, err
		}
		route = append(route, h)
	}
	if len(route) > maxJumps {
		return nil, fmt.Errorf("ProxyJump: more than %d jump hosts", maxJumps)
	}
	return append(route, hop), nil
}

// hop resolves one destination through ssh_config and returns it with its
// ProxyJump value.
func (c *SSHConfig) hop(d Dest) (Hop, string, error) {
	alias := d.Host
	h := Hop{Name: d.Raw, User: d.User}
	var err error
	get := func(key string) string {
		if err != nil {
			return ""
		}
		var v string
		v, err = c.get(alias, key)
		return v
	}
	host := get("HostName")
	portText := get("Port")
	if h.User == "" {
		h.User = get("User")
	}
	jump := get("ProxyJump")
	proxyCommand := get("ProxyCommand")
	interval := get("ServerAliveInterval")
	countMax := get("ServerAliveCountMax")
	if err != nil {
		return h, "", err
	}
	if proxyCommand != "" && !strings.EqualFold(proxyCommand, "none") {
		return h, "", fmt.Errorf("%s: ssh_config sets ProxyCommand, which prepull does not run; use ProxyJump", d.Raw)
	}
	if host == "" {
		host = alias
	} else {
		host = strings.ReplaceAll(host, "%h", alias)
	}
	if h.User == "" {
		h.User = c.User
	}
	if h.User == "" {
		return h, "", fmt.Errorf("%s: no user name: give user@host", d.Raw)
	}
	port := d.Port
	if port == 0 && portText != "" {
		if port, err = parsePort(portText); err != nil {
			return h, "", fmt.Errorf("%s: ssh_config Port: %w", d.Raw, err)
		}
	}
	if port == 0 {
		port = 22
	}
	h.Addr = hostPort(host, port)
	if err := h.keepalive(interval, countMax); err != nil {
		return h, "", fmt.Errorf("%s: %w", d.Raw, err)
	}
	files, err := c.getAll(alias, "IdentityFile")
	if err != nil {
		return h, "", err
	}
	for _, f := range files {
		if strings.EqualFold(f, "none") {
			continue
		}
		h.Identities = append(h.Identities, c.expand(f, alias, host, h.User, port))
	}
	return h, jump, nil
}

// keepalive sets h's keepalives from ssh_config's ServerAliveInterval and
// ServerAliveCountMax, each left unset when empty.
func (h *Hop) keepalive(interval, countMax string) error {
	if interval != "" {
		n, err := strconv.Atoi(interval)
		if err != nil || n < 0 {
			return fmt.Errorf("ssh_config ServerAliveInterval %q is not a number of seconds", interval)
		}
		h.KeepaliveInterval = time.Duration(n) * time.Second
	}
	if countMax != "" {
		n, err := strconv.Atoi(countMax)
		if err != nil || n < 1 {
			return fmt.Errorf("ssh_config ServerAliveCountMax %q is not a positive number", countMax)
		}
		h.KeepaliveCountMax = n
	}
	return nil
}

// expand expands the ~ and the % tokens ssh_config allows in IdentityFile
// that prepull knows: %d (home), %h (host name), %n (alias), %p (port),
// %r (remote user), %u (local user) and %%.
func (c *SSHConfig) expand(path, alias, host, user string, port int) string {
	if path == "~" || strings.HasPrefix(path, "~/") || c.GOOS == "windows" && strings.HasPrefix(path, `~\`) {
		path = c.Home + path[1:]
	}
	r := strings.NewReplacer("%%", "%", "%d", c.Home, "%h", host, "%n", alias,
		"%p", strconv.Itoa(port), "%r", user, "%u", c.User)
	return r.Replace(path)
}
