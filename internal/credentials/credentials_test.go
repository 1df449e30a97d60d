package credentials

import (
	"encoding/base64"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
			c, err := r.For(t.Context(), tt.host)
			if tt.err != "" {
				wantUnavailable(t, tt.host, err, tt.err)
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
		c, err := r.For(t.Context(), tt.host)
		if err != nil || c.Username != tt.user || !strings.HasPrefix(c.Source, tt.source) {
			t.Errorf("For(%s) = %+v, %v; want user %q from %q", tt.host, c, err, tt.user, tt.source)
		}
		if tt.user != "u" && c.Password == "p" {
			t.Errorf("For(%s) gave the command line's password", tt.host)
		}
	}
}

// wantUnavailable fails t unless err, from For(host), wraps ErrUnavailable
// and says want.
func wantUnavailable(t *testing.T, host string, err error, want string) {
	t.Helper()
	if err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), want) {
		t.Fatalf("For(%s) error = %v, want ErrUnavailable with %q", host, err, want)
	}
}

func TestForBrokenDockerConfig(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "config.json"), "{not json", 0o600)
	_, err := (&Resolver{DockerConfigDir: dir}).For(t.Context(), "h.example")
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

func TestPlainHelperName(t *testing.T) {
	for _, name := range []string{"pass", "secretservice", "ecr-login", "desktop", "osxkeychain", "gcloud", "acr_env", "v1.2"} {
		if !plainHelperName(name) {
			t.Errorf("%q refused", name)
		}
	}
	for _, name := range []string{"x/../evil", "../evil", "..", ".", "/bin/sh", "a\\b", "a b", "-x", "a..b", "pass\n", strings.Repeat("a", 65)} {
		if plainHelperName(name) {
			t.Errorf("%q accepted", name)
		}
	}
}

// TestForRefusesHelperPath sets a credsStore (then a credHelpers entry) of
// x/../evil, with ./docker-credential-x/ and an ./evil that would leave a
// mark, in the working directory: looked up as docker-credential-x/../evil,
// it would run ./evil.
// The lookup must fail, naming the file and the key, and run nothing.
func TestForRefusesHelperPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	mark := filepath.Join(dir, "ran")
	write(t, filepath.Join(dir, "evil"), "#!/bin/sh\ntouch "+mark+"\n", 0o755)
	if err := os.Mkdir(filepath.Join(dir, "docker-credential-x"), 0o700); err != nil {
		t.Fatal(err)
	}
	for cfg, want := range map[string]string{`{"credsStore":"x/../evil"}`: "credsStore", `{"credHelpers":{"h.example":"x/../evil"}}`: "credHelpers"} {
		dockerDir := t.TempDir()
		write(t, filepath.Join(dockerDir, "config.json"), cfg, 0o600)
		_, err := (&Resolver{DockerConfigDir: dockerDir}).For(t.Context(), "h.example")
		if err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), filepath.Join(dockerDir, "config.json")) ||
			!strings.Contains(err.Error(), `"x/../evil" is not a plain credential helper name`) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want a refusal naming the file and the helper", cfg, err)
		}
		if _, err := os.Stat(mark); err == nil {
			t.Fatalf("%s: ./evil ran", cfg)
		}
	}
}

// script writes an executable shell script named name into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	write(t, path, "#!/bin/sh\n"+body, 0o700)
	return path
}

// helperPATH puts a folder of fake credential helpers first on PATH.
func helperPATH(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return bin
}

func TestForCredentialHelpers(t *testing.T) {
	bin := helperPATH(t)
	// Each fake helper answers "get" for the host on its standard input.
	script(t, bin, "docker-credential-store", `read host; printf '{"ServerURL":"%s","Username":"store-user","Secret":"store-pw"}' "$host"`)
	script(t, bin, "docker-credential-one", `read host; printf '{"ServerURL":"%s","Username":"one-user","Secret":"one-pw"}' "$host"`)
	script(t, bin, "docker-credential-token", `read host; printf '{"ServerURL":"%s","Username":"<token>","Secret":"id-token"}' "$host"`)
	script(t, bin, "docker-credential-fails", `echo "the keyring is locked"; echo "gpg: decryption failed" >&2; exit 1`)
	script(t, bin, "docker-credential-garbage", `echo "garbage, not json"`)
	script(t, bin, "docker-credential-notfound", `echo "credentials not found in native keychain"; exit 1`)
	script(t, bin, "docker-credential-empty", `read host; printf '{"ServerURL":"%s","Username":"","Secret":""}' "$host"`)
	script(t, bin, "docker-credential-nosecret", `printf '{"Username":"u","Secret":""}'`)

	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("carol:frompw"))
	write(t, filepath.Join(dir, "config.json"), `{
		"auths": {"auths.example": {"auth": "`+auth+`"}},
		"credsStore": "store",
		"credHelpers": {
			"one.example": "one", "token.example": "token", "fails.example": "fails",
			"garbage.example": "garbage", "missing.example": "missing", "notfound.example": "notfound",
			"empty.example": "empty", "nosecret.example": "nosecret", "auths.example": ""
		}}`, 0o600)
	r := &Resolver{DockerConfigDir: dir}

	tests := []struct {
		host, user, password, token, source, err string
	}{
		{host: "any.example", user: "store-user", password: "store-pw", source: "(credsStore docker-credential-store)"},
		{host: "one.example", user: "one-user", password: "one-pw", source: "(credHelpers docker-credential-one)"},
		{host: "token.example", token: "id-token", source: "(credHelpers docker-credential-token)"},
		{host: "auths.example", user: "carol", password: "frompw", source: "docker config"},
		{host: "notfound.example", err: "credHelpers docker-credential-notfound for notfound.example: credential unavailable: the helper has no login for it"},
		{host: "empty.example", err: "credHelpers docker-credential-empty for empty.example: credential unavailable: the helper has no login for it"},
		{host: "missing.example", err: "credHelpers docker-credential-missing for missing.example: credential unavailable: docker-credential-missing is not installed"},
		{host: "fails.example", err: "credHelpers docker-credential-fails for fails.example: credential unavailable: error getting credentials - err: exit status 1; its stderr: gpg: decryption failed, out: `the keyring is locked`"},
		{host: "garbage.example", err: "docker-credential-garbage for garbage.example: credential unavailable: docker-credential-garbage answered something other than a login"},
		{host: "nosecret.example", err: "docker-credential-nosecret answered user u without a secret"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			c, err := r.For(t.Context(), tt.host)
			if tt.err != "" {
				wantUnavailable(t, tt.host, err, tt.err)
				if !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
					t.Errorf("error %q does not name config.json", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Username != tt.user || c.Password != tt.password || c.IdentityToken != tt.token || !strings.Contains(c.Source, tt.source) {
				t.Fatalf("For(%s) = %+v, want %q/%q/%q from %q", tt.host, c, tt.user, tt.password, tt.token, tt.source)
			}
			if want := !c.Anonymous() && strings.Contains(tt.source, "docker-credential-"); c.Renewable != want {
				t.Errorf("Renewable = %v for a login from %s", c.Renewable, c.Source)
			}
		})
	}
}

// TestForCredsStoreWithoutLogin: credsStore is asked for every registry; one
// it holds nothing for is pulled anonymously, and the source says why.
func TestForCredsStoreWithoutLogin(t *testing.T) {
	bin := helperPATH(t)
	script(t, bin, "docker-credential-notfound", `echo "credentials not found in native keychain"; exit 1`)
	script(t, bin, "docker-credential-empty", `read host; printf '{"ServerURL":"%s","Username":"","Secret":""}' "$host"`)
	for _, helper := range []string{"notfound", "empty"} {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "config.json"), `{"credsStore": "`+helper+`"}`, 0o600)
		c, err := (&Resolver{DockerConfigDir: dir}).For(t.Context(), "public.example")
		want := "anonymous (docker-credential-" + helper + ", the credsStore of " + filepath.Join(dir, "config.json") + ", holds no login for public.example)"
		if err != nil || !c.Anonymous() || c.Source != want {
			t.Errorf("credsStore %s: For = %+v, %v; want anonymous from %q", helper, c, err, want)
		}
	}
}

// TestRunCommandTimeout: a command that outlives its timeout fails with the
// timeout and its stderr. The outcome is asserted, not the time it took:
// the command would sleep for the test binary's whole -timeout, and
// TestRunCommandTimeoutEndsChildren checks that no process of it remains.
func TestRunCommandTimeout(t *testing.T) {
	_, err := runCommand(t.Context(), nil, 200*time.Millisecond, []string{"sh", "-c", "echo partial; echo waiting >&2; sleep 3600"}, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") || !strings.Contains(err.Error(), "waiting") {
		t.Fatalf("error = %v, want a timeout with the stderr", err)
	}
}

// TestCommandEnvironment: helpers and password commands get PATH, HOME and
// their own documented variables, never another entry's password_env.
func TestCommandEnvironment(t *testing.T) {
	bin := helperPATH(t)
	dump := filepath.Join(t.TempDir(), "env")
	script(t, bin, "docker-credential-dump", `env > '`+dump+`'; read host; printf '{"Username":"u","Secret":"s"}'`)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "config.json"), `{"credsStore": "dump"}`, 0o600)
	t.Setenv("HOME", "/home/proxy")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("PASSWORD_STORE_DIR", "/var/lib/pass")
	t.Setenv("GNUPGHOME", "/var/lib/gnupg")
	t.Setenv("HTTPS_PROXY", "http://proxy.example:3128")
	t.Setenv("AWS_SECRET_FOR_HARBOR", "topsecret-aws-named")
	t.Setenv("HARBOR_PW", "topsecret-harbor")
	t.Setenv("UNRELATED_TOKEN", "topsecret-unrelated")
	cfg := &config.Config{Registries: []config.Registry{
		{Host: "harbor.example", Username: "u", PasswordEnv: "HARBOR_PW"},
		{Host: "aws-named.example", Username: "u", PasswordEnv: "AWS_SECRET_FOR_HARBOR"},
		{Host: "cmd.example", Username: "u", PasswordCommand: []string{"sh", "-c", "env > '" + dump + ".cmd'; echo pw"}},
	}}
	r := &Resolver{Config: cfg, DockerConfigDir: dir}
	if _, err := r.For(t.Context(), "helper.example"); err != nil {
		t.Fatal(err)
	}
	if c, err := r.For(t.Context(), "cmd.example"); err != nil || c.Password != "pw" {
		t.Fatalf("For(cmd.example) = %+v, %v", c, err)
	}
	for _, file := range []string{dump, dump + ".cmd"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		env := string(data)
		for _, want := range []string{"PATH=" + bin, "HOME=/home/proxy", "AWS_REGION=eu-west-1", "PASSWORD_STORE_DIR=/var/lib/pass", "GNUPGHOME=/var/lib/gnupg", "HTTPS_PROXY=http://proxy.example:3128"} {
			if !strings.Contains(env, want) {
				t.Errorf("%s: the environment lacks %s:\n%s", filepath.Base(file), want, env)
			}
		}
		if strings.Contains(env, "topsecret") {
			t.Errorf("%s: a secret reached the command:\n%s", filepath.Base(file), env)
		}
	}
}

func TestForPasswordCommand(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "n")
	// Each run prints a new token, as a token service would.
	token := script(t, dir, "token", `n=$(cat '`+counter+`' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '`+counter+`'; echo "token-$n"`)
	cfg := &config.Config{Registries: []config.Registry{
		{Host: "token.example", Username: "AWS", PasswordCommand: []string{token}},
		{Host: "fails.example", Username: "u", PasswordCommand: []string{"sh", "-c", "echo the-secret-so-far; echo 'Unable to locate credentials' >&2; exit 255"}},
		{Host: "lines.example", Username: "u", PasswordCommand: []string{"printf", "a\\nb\\n"}},
		{Host: "silent.example", Username: "u", PasswordCommand: []string{"true"}},
		{Host: "missing.example", Username: "u", PasswordCommand: []string{"no-such-program-prepull"}},
		{Host: "crlf.example", Username: "u", PasswordCommand: []string{"printf", "tok\\r\\n"}},
	}}
	r := &Resolver{Config: cfg, DockerConfigDir: dir}
	for i, want := range []string{"token-1", "token-2"} {
		c, err := r.For(t.Context(), "token.example")
		if err != nil {
			t.Fatal(err)
		}
		if c.Username != "AWS" || c.Password != want || c.Source != "password_command "+token || !c.Renewable {
			t.Fatalf("login %d = %+v, want AWS/%s from password_command, renewable (never cached)", i+1, c, want)
		}
	}
	if c, err := r.For(t.Context(), "crlf.example"); err != nil || c.Password != "tok" {
		t.Fatalf("For(crlf.example) = %+v, %v", c, err)
	}
	for host, want := range map[string]string{
		"fails.example":   "registries entry for fails.example: password_command sh: credential unavailable: exit status 255; its stderr: Unable to locate credentials",
		"lines.example":   "printed more than one line",
		"silent.example":  "printed no password",
		"missing.example": `password_command no-such-program-prepull: credential unavailable: exec: "no-such-program-prepull": executable file not found`,
	} {
		_, err := r.For(t.Context(), host)
		wantUnavailable(t, host, err, want)
		if strings.Contains(err.Error(), "the-secret-so-far") {
			t.Errorf("For(%s) error shows the command's output: %v", host, err)
		}
	}
}

func TestRunCommandOutputBounds(t *testing.T) {
	_, err := runCommand(t.Context(), nil, 10*time.Second, []string{"sh", "-c", "head -c 70000 /dev/zero | tr '\\0' x"}, nil)
	if err == nil || !strings.Contains(err.Error(), "printed more than 65536 bytes") || strings.Contains(err.Error(), "xxx") {
		t.Fatalf("error = %v, want the size refused without the output", err)
	}
	out, err := runCommand(t.Context(), nil, 10*time.Second, []string{"sh", "-c", "head -c 65536 /dev/zero | tr '\\0' x"}, nil)
	if err != nil || len(out) != 65536 {
		t.Fatalf("64 KiB exactly: %d bytes, %v", len(out), err)
	}
	_, err = runCommand(t.Context(), nil, 10*time.Second, []string{"sh", "-c", "seq 1 5000 >&2; echo the-last-line >&2; exit 3"}, nil)
	if err == nil || !strings.HasSuffix(err.Error(), "its stderr: 4997 | 4998 | 4999 | 5000 | the-last-line") {
		t.Fatalf("error = %v, want the last lines of stderr", err)
	}
}

func TestCommandEnvironmentHomeFromPasswd(t *testing.T) {
	t.Setenv("HOME", "")
	os.Unsetenv("HOME")
	u, err := user.Current()
	if err != nil || u.HomeDir == "" {
		t.Fatalf("no passwd entry for this user: %v", err)
	}
	if env := commandEnv(nil); !slices.Contains(env, "HOME="+u.HomeDir) {
		t.Fatalf("commandEnv without HOME = %q, want HOME=%s from the passwd entry", env, u.HomeDir)
	}
}

// TestPasswordFileWhitespace checks that one trailing newline (LF or CRLF)
// is dropped without a word, and that other whitespace at either end is
// kept, with a warning that names the file and never the password.
func TestPasswordFileWhitespace(t *testing.T) {
	tests := []struct {
		content, password, warn string
	}{
		{"s3cret\n", "s3cret", ""},
		{"s3cret", "s3cret", ""},
		{"s3cret\r\n", "s3cret", ""},
		{"pass word\n", "pass word", ""},
		{"s3cret\n\n", "s3cret\n", "ends with a blank line"},
		{"s3cret\n \n", "s3cret\n ", "ends with a blank line"},
		{"s3cret \n", "s3cret ", "ends with spaces or tabs"},
		{"s3cret\t", "s3cret\t", "ends with spaces or tabs"},
		{" s3cret\n", " s3cret", "starts with whitespace"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "harbor.pw")
		write(t, path, tt.content, 0o600)
		r := &Resolver{Config: &config.Config{Registries: []config.Registry{{Host: "h.example", Username: "u", PasswordFile: path}}}}
		c, err := r.For(t.Context(), "h.example")
		if err != nil || c.Password != tt.password {
			t.Errorf("%q: password %q, %v; want %q", tt.content, c.Password, err, tt.password)
			continue
		}
		if tt.warn == "" {
			if len(c.Warnings) != 0 || c.Suspect != "" {
				t.Errorf("%q: warnings %q, want none", tt.content, c.Warnings)
			}
			continue
		}
		want := "password file " + path + " " + tt.warn
		if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], want) || c.Suspect != c.Warnings[0] {
			t.Errorf("%q: warnings %q, suspect %q; want one starting %q", tt.content, c.Warnings, c.Suspect, want)
		}
		if strings.Contains(c.Suspect, "s3cret") {
			t.Errorf("%q: the warning shows the password: %q", tt.content, c.Suspect)
		}
	}
}

// TestKeepEnv checks which variables a credential helper gets on each
// system: Windows keeps what its programs need, in any case, as Windows
// reads names; elsewhere names are exact and Windows' own are dropped.
func TestKeepEnv(t *testing.T) {
	for _, tt := range []struct {
		goos, name string
		want       bool
	}{
		{"windows", "Path", true},
		{"windows", "SystemRoot", true},
		{"windows", "SYSTEMROOT", true},
		{"windows", "UserProfile", true},
		{"windows", "aws_profile", true},
		{"windows", "REGISTRY_PASSWORD", false},
		{"linux", "PATH", true},
		{"linux", "Path", false},
		{"linux", "SystemRoot", false},
		{"darwin", "HOME", true},
		{"darwin", "USERPROFILE", false},
	} {
		if got := keepEnv(tt.goos, tt.name); got != tt.want {
			t.Errorf("keepEnv(%q, %q) = %v, want %v", tt.goos, tt.name, got, tt.want)
		}
	}
}

// TestHelperFile checks that a helper not installed is named as the file
// its system looks for in PATH: with .exe on Windows.
func TestHelperFile(t *testing.T) {
	for goos, want := range map[string]string{
		"windows": "docker-credential-wincred.exe",
		"linux":   "docker-credential-wincred",
		"darwin":  "docker-credential-wincred",
	} {
		if got := helperFile(goos, "docker-credential-wincred"); got != want {
			t.Errorf("helperFile(%q) = %q, want %q", goos, got, want)
		}
	}
}
