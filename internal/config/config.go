// Package config loads prepull's configuration: a YAML file read with Viper,
// overridden by PREPULL_* environment variables.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
)

// DefaultFile is where prepull on Linux, the Cloud Proxy's system, looks
// for its configuration when none is named.
const DefaultFile = "/etc/prepull/config.yaml"

// DefaultCertsDir is where Docker Engine (running as root) reads registry
// CAs, and certs_dir's default.
const DefaultCertsDir = "/etc/docker/certs.d"

// EnvFile names the environment variable that may name the configuration file.
const EnvFile = "PREPULL_CONFIG"

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("invalid configuration")

// Registry is one entry of the registries list: where the credentials for
// one registry host come from. The list is a list, never a map keyed by host,
// because Viper splits keys on dots.
type Registry struct {
	// Host is the registry as it appears in references, e.g. "harbor.example.com:8443".
	Host string `mapstructure:"host"`
	// Username is the user to log in as.
	Username string `mapstructure:"username"`
	// PasswordFile is a file holding the password (trailing newline ignored).
	PasswordFile string `mapstructure:"password_file"`
	// PasswordEnv names an environment variable holding the password.
	PasswordEnv string `mapstructure:"password_env"`
	// Credential names a systemd credential in $CREDENTIALS_DIRECTORY holding the password.
	Credential string `mapstructure:"credential"`
	// PasswordCommand is a command, as an argument list run without a
	// shell, whose standard output (one line) is the password. It runs for
	// every login, so a short-lived token (AWS ECR's) is always fresh.
	PasswordCommand []string `mapstructure:"password_command"`
	// CAFile is a PEM file with the CA that signed the registry's certificate.
	CAFile string `mapstructure:"ca_file"`
}

// passwordSources lists the keys of a registries entry that give the password.
const passwordSources = "password_file, password_env, credential, password_command"

// Config is prepull's whole configuration.
type Config struct {
	// File is the file the configuration was read from, empty when none was.
	File string `mapstructure:"-"`

	DockerHost      string     `mapstructure:"docker_host"`
	DefaultRegistry string     `mapstructure:"default_registry"`
	DockerConfig    string     `mapstructure:"docker_config"`
	CertsDir        string     `mapstructure:"certs_dir"`
	Registries      []Registry `mapstructure:"registries"`
	LogFormat       string     `mapstructure:"log_format"`

	// Timeout bounds one one-shot pull, retries included.
	Timeout time.Duration `mapstructure:"timeout"`
	// StallTimeout cancels and retries a pull that made no progress for this long.
	StallTimeout time.Duration `mapstructure:"stall_timeout"`

	WatchDir       string        `mapstructure:"watch_dir"`
	StateDir       string        `mapstructure:"state_dir"`
	Concurrency    int           `mapstructure:"concurrency"`
	RescanInterval time.Duration `mapstructure:"rescan_interval"`
	Settle         time.Duration `mapstructure:"settle"`
	VerifyInterval time.Duration `mapstructure:"verify_interval"`
	PullTimeout    time.Duration `mapstructure:"pull_timeout"`
	// KeepImages, when above 0, lets the agent remove an image it pulled
	// once no pak or conf names it and KeepImages newer digests of its
	// repository are kept (see agent). 0 never removes anything.
	KeepImages int `mapstructure:"keep_images"`
	// LocalName gives every image prepull pulls or keeps its local name
	// (pull.LocalName), so that a plain image prune keeps it.
	LocalName bool `mapstructure:"local_name"`
	// ConfDirs are folders of adapter .conf files the agent reads (never
	// writes) and keeps the image of each present, as for a pak in done/.
	ConfDirs []string `mapstructure:"conf_dirs"`
	// MetricsFile, when set, is where the agent writes its metrics in the
	// Prometheus text format, for the node exporter's textfile collector.
	MetricsFile string `mapstructure:"metrics_file"`
}

// defaults holds every scalar key with its default value. Listing every key
// here also lets Viper see PREPULL_* overrides for each of them.
var defaults = map[string]any{
	"docker_host":      "",
	"default_registry": "",
	"docker_config":    "",
	"certs_dir":        DefaultCertsDir,
	"log_format":       "auto",
	"timeout":          "10m",
	"stall_timeout":    "2m",
	"watch_dir":        "/var/lib/prepull/inbox",
	"state_dir":        "/var/lib/prepull",
	"concurrency":      2,
	"rescan_interval":  "30s",
	"settle":           "2s",
	"verify_interval":  "10m",
	"pull_timeout":     "1h",
	"keep_images":      0,
	"metrics_file":     "",
	"local_name":       true,
}

// DefaultPath returns the configuration file read on goos when none is
// named, with getenv reading the environment. On Linux it is DefaultFile,
// the Cloud Proxy's. On a workstation it is config.yaml in a prepull folder
// of the user's configuration folder, as os.UserConfigDir names it:
// %AppData%\prepull\config.yaml on Windows, ~/Library/Application
// Support/prepull/config.yaml on macOS. The error says why that folder is
// unknown (its variable is unset).
func DefaultPath(goos string, getenv func(string) string) (string, error) {
	switch goos {
	case "windows":
		dir := getenv("AppData")
		if dir == "" {
			return "", errors.New("%AppData% is not set")
		}
		return strings.TrimRight(dir, `\/`) + `\prepull\config.yaml`, nil
	case "darwin":
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("$HOME is not set")
		}
		return strings.TrimRight(home, "/") + "/Library/Application Support/prepull/config.yaml", nil
	}
	return DefaultFile, nil
}

// Load reads the configuration. path is the file named on the command line,
// or empty; then $PREPULL_CONFIG, then DefaultPath's file for this system is
// used. A missing default file is fine (defaults apply), and so is an
// unknown one; a missing named file is an error.
func Load(path string) (*Config, error) {
	named := path != ""
	if !named {
		path = os.Getenv(EnvFile)
		named = path != ""
	}
	if !named {
		path, _ = DefaultPath(runtime.GOOS, os.Getenv)
	}

	v := viper.New()
	v.SetConfigType("yaml")
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("PREPULL")
	v.AutomaticEnv()

	c := &Config{}
	f, err := openConfig(path)
	switch {
	case err == nil:
		defer f.Close()
		data, err := readFile(f)
		if err == nil {
			err = checkFile(data)
		}
		if err == nil {
			err = v.ReadConfig(bytes.NewReader(data))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", path, ErrInvalid, err)
		}
		c.File = path
	case errors.Is(err, fs.ErrNotExist) && !named:
		// No configuration file: defaults and environment only.
	default:
		return nil, fmt.Errorf("%s: %w: %w", path, ErrInvalid, display.WithoutPath(err))
	}

	if err := checkEnv(os.Getenv); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := v.UnmarshalExact(c); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c.source(), ErrInvalid, err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c.source(), ErrInvalid, err)
	}
	return c, nil
}

// openConfig opens the configuration file at path; an empty path, a
// default that cannot be known, does not exist.
func openConfig(path string) (*os.File, error) {
	if path == "" {
		return nil, fs.ErrNotExist
	}
	return os.Open(path)
}

// source names where the configuration came from, for error messages: the
// file, and the PREPULL_* variables that override its values.
func (c *Config) source() string {
	src := c.File
	if src == "" {
		src = "configuration (defaults"
		if env := envOverrides(os.Getenv); len(env) > 0 {
			src += " and " + strings.Join(env, ", ")
		}
		return src + ")"
	}
	if env := envOverrides(os.Getenv); len(env) > 0 {
		src += " (with " + strings.Join(env, ", ") + ")"
	}
	return src
}

func (c *Config) validate() error {
	errs := c.validateRegistries()
	if c.DefaultRegistry != "" {
		if err := pak.ValidateRegistry(c.DefaultRegistry); err != nil {
			errs = append(errs, fmt.Errorf("default_registry %w", err))
		}
	}
	switch c.LogFormat {
	case "auto", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log_format %q: want auto, json or console", c.LogFormat))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: must be at least 1", c.Concurrency))
	}
	for name, d := range map[string]time.Duration{
		"timeout": c.Timeout, "stall_timeout": c.StallTimeout, "rescan_interval": c.RescanInterval,
		"verify_interval": c.VerifyInterval, "pull_timeout": c.PullTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", name, d))
		}
	}
	if c.KeepImages < 0 {
		errs = append(errs, fmt.Errorf("keep_images %d: must be 0 (never remove an image) or more", c.KeepImages))
	}
	errs = append(errs, c.validateConfDirs()...)
	if f := c.MetricsFile; f != "" && (!filepath.IsAbs(f) || filepath.Ext(f) != ".prom" || strings.HasSuffix(f, "/")) {
		errs = append(errs, fmt.Errorf("metrics_file %q: must be an absolute path to a file ending in .prom (the node exporter reads only those)", f))
	}
	if c.Settle < 0 {
		errs = append(errs, fmt.Errorf("settle %v: must not be negative", c.Settle))
	}
	return errors.Join(errs...)
}

// validateRegistries checks each registries entry, and that no registry is
// listed twice.
func (c *Config) validateRegistries() []error {
	var errs []error
	seen := map[string]int{}
	for i, r := range c.Registries {
		where := fmt.Sprintf("registries[%d]", i)
		if r.Host == "" {
			errs = append(errs, fmt.Errorf("%s: host is required", where))
			continue
		}
		if err := pak.ValidateRegistry(r.Host); err != nil {
			errs = append(errs, fmt.Errorf("%s: host %w", where, err))
		}
		key := pak.CanonicalRegistry(r.Host)
		if j, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("%s: host %q is already listed at registries[%d] as %q (one registry: case and Docker Hub's names do not matter)", where, r.Host, j, c.Registries[j].Host))
		}
		seen[key] = i
		errs = append(errs, r.validate(where)...)
	}
	return errs
}

// validate checks the login of one registries entry, named where.
func (r Registry) validate(where string) []error {
	var errs []error
	sources := 0
	for _, s := range []string{r.PasswordFile, r.PasswordEnv, r.Credential, strings.Join(r.PasswordCommand, "")} {
		if s != "" {
			sources++
		}
	}
	switch {
	case r.Username == "" && sources > 0:
		errs = append(errs, fmt.Errorf("%s (%s): a password is set but username is empty", where, r.Host))
	case r.Username != "" && sources == 0:
		errs = append(errs, fmt.Errorf("%s (%s): username is set but none of %s", where, r.Host, passwordSources))
	case sources > 1:
		errs = append(errs, fmt.Errorf("%s (%s): set only one of %s", where, r.Host, passwordSources))
	}
	switch pc := r.PasswordCommand; {
	case len(pc) > 0 && strings.TrimSpace(pc[0]) == "":
		errs = append(errs, fmt.Errorf("%s (%s): password_command: the first element, the program, is empty", where, r.Host))
	case len(pc) == 1 && strings.ContainsAny(pc[0], " \t"):
		// A YAML string where a list was meant: no shell splits it.
		errs = append(errs, fmt.Errorf("%s (%s): password_command %q: write it as a list of arguments, e.g. [aws, ecr, get-login-password, --region, eu-west-1]; it runs without a shell", where, r.Host, pc[0]))
	}
	if strings.ContainsAny(r.Credential, "/\\") || r.Credential == "." || r.Credential == ".." {
		errs = append(errs, fmt.Errorf("%s (%s): credential %q must be a plain name", where, r.Host, r.Credential))
	}
	return errs
}

// validateConfDirs checks that each conf_dirs entry is an absolute path,
// listed once.
func (c *Config) validateConfDirs() []error {
	var errs []error
	seen := map[string]int{}
	for i, d := range c.ConfDirs {
		where := fmt.Sprintf("conf_dirs[%d]", i)
		switch clean := filepath.Clean(d); {
		case d == "":
			errs = append(errs, fmt.Errorf("%s: empty", where))
		case !filepath.IsAbs(d):
			errs = append(errs, fmt.Errorf("%s %q: must be an absolute path", where, d))
		default:
			if j, dup := seen[clean]; dup {
				errs = append(errs, fmt.Errorf("%s %q: already listed as conf_dirs[%d]", where, d, j))
			}
			seen[clean] = i
		}
	}
	return errs
}

// Lookup returns the registries entry for host, if any. Hosts compare in
// canonical form (pak.CanonicalRegistry): case does not matter and every
// name of Docker Hub finds the Docker Hub entry.
func (c *Config) Lookup(host string) (Registry, bool) {
	for _, r := range c.Registries {
		if pak.SameRegistry(r.Host, host) {
			return r, true
		}
	}
	return Registry{}, false
}
