package pak_test

import (
	"testing"

	"github.com/prepull/prepull/internal/pak"
)

func TestCanonicalRegistry(t *testing.T) {
	tests := []struct {
		host, want string
		hub        bool
	}{
		{"docker.io", "docker.io", true},
		{"index.docker.io", "docker.io", true},
		{"registry-1.docker.io", "docker.io", true},
		{"registry.hub.docker.com", "docker.io", true},
		{"Registry.Hub.Docker.com", "docker.io", true},
		{"DOCKER.IO", "docker.io", true},
		{"hub.docker.com", "hub.docker.com", false}, // the web site, not a registry name Docker knows
		{"docker.io:443", "docker.io:443", false},   // a port makes it another host for Docker Engine
		{"localhost:5088", "localhost:5088", false},
		{"LOCALHOST:5088", "localhost:5088", false},
		{"Harbor.Example.com:8443", "harbor.example.com:8443", false},
		{"[::1]:5000", "[::1]:5000", false},
	}
	for _, tt := range tests {
		if got := pak.CanonicalRegistry(tt.host); got != tt.want {
			t.Errorf("CanonicalRegistry(%q) = %q, want %q", tt.host, got, tt.want)
		}
		if got := pak.IsDockerHub(tt.host); got != tt.hub {
			t.Errorf("IsDockerHub(%q) = %v, want %v", tt.host, got, tt.hub)
		}
		if !pak.SameRegistry(tt.host, tt.want) {
			t.Errorf("SameRegistry(%q, %q) = false", tt.host, tt.want)
		}
	}
	if pak.SameRegistry("harbor.example.com", "harbor.example.com:443") {
		t.Error("a host with and without a port must be different registries, as Docker Engine sees them")
	}
}
