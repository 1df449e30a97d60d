package remote

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testSSHConfig = `
Host proxy-a
  HostName 10.0.0.1
  Port 2222
  User ops
  IdentityFile ~/.ssh/fleet_%r
  IdentityFile /keys/%h-%p

Host proxy-b
  HostName %h.dc2.example.com
  ProxyJump bastion

Host proxy-c
  ProxyJump ops@bastion:2200,jump2
  ServerAliveInterval 5
  ServerAliveCountMax 2

Host bastion
  HostName bastion.example.com
  User jumper
  ProxyJump outer

Host jump2
  HostName 10.9.9.9
  ProxyJump ignored-for-later-hops

Host outer
  Port 2022

Host loop1
  ProxyJump loop2
Host loop2
  ProxyJump loop1

Host legacy
  ProxyCommand nc %h %p

Host badport
  Port ssh

Host none-jump
  ProxyJump none
  IdentityFile none

Host *
  User fallback
`

// systemSSHConfig stands for /etc/ssh/ssh_config: the user's file wins.
const systemSSHConfig = `
Host proxy-a
  Port 9999
  User sys
Host sysonly
  HostName 192.0.2.9
`

func loadTestSSHConfig(t *testing.T) *SSHConfig {
	t.Helper()
	dir := t.TempDir()
	user := filepath.Join(dir, "config")
	system := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(user, []byte(testSSHConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(system, []byte(systemSSHConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadSSHConfig(user, filepath.Join(dir, "missing"), system)
	if err != nil {
		t.Fatal(err)
	}
	c.User, c.Home = "me", "/home/me"
	return c
}

func TestRoute(t *testing.T) {
	c := loadTestSSHConfig(t)
	tests := []struct {
		dest string
		want []Hop
		err  string
	}{
		{dest: "plain.example.com", want: []Hop{{Name: "plain.example.com", Addr: "plain.example.com:22", User: "fallback"}}},
		{dest: "root@plain:2200", want: []Hop{{Name: "root@plain:2200", Addr: "plain:2200", User: "root"}}},
		{dest: "proxy-a", want: []Hop{{Name: "proxy-a", Addr: "10.0.0.1:2222", User: "ops",
			Identities: []string{"/home/me/.ssh/fleet_ops", "/keys/10.0.0.1-2222"}}}},
		// The destination's own user and port beat ssh_config.
		{dest: "admin@proxy-a:22", want: []Hop{{Name: "admin@proxy-a:22", Addr: "10.0.0.1:22", User: "admin",
			Identities: []string{"/home/me/.ssh/fleet_admin", "/keys/10.0.0.1-22"}}}},
		{dest: "sysonly", want: []Hop{{Name: "sysonly", Addr: "192.0.2.9:22", User: "fallback"}}},
		{dest: "proxy-b", want: []Hop{
			{Name: "outer", Addr: "outer:2022", User: "fallback"},
			{Name: "bastion", Addr: "bastion.example.com:22", User: "jumper"},
			{Name: "proxy-b", Addr: "proxy-b.dc2.example.com:22", User: "fallback"},
		}},
		{dest: "proxy-c", want: []Hop{
			{Name: "outer", Addr: "outer:2022", User: "fallback"},
			{Name: "ops@bastion:2200", Addr: "bastion.example.com:2200", User: "ops"},
			{Name: "jump2", Addr: "10.9.9.9:22", User: "fallback"},
			{Name: "proxy-c", Addr: "proxy-c:22", User: "fallback", KeepaliveInterval: 5 * time.Second, KeepaliveCountMax: 2},
		}},
		{dest: "[::1]:2222", want: []Hop{{Name: "[::1]:2222", Addr: "[::1]:2222", User: "fallback"}}},
		{dest: "none-jump", want: []Hop{{Name: "none-jump", Addr: "none-jump:22", User: "fallback"}}},
		{dest: "loop1", err: "more than 8 jump hosts"},
		{dest: "legacy", err: "ProxyCommand"},
		{dest: "badport", err: "Port"},
	}
	for _, tt := range tests {
		t.Run(tt.dest, func(t *testing.T) {
			d, err := ParseDest(tt.dest)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Route(d)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Route = %+v, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Route =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestRouteDefaultUser(t *testing.T) {
	c, err := LoadSSHConfig() // no file at all
	if err != nil {
		t.Fatal(err)
	}
	c.User = "me"
	got, err := c.Route(Dest{Raw: "h", Host: "h"})
	if err != nil || len(got) != 1 || got[0].User != "me" || got[0].Addr != "h:22" {
		t.Fatalf("Route = %+v, %v; want me@h:22", got, err)
	}
	c.User = ""
	if _, err := c.Route(Dest{Raw: "h", Host: "h"}); err == nil || !strings.Contains(err.Error(), "no user name") {
		t.Fatalf("Route without any user: %v", err)
	}
}

// TestExpandHome checks ~ in IdentityFile per system: Windows' OpenSSH
// takes ~\ as well as ~/; elsewhere ~\ is a name like any other.
func TestExpandHome(t *testing.T) {
	for _, tt := range []struct{ goos, home, path, want string }{
		{"linux", "/home/admin", "~/.ssh/id_ed25519", "/home/admin/.ssh/id_ed25519"},
		{"linux", "/home/admin", `~\id`, `~\id`},
		{"windows", `C:\Users\Admin`, `~\.ssh\id_ed25519`, `C:\Users\Admin\.ssh\id_ed25519`},
		{"windows", `C:\Users\Admin`, "~/.ssh/id_ed25519", `C:\Users\Admin/.ssh/id_ed25519`},
		{"windows", `C:\Users\Admin`, `D:\keys\proxy`, `D:\keys\proxy`},
		{"windows", `C:\Users\Admin`, `%d\.ssh\%h`, `C:\Users\Admin\.ssh\proxy`},
	} {
		c := &SSHConfig{Home: tt.home, GOOS: tt.goos}
		if got := c.expand(tt.path, "proxy", "proxy", "root", 22); got != tt.want {
			t.Errorf("%s: expand(%s) = %s, want %s", tt.goos, tt.path, got, tt.want)
		}
	}
}
