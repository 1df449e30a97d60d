package credentials

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/config"
)

func write(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
}

func TestFor(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "harbor.pw"), "s3cret\n", 0o600)
	write(t, filepath.Join(dir, "open.pw"), "s3cret", 0o644)
	write(t, filepath.Join(dir, "creds", "hub"), "hubpw", 0o600)
	dockerDir := filepath.Join(dir, "docker")
	auth := base64.StdEncoding.EncodeToString([]byte("carol:frompw"))
	write(t, filepath.Join(dockerDir, "config.json"), `{"auths":{"fromconfig.example":{"auth":"`+auth+`"},"https://index.docker.io/v1/":{"auth":"`+auth+`"}}}`, 0o600)
	before, _ := os.ReadFile(filepath.Join(dockerDir, "config.json"))

	cfg := &config.Config{Registries: []config.Registry{
		{Host: "harbor.example", Username: "alice", PasswordFile: filepath.Join(dir, "harbor.pw")},
		{Host: "open.example", Username: "alice", PasswordFile: filepath.Join(dir, "open.pw")},
		{Host: "env.example", Username: "bob", PasswordEnv: "REG_PW"},
		{Host: "unset.example", Username: "bob", PasswordEnv: "REG_UNSET"},
		{Host: "systemd.example", Username: "dan", Credential: "hub"},
		{Host: "missing.example", Username: "eve", PasswordFile: filepath.Join(dir, "nope")},
	}}
	env := map[string]string{"REG_PW": "envpw"}
	r := &Resolver{Config: cfg, DockerConfigDir: dockerDir, CredentialsDir: filepath.Join(dir, "creds"), Getenv: func(k string) string { return env[k] }}

	tests := []struct {
		host, user, password, source, warn, err string
	}{
		{host: "harbor.example", user: "alice", password: "s3cret", source: "password_file"},
		{host: "open.example", user: "alice", password: "s3cret", source: "password_file", warn: "chmod 600"},
		{host: "env.example", user: "bob", password: "envpw", source: "password_env REG_PW"},
		{host: "unset.example", err: "REG_UNSET is empty or unset"},
		{host: "systemd.example", user: "dan", password: "hubpw", source: "systemd credential hub"},
		{host: "missing.example", err: "registries entry for missing.example: password_file"},
		{host: "fromconfig.example", user: "carol", password: "frompw", source: "docker config"},
		{host: "docker.io", user: "carol", password: "frompw", source: "docker config"},
		// Every name of Docker Hub finds config.json's Docker Hub key.
		{host: "index.docker.io", user: "carol", password: "frompw", source: "docker config"},
		{host: "registry-1.docker.io", user: "carol", password: "frompw", source: "docker config"},
		{host: "registry.hub.docker.com", user: "carol", password: "frompw", source: "docker config"},
		{host: "Harbor.Example", user: "alice", password: "s3cret", source: "password_file"},
		{host: "other.example", source: "anonymous"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			c, err := r.For(tt.host)
			if tt.err != "" {
				if err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("For(%s) error = %v, want ErrUnavailable with %q", tt.host, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Username != tt.user || c.Password != tt.password || !strings.HasPrefix(c.Source, tt.source) {
				t.Fatalf("For(%s) = %q/%q from %q, want %q/%q from %q", tt.host, c.Username, c.Password, c.Source, tt.user, tt.password, tt.source)
			}
			if strings.Contains(c.Source, c.Password) && c.Password != "" {
				t.Fatalf("source %q reveals the password", c.Source)
			}
			if tt.warn != "" && (len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], tt.warn)) {
				t.Fatalf("warnings = %q, want one with %q", c.Warnings, tt.warn)
			}
		})
	}
	after, _ := os.ReadFile(filepath.Join(dockerDir, "config.json"))
	if string(before) != string(after) {
		t.Fatal("config.json was modified")
	}
}

func TestForFlagIsForItsRegistryOnly(t *testing.T) {
	r := &Resolver{
		Flag:            &FlagLogin{Host: "H:5000", Username: "u", Password: "p"},
		Config:          &config.Config{Registries: []config.Registry{{Host: "h:5000", Username: "x", PasswordEnv: "X"}, {Host: "other", Username: "y", PasswordEnv: "Y"}}},
		Getenv:          func(k string) string { return "env-" + k },
		DockerConfigDir: t.TempDir(),
	}
	tests := []struct {
		host, user, source string
	}{
		{"h:5000", "u", "command line (--registry H:5000"}, // the flag wins over the entry of its host
		{"H:5000", "u", "command line"},
		{"other", "y", "password_env Y"}, // another registry resolves as usual
		{"h", "", "anonymous"},           // so does one without a port
		{"evil.example:5000", "", "anonymous"},
	}
	for _, tt := range tests {
		c, err := r.For(tt.host)
		if err != nil || c.Username != tt.user || !strings.HasPrefix(c.Source, tt.source) {
			t.Errorf("For(%s) = %+v, %v; want user %q from %q", tt.host, c, err, tt.user, tt.source)
		}
		if tt.user != "u" && c.Password == "p" {
			t.Errorf("For(%s) gave the command line's password", tt.host)
		}
	}
}

func TestForBrokenDockerConfig(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "config.json"), "{not json", 0o600)
	_, err := (&Resolver{DockerConfigDir: dir}).For("h.example")
	if err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
		t.Fatalf("error %v should name the broken config.json", err)
	}
}

func TestServerAddress(t *testing.T) {
	for host, want := range map[string]string{
		"docker.io": dockerHubAuthKey, "index.docker.io": dockerHubAuthKey, "registry-1.docker.io": dockerHubAuthKey,
		"registry.hub.docker.com": dockerHubAuthKey, "Registry.Hub.Docker.com": dockerHubAuthKey,
		"h:5000": "h:5000", "hub.docker.com": "hub.docker.com",
	} {
		if got := ServerAddress(host); got != want {
			t.Errorf("ServerAddress(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestCheckHelpers(t *testing.T) {
	for _, name := range []string{"pass", "secretservice", "ecr-login", "desktop", "osxkeychain", "gcloud", "acr_env", "v1.2"} {
		if err := checkHelpers(name, ""); err != nil {
			t.Errorf("credsStore %q refused: %v", name, err)
		}
		if err := checkHelpers("", name); err != nil {
			t.Errorf("credHelpers %q refused: %v", name, err)
		}
	}
	for _, name := range []string{"x/../evil", "../evil", "..", ".", "/bin/sh", "a\\b", "a b", "-x", "a..b", "pass\n", strings.Repeat("a", 65)} {
		if err := checkHelpers(name, ""); err == nil || !strings.Contains(err.Error(), "credsStore") {
			t.Errorf("credsStore %q: error %v, want a refusal naming credsStore", name, err)
		}
		if err := checkHelpers("pass", name); err == nil || !strings.Contains(err.Error(), "credHelpers") {
			t.Errorf("credHelpers %q: error %v, want a refusal naming credHelpers", name, err)
		}
	}
}

// TestForRefusesHelperPath sets a credsStore (then a credHelpers entry) of
// x/../evil, with ./docker-credential-x/ and an ./evil that would leave a
// mark, in the working directory: Docker's library would run ./evil.
// The lookup must fail, naming the file and the key, and run nothing.
func TestForRefusesHelperPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	mark := filepath.Join(dir, "ran")
	write(t, filepath.Join(dir, "evil"), "#!/bin/sh\ntouch "+mark+"\n", 0o755)
	if err := os.Mkdir(filepath.Join(dir, "docker-credential-x"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []string{`{"credsStore":"x/../evil"}`, `{"credHelpers":{"h.example":"x/../evil"}}`} {
		dockerDir := t.TempDir()
		write(t, filepath.Join(dockerDir, "config.json"), cfg, 0o600)
		_, err := (&Resolver{DockerConfigDir: dockerDir}).For("h.example")
		if err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), filepath.Join(dockerDir, "config.json")) ||
			!strings.Contains(err.Error(), `"x/../evil" is not a plain credential helper name`) {
			t.Errorf("%s: error %v, want a refusal naming the file and the helper", cfg, err)
		}
		if _, err := os.Stat(mark); err == nil {
			t.Fatalf("%s: ./evil ran", cfg)
		}
	}
}
