package pull

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/engine"
)

// refused is what the engine says when the registry is down, classified as
// the Docker engine of internal/engine classifies it.
var refused = engine.MarkRegistryText(errors.New(`Error response from daemon: Get "http://harbor.example:8443/v2/": dial tcp 10.0.0.7:8443: connect: connection refused`))

// movedThenCut sends bytes, then fails as a registry that went away does.
func movedThenCut(_ context.Context, progress func(engine.Progress)) error {
	progress(engine.Progress{Layer: "abc", Status: "Downloading", Current: 5, Total: 10})
	return engine.MarkRegistryText(errors.New("read tcp 127.0.0.1:40000->10.0.0.7:8443: read: connection reset by peer"))
}

// TestRegistryUnreachableGivesUp: a registry that cannot be reached ends a
// step after RegistryAttempts attempts in a row, with an error naming the
// host, the address, the system's error and the engine's proxy settings;
// an attempt that moved bytes starts the count again.
func TestRegistryUnreachableGivesUp(t *testing.T) {
	tests := []struct {
		name          string
		engine        *fakeEngine
		cfg           *config.Config
		logins, pulls int
		want          Status
	}{
		{"login", &fakeEngine{loginErr: refused}, &config.Config{Registries: []config.Registry{{Host: "harbor.example:8443", Username: "u", PasswordEnv: "PW"}}}, 3, 0, Failed},
		{"pull", &fakeEngine{pulls: failing(10, refused)}, nil, 0, 3, Failed},
		{"a pull that moves bytes is not counted", &fakeEngine{verifies: true,
			pulls: append(append(failing(2, refused), movedThenCut), append(failing(2, refused), movedThenCut)...)}, nil, 0, 7, Pulled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg == nil {
				cfg = &config.Config{}
			}
			p := &Puller{Engine: tt.engine, Log: zap.NewNop(), Backoff: fastBackoff, RegistryAttempts: 3,
				Credentials: &credentials.Resolver{Config: cfg, DockerConfigDir: t.TempDir(), Getenv: func(string) string { return testPassword }}}
			r := p.Ensure(context.Background(), target, Options{})
			if r.Status != tt.want || tt.engine.logins != tt.logins || tt.engine.pullCalls != tt.pulls {
				t.Fatalf("status %s, %d logins, %d pulls (err %v); want %s, %d, %d", r.Status, tt.engine.logins, tt.engine.pullCalls, r.Err, tt.want, tt.logins, tt.pulls)
			}
			if tt.want == Pulled {
				return
			}
			if !errors.Is(r.Err, engine.ErrRegistryUnreachable) {
				t.Fatalf("error %v, want one wrapping %v", r.Err, engine.ErrRegistryUnreachable)
			}
			want := "registry harbor.example:8443 unreachable: Docker Engine tried 10.0.0.7:8443: connect: connection refused (3 attempts); the Docker Engine, not prepull, connects to the registry, so its proxy settings apply (systemctl show docker -p Environment)"
			if !strings.Contains(r.Err.Error(), want) || Cause(r.Err) != want {
				t.Errorf("error %q\ncause %q\nwant %q", r.Err, Cause(r.Err), want)
			}
		})
	}
}

// TestRegistryNameNotFoundFailsAtOnce: a registry whose name does not
// resolve ends the step at its first attempt (the resolver's answer does not
// change in a minute), naming the host, the resolver and its answer; a
// resolver that gave no answer is retried like a refused connection.
func TestRegistryNameNotFoundFailsAtOnce(t *testing.T) {
	const lookup = `Error response from daemon: Get "https://harbor.example:8443/v2/": dial tcp: lookup harbor.example on 127.0.0.53:53: `
	tests := []struct {
		name  string
		err   error
		pulls int
		want  string
	}{
		{"no such host", engine.MarkRegistryText(errors.New(lookup + "no such host")), 1,
			"registry harbor.example:8443 unreachable: Docker Engine looked up harbor.example on 127.0.0.53:53: no such host (the name does not resolve); the Docker Engine"},
		{"resolver did not answer", engine.MarkRegistryText(errors.New(lookup + "server misbehaving")), 3,
			"registry harbor.example:8443 unreachable: Docker Engine looked up harbor.example on 127.0.0.53:53: server misbehaving (3 attempts); the Docker Engine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &fakeEngine{pulls: failing(10, tt.err)}
			p := &Puller{Engine: e, Log: zap.NewNop(), Backoff: fastBackoff, RegistryAttempts: 3,
				Credentials: &credentials.Resolver{Config: &config.Config{}, DockerConfigDir: t.TempDir(), Getenv: func(string) string { return "" }}}
			r := p.Ensure(context.Background(), target, Options{})
			if r.Status != Failed || e.pullCalls != tt.pulls || !errors.Is(r.Err, engine.ErrRegistryUnreachable) {
				t.Fatalf("status %s, %d pulls, err %v; want failed, %d pulls, registry unreachable", r.Status, e.pullCalls, r.Err, tt.pulls)
			}
			if c := Cause(r.Err); !strings.HasPrefix(c, tt.want) {
				t.Errorf("cause %q\nwant it to start %q", c, tt.want)
			}
		})
	}
}
