package mirror

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

func TestDestination(t *testing.T) {
	target := func(ref, repo string) pak.Target {
		return pak.Target{Image: pak.Image{Repository: repo, Digest: paktest.Digest}, Reference: ref + "@" + paktest.Digest}
	}
	tests := []struct {
		to      string
		t       pak.Target
		want    string
		wantReg string
		wantRep string
		err     string
	}{
		{"m.example.com", target("harbor.example.com/proj/app", "proj/app"), "m.example.com/proj/app@" + paktest.Digest, "m.example.com", "/proj/app", ""},
		{"m.example.com:5000/dc1/", target("harbor.example.com/proj/app", "proj/app"), "m.example.com:5000/dc1/proj/app@" + paktest.Digest, "m.example.com:5000", "/dc1/proj/app", ""},
		{"127.0.0.1:5000/a/b", target("registry.hub.docker.com/user/repo", "user/repo"), "127.0.0.1:5000/a/b/user/repo@" + paktest.Digest, "127.0.0.1:5000", "/a/b/user/repo", ""},
		{"https://m.example.com", target("h.example.com/p", "p"), "", "", "", "not a URL"},
		{"mirror", target("h.example.com/p", "p"), "", "", "", "not a registry host"},
		{"m.example.com/Upper", target("h.example.com/p", "p"), "", "", "", "not a valid repository path"},
	}
	for _, tt := range tests {
		got, err := Destination(tt.to, tt.t)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Destination(%q): error %v, want one saying %q", tt.to, err, tt.err)
			}
			continue
		}
		if err != nil || got.Reference != tt.want || got.Registry != tt.wantReg || got.Repository != tt.wantRep {
			t.Errorf("Destination(%q) = %+v, %v; want %s", tt.to, got, err, tt.want)
		}
	}
}

func TestLoopbackOnlyHTTP(t *testing.T) {
	for host, ok := range map[string]bool{"127.0.0.1": true, "localhost": true, "::1": true, "10.0.0.5": false, "harbor.example.com": false} {
		if isLoopback(host) != ok {
			t.Errorf("isLoopback(%q) = %v", host, !ok)
		}
	}
}

// TestUnreachableError: the line names the registry, what prepull tried and
// the system's error, the resolver and its answer for a name that does not
// resolve, and whose proxy settings apply.
func TestUnreachableError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&net.DNSError{Name: "m.example", Server: "127.0.0.53:53", Err: "no such host", IsNotFound: true},
			"registry m.example:5000 unreachable: prepull looked up m.example on 127.0.0.53:53: no such host (the name does not resolve); mirror connects"},
		{&net.DNSError{Name: "m.example", Err: "server misbehaving", IsTemporary: true},
			"registry m.example:5000 unreachable: prepull looked up m.example: server misbehaving; mirror connects"},
		{errors.New(`Get "https://m.example:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused`),
			"registry m.example:5000 unreachable: prepull tried 127.0.0.1:5000: connect: connection refused; mirror connects"},
	}
	for _, tt := range tests {
		e := &UnreachableError{Registry: "m.example:5000", Err: tt.err}
		if got := e.Error(); !strings.HasPrefix(got, tt.want) {
			t.Errorf("Error() = %q\nwant it to start %q", got, tt.want)
		}
		if !errors.Is(e, engine.ErrRegistryUnreachable) {
			t.Errorf("%v is not engine.ErrRegistryUnreachable", e)
		}
	}
}
