// Package credentials finds the login for a registry host, in a fixed order:
// the command line, the configuration's registries list (a password file, an
// environment variable or a systemd credential), Docker's config.json with
// its auths, credsStore and credHelpers, and last anonymous.
//
// It only reads. Unlike docker login, it never writes a credential anywhere.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
)

// ErrUnavailable is wrapped when a configured credential cannot be read:
// a missing password file, an unset variable, a failing credential helper.
var ErrUnavailable = errors.New("credential unavailable")

// dockerHubAuthKey is the key Docker's config.json uses for Docker Hub.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// Credential is a login for one registry. Source says where it came from,
// for logs; it never holds the secret.
type Credential struct {
	Username      string
	Password      string
	IdentityToken string
	// Source is a human description such as "password_file /etc/prepull/harbor.pw".
	Source string
	// Renewable says that asking again may give another password: it came
	// from a password_command or a credential helper, which run for every
	// login. A registry that rejects it may accept a fresh one.
	Renewable bool
	// Warnings are things an administrator should fix, such as a password
	// file readable by others. They never contain the secret.
	Warnings []string
	// Suspect, when set, is what may make the registry reject this login,
	// such as whitespace at the end of a password file. It never contains
	// the secret.
	Suspect string
}

// Anonymous reports whether c carries no login at all.
func (c Credential) Anonymous() bool {
	return c.Username == "" && c.Password == "" && c.IdentityToken == ""
}

// FlagLogin is a login given on the command line. It is for the one
// registry Host, never for another registry a pak may name.
type FlagLogin struct {
	Host     string
	Username string
	Password string
}

// Resolver finds credentials. Its zero value resolves everything to anonymous.
type Resolver struct {
	// Flag, when set, is the login given on the command line; it applies to
	// its own registry host only.
	Flag *FlagLogin
	// Config supplies the registries list.
	Config *config.Config
	// DockerConfigDir is the folder holding Docker's config.json. Empty
	// means $DOCKER_CONFIG or ~/.docker.
	DockerConfigDir string
	// CredentialsDir is systemd's $CREDENTIALS_DIRECTORY.
	CredentialsDir string
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// NewResolver returns a Resolver for cfg that reads the process environment.
func NewResolver(cfg *config.Config, flag *FlagLogin) *Resolver {
	return &Resolver{
		Flag:            flag,
		Config:          cfg,
		DockerConfigDir: cfg.DockerConfig,
		CredentialsDir:  os.Getenv("CREDENTIALS_DIRECTORY"),
	}
}

func (r *Resolver) getenv(k string) string {
	if r.Getenv != nil {
		return r.Getenv(k)
	}
	return os.Getenv(k)
}

// For returns the credential for a registry host. Files are read on every
// call, so a corrected password file is picked up without a restart. A
// password_command or credential helper it runs ends, with every process
// it started, when ctx ends (Ctrl-C, the agent stopping).
func (r *Resolver) For(ctx context.Context, host string) (Credential, error) {
	if r.Flag != nil && pak.SameRegistry(host, r.Flag.Host) {
		return Credential{
			Username: r.Flag.Username,
			Password: r.Flag.Password,
			Source:   "command line (--registry " + r.Flag.Host + ", --username, --password-stdin)",
		}, nil
	}
	if r.Config != nil {
		if entry, ok := r.Config.Lookup(host); ok && entry.Username != "" {
			return r.fromEntry(ctx, entry)
		}
	}
	c, ok, err := r.fromDockerConfig(ctx, host)
	if err != nil || ok {
		return c, err
	}
	return Credential{Source: "anonymous"}, nil
}

// fromEntry reads the password an entry of the registries list points to.
func (r *Resolver) fromEntry(ctx context.Context, e config.Registry) (Credential, error) {
	c := Credential{Username: e.Username}
	where := fmt.Sprintf("registries entry for %s", e.Host)
	switch {
	case e.PasswordFile != "":
		c.Source = "password_file " + e.PasswordFile
		pw, warn, err := readSecretFile(e.PasswordFile)
		if err != nil {
			return Credential{}, fmt.Errorf("%s: password_file: %w", where, err)
		}
		c.Password = pw
		if warn != "" {
			c.Warnings = append(c.Warnings, warn)
		}
		c.suspectSpace("password file " + e.PasswordFile)
	case e.PasswordEnv != "":
		c.Source = "password_env " + e.PasswordEnv
		c.Password = r.getenv(e.PasswordEnv)
		if c.Password == "" {
			return Credential{}, fmt.Errorf("%s: password_env: %w: variable %s is empty or unset", where, ErrUnavailable, e.PasswordEnv)
		}
	case e.Credential != "":
		if r.CredentialsDir == "" {
			return Credential{}, fmt.Errorf("%s: credential %q: %w: $CREDENTIALS_DIRECTORY is not set (add LoadCredential= to the unit)", where, e.Credential, ErrUnavailable)
		}
		path := filepath.Join(r.CredentialsDir, e.Credential)
		c.Source = "systemd credential " + e.Credential
		pw, _, err := readSecretFile(path)
		if err != nil {
			return Credential{}, fmt.Errorf("%s: credential %q: %w", where, e.Credential, err)
		}
		c.Password = pw
		c.suspectSpace("systemd credential " + path)
	case len(e.PasswordCommand) > 0:
		c.Source = "password_command " + e.PasswordCommand[0]
		c.Renewable = true
		pw, err := fromCommand(ctx, r.Config, e.PasswordCommand)
		if err != nil {
			return Credential{}, fmt.Errorf("%s: password_command %s: %w", where, display.Text(e.PasswordCommand[0]), err)
		}
		c.Password = pw
	}
	return c, nil
}

// fromDockerConfig looks host up in Docker's config.json, using Docker's own
// library so that auths, credsStore and credHelpers all work.
func (r *Resolver) fromDockerConfig(ctx context.Context, host string) (Credential, bool, error) {
	dir := r.DockerConfigDir
	if dir == "" {
		dir = dockerconfig.Dir() // $DOCKER_CONFIG or ~/.docker
	}
	path := filepath.Join(dir, dockerconfig.ConfigFileName)
	// A missing config.json is an empty one, as for Docker's client: the
	// system's default store may still hold the login (Windows, macOS).
	cf := configfile.New(path)
	if _, err := os.Stat(path); err == nil {
		if cf, err = dockerconfig.Load(dir); err != nil {
			return Credential{}, false, fmt.Errorf("%s: %w: %w", path, ErrUnavailable, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Credential{}, false, fmt.Errorf("%s: %w: %w", path, ErrUnavailable, err)
	}
	key := ServerAddress(host)
	source := "docker config " + path
	store, storeKind := credsStore(cf)
	if helper, kind := configuredHelper(cf.CredentialHelpers, store, storeKind, key); helper != "" {
		if !plainHelperName(helper) {
			// docker-credential-x/../evil would run ./evil, as whoever
			// runs prepull, root included.
			return Credential{}, false, fmt.Errorf("%s: %w: %s %q is not a plain credential helper name (letters, digits, '.', '_', '-'; no '/' and no '..'): refusing to run it", path, ErrUnavailable, kind, helper)
		}
		// Docker runs helpers with its whole environment; prepull runs
		// them itself, with a minimal one and a timeout.
		source += " (" + kind + " docker-credential-" + helper + ")"
		c, err := fromHelper(ctx, r.Config, helper, key)
		switch {
		case errors.Is(err, errNoLogin) && kind == "credHelpers":
			// A helper named for this host alone that has nothing for it
			// has failed: the ECR helper answers "not found" for every
			// failure, a missing network or missing AWS credentials too.
			return Credential{}, false, withNetworkHint(fmt.Errorf("%s: credHelpers docker-credential-%s for %s: %w: the helper has no login for it; a credHelpers entry names the helper of this host, so prepull does not pull anonymously",
				path, helper, host, ErrUnavailable))
		case errors.Is(err, errNoLogin):
			// credsStore is asked for every registry; public ones need no login.
			return Credential{Source: fmt.Sprintf("anonymous (docker-credential-%s, the %s of %s, holds no login for %s)", helper, kind, path, host)}, true, nil
		case err != nil:
			return Credential{}, false, fmt.Errorf("%s: %s docker-credential-%s for %s: %w: %w", path, kind, helper, host, ErrUnavailable, err)
		}
		c.Source, c.Renewable = source, true
		return c, true, nil
	}
	ac, err := cf.GetAuthConfig(key)
	if err != nil {
		return Credential{}, false, withNetworkHint(fmt.Errorf("%s: credentials for %s: %w: %w", path, host, ErrUnavailable, err))
	}
	if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" {
		return Credential{}, false, nil
	}
	return Credential{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, Source: source}, true, nil
}

// plainHelperName tells whether name is a helper name Docker's helpers use,
// such as pass, secretservice, ecr-login or desktop.
func plainHelperName(name string) bool {
	if len(name) > 64 || strings.Contains(name, "..") || name[0] == '.' || name[0] == '-' {
		return false
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// configuredHelper returns the credential helper config.json names for key,
// as Docker chooses it: a credHelpers entry wins over the store (an empty
// one means the auths of config.json). kind says which it is: credHelpers,
// or storeKind.
func configuredHelper(helpers map[string]string, store, storeKind, key string) (name, kind string) {
	if h, ok := helpers[key]; ok {
		return h, "credHelpers"
	}
	if store != "" {
		return store, storeKind
	}
	return "", ""
}

// maxSecretSize bounds a password file; a larger one is surely not a password.
const maxSecretSize = 64 << 10

// suspectSpace warns, naming the file (what), when the password read from
// it starts or ends with whitespace once its one trailing newline is
// dropped: a blank line or a space at the end is almost always a slip, and
// the registry would only say that it rejects the login. The password is
// sent as it is; the warning says what to fix, never the secret.
func (c *Credential) suspectSpace(what string) {
	pw := c.Password
	trimmed := strings.TrimRight(pw, " \t\r\n")
	var tail string
	switch {
	case trimmed == pw && strings.TrimLeft(pw, " \t\r\n") == pw:
		return
	case trimmed == pw:
		tail = "starts with whitespace"
	case strings.ContainsAny(pw[len(trimmed):], "\n"):
		tail = "ends with a blank line"
	default:
		tail = "ends with spaces or tabs"
	}
	c.Suspect = fmt.Sprintf("%s %s, which is sent as part of the password: if the registry rejects the login, remove it", what, tail)
	c.Warnings = append(c.Warnings, c.Suspect)
}

// readSecretFile reads a password from path, dropping one trailing newline.
// It returns a warning when the file is accessible by group or others.
func readSecretFile(path string) (secret, warning string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !st.Mode().IsRegular() {
		return "", "", fmt.Errorf("%w: %s is not a regular file", ErrUnavailable, path)
	}
	if st.Size() > maxSecretSize {
		return "", "", fmt.Errorf("%w: %s is %d bytes, too large for a password", ErrUnavailable, path, st.Size())
	}
	warning = modeWarning(runtime.GOOS, path, st.Mode().Perm())
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if s == "" {
		return "", "", fmt.Errorf("%w: %s is empty", ErrUnavailable, path)
	}
	return s, warning, nil
}

// modeWarning warns when the password file at path, of mode perm, is open
// to group or others. Not on Windows: its files are guarded by ACLs, and Go
// shows every writable file there as mode 0666.
func modeWarning(goos, path string, perm fs.FileMode) string {
	if goos == "windows" || perm&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("password file %s is accessible by group or others (mode %04o); chmod 600 it", path, perm)
}

// ServerAddress returns the address Docker uses for a registry host in
// config.json and in logins: the historical v1 index URL for every name of
// Docker Hub (pak.IsDockerHub), the host itself for every other registry.
func ServerAddress(host string) string {
	if pak.IsDockerHub(host) {
		return dockerHubAuthKey
	}
	return host
}
