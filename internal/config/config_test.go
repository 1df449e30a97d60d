package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	t.Setenv(EnvFile, "")
	c, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil {
		t.Fatalf("a missing named file must be an error, got %+v", c)
	}
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("error %q should name the file and wrap ErrInvalid", err)
	}

	c, err = Load(writeConfig(t, "{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 10*time.Minute || c.Concurrency != 2 || c.WatchDir != "/var/lib/prepull/inbox" || c.Settle != 2*time.Second {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestLoadExample(t *testing.T) {
	c, err := Load("../../configs/prepull.yaml")
	if err != nil {
		t.Fatalf("the shipped example must load: %v", err)
	}
	if len(c.Registries) != 0 {
		t.Fatalf("example should configure no registry by default, got %+v", c.Registries)
	}
}

func TestLoadRegistriesAndEnv(t *testing.T) {
	p := writeConfig(t, `
default_registry: harbor.example.com
registries:
  - host: harbor.example.com:8443
    username: robot$proj+pull
    password_file: /etc/prepull/harbor.pw
  - host: docker.io
    username: bob
    password_env: HUB_PW
  - host: 123456789012.dkr.ecr.eu-west-1.amazonaws.com
    username: AWS
    password_command: [aws, ecr, get-login-password, --region, eu-west-1]
`)
	t.Setenv("PREPULL_CONCURRENCY", "5")
	t.Setenv("PREPULL_DOCKER_HOST", "unix:///run/x.sock")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != p || c.Concurrency != 5 || c.DockerHost != "unix:///run/x.sock" {
		t.Fatalf("env overrides not applied: %+v", c)
	}
	r, ok := c.Lookup("harbor.example.com:8443")
	if !ok || r.Username != "robot$proj+pull" || r.PasswordFile != "/etc/prepull/harbor.pw" {
		t.Fatalf("Lookup(harbor) = %+v, %v", r, ok)
	}
	for _, alias := range []string{"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", "Docker.IO"} {
		if r, ok := c.Lookup(alias); !ok || r.Username != "bob" {
			t.Fatalf("Lookup(%q): Docker Hub aliases must find the docker.io entry, got %+v, %v", alias, r, ok)
		}
	}
	if r, ok := c.Lookup("Harbor.Example.com:8443"); !ok || r.Username != "robot$proj+pull" {
		t.Fatalf("host names are case-insensitive: Lookup(Harbor.Example.com:8443) = %+v, %v", r, ok)
	}
	if r, _ := c.Lookup("123456789012.dkr.ecr.eu-west-1.amazonaws.com"); strings.Join(r.PasswordCommand, " ") != "aws ecr get-login-password --region eu-west-1" {
		t.Fatalf("password_command = %q", r.PasswordCommand)
	}
	if _, ok := c.Lookup("harbor.example.com"); ok {
		t.Fatal("a host without the port must not match an entry with one")
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"bad yaml", "registries: [\n", "config.yaml"},
		{"unknown key", "registry: harbor\n", "registry"},
		{"host missing", "registries:\n  - username: a\n    password_file: /x\n", "registries[0]: host is required"},
		{"scheme in host", "registries:\n  - host: https://harbor\n", "not a URL"},
		{"path in host", "registries:\n  - host: harbor.example/proj\n", "without a path"},
		{"duplicate host", "registries:\n  - host: a.example\n  - host: a.example\n", "already listed"},
		{"duplicate host in another case", "registries:\n  - host: a.example\n  - host: A.Example\n", "already listed"},
		{"Docker Hub under two names", "registries:\n  - host: docker.io\n  - host: registry.hub.docker.com\n", "already listed"},
		{"user without password", "registries:\n  - host: a.example\n    username: u\n", "none of password_file"},
		{"two password sources", "registries:\n  - host: a.example\n    username: u\n    password_file: /x\n    password_env: X\n", "only one of"},
		{"file and command", "registries:\n  - host: a.example\n    username: u\n    password_file: /x\n    password_command: [cat, /x]\n", "only one of"},
		{"command without user", "registries:\n  - host: a.example\n    password_command: [cat, /x]\n", "username is empty"},
		{"command empty program", "registries:\n  - host: a.example\n    username: u\n    password_command: ['', x]\n", "the program, is empty"},
		{"command as a string", "registries:\n  - host: a.example\n    username: u\n    password_command: aws ecr get-login-password\n", "list of arguments"},
		{"credential path", "registries:\n  - host: a.example\n    username: u\n    credential: ../etc/shadow\n", "plain name"},
		{"bad duration", "timeout: soon\n", "timeout"},
		{"zero concurrency", "concurrency: 0\n", "concurrency"},
		{"bad log format", "log_format: xml\n", "log_format"},
		{"bad default registry", "default_registry: \"harbor.example:99999\"\n", "invalid port"},
		{"negative keep_images", "keep_images: -1\n", "keep_images -1"},
		{"keep_images not a number", "keep_images: many\n", "not a whole number"},
		{"relative metrics_file", "metrics_file: prepull.prom\n", `metrics_file "prepull.prom": must be an absolute path`},
		{"metrics_file not .prom", "metrics_file: /var/lib/m/prepull.txt\n", "ending in .prom"},
		{"conf_dirs a string", "conf_dirs: /opt/confs\n", "conf_dirs must be a list"},
		{"conf_dirs relative", "conf_dirs: [confs]\n", "must be an absolute path"},
		{"conf_dirs twice", "conf_dirs: [/opt/c, /opt/c/]\n", "already listed"},
		{"conf_dirs a mapping", "conf_dirs:\n  - {dir: /x}\n", "must be a path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, tt.body)
			_, err := Load(p)
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q should wrap ErrInvalid, name %s and say %q", err, p, tt.want)
			}
		})
	}
}

func TestLoadFromEnvFile(t *testing.T) {
	p := writeConfig(t, "default_registry: reg.example\n")
	t.Setenv(EnvFile, p)
	c, err := Load("")
	if err != nil || c.DefaultRegistry != "reg.example" {
		t.Fatalf("Load via $%s = %+v, %v", EnvFile, c, err)
	}
}

func TestDefaultPath(t *testing.T) {
	tests := []struct {
		goos    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"linux", map[string]string{"HOME": "/home/admin", "XDG_CONFIG_HOME": "/home/admin/.config"}, DefaultFile, ""},
		{"windows", map[string]string{"AppData": `C:\Users\Admin\AppData\Roaming`}, `C:\Users\Admin\AppData\Roaming\prepull\config.yaml`, ""},
		{"windows", map[string]string{"AppData": `D:\Profiles\Admin\`}, `D:\Profiles\Admin\prepull\config.yaml`, ""},
		{"windows", map[string]string{"HOME": "/home/admin"}, "", "%AppData% is not set"},
		{"darwin", map[string]string{"HOME": "/Users/admin"}, "/Users/admin/Library/Application Support/prepull/config.yaml", ""},
		{"darwin", nil, "", "$HOME is not set"},
	}
	for _, tt := range tests {
		got, err := DefaultPath(tt.goos, func(k string) string { return tt.env[k] })
		if got != tt.want || (err == nil) != (tt.wantErr == "") || err != nil && err.Error() != tt.wantErr {
			t.Errorf("DefaultPath(%s, %v) = %q, %v; want %q, %q", tt.goos, tt.env, got, err, tt.want, tt.wantErr)
		}
	}
}
