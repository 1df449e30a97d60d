package remote

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDest(t *testing.T) {
	tests := []struct {
		in   string
		want Dest
		err  string // substring of the error; empty for success
	}{
		{in: "proxy-1", want: Dest{Host: "proxy-1"}},
		{in: "admin@proxy-1", want: Dest{User: "admin", Host: "proxy-1"}},
		{in: "proxy-1:2222", want: Dest{Host: "proxy-1", Port: 2222}},
		{in: "admin@10.0.0.7:22", want: Dest{User: "admin", Host: "10.0.0.7", Port: 22}},
		{in: "root@[::1]:2222", want: Dest{User: "root", Host: "::1", Port: 2222}},
		{in: "[fe80::1]", want: Dest{Host: "fe80::1"}},
		{in: "::1", want: Dest{Host: "::1"}},
		{in: "ssh://ops@proxy.example.com:2200", want: Dest{User: "ops", Host: "proxy.example.com", Port: 2200}},
		{in: "robot$x@y@proxy", want: Dest{User: "robot$x@y", Host: "proxy"}},
		{in: "", err: "empty"},
		{in: "@proxy", err: "empty user"},
		{in: "proxy:", err: "empty port"},
		{in: "proxy:0", err: "from 1 to 65535"},
		{in: "proxy:65536", err: "from 1 to 65535"},
		{in: "proxy:ssh", err: "from 1 to 65535"},
		{in: "[::1", err: "missing ]"},
		{in: "[::1]x", err: "unexpected"},
		{in: "[::1]:", err: "empty port"},
		{in: "user@", err: "empty host"},
		{in: "-oProxyCommand=x", err: "cannot start with -"},
		{in: "proxy 1", err: "space"},
		{in: "proxy\n", err: "control"},
		{in: "a/b", err: "not a host name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDest(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrDest) {
					t.Fatalf("ParseDest(%q) = %+v, %v; want an ErrDest containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			tt.want.Raw = tt.in
			if err != nil || got != tt.want {
				t.Fatalf("ParseDest(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestReadHostsFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // Raw of each destination
		err  string
	}{
		{name: "empty", in: "", want: nil},
		{name: "comments and blanks", in: "# fleet\n\nproxy-a\n  admin@proxy-b:2222   # dc2\n\t\n#proxy-c\n", want: []string{"proxy-a", "admin@proxy-b:2222"}},
		{name: "crlf", in: "proxy-a\r\nproxy-b\r\n", want: []string{"proxy-a", "proxy-b"}},
		{name: "no final newline", in: "proxy-a", want: []string{"proxy-a"}},
		{name: "bad line", in: "proxy-a\nproxy-b:x\n", err: "hosts:2: bad destination"},
		{name: "two on a line", in: "proxy-a proxy-b\n", err: "hosts:1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dests, err := ReadHostsFile(strings.NewReader(tt.in), "hosts")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range dests {
				got = append(got, d.Raw)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
