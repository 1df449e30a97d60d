package mirror

import (
	"strings"
	"testing"

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
