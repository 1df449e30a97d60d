package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/docker/docker-credential-helpers/client"
	helpercreds "github.com/docker/docker-credential-helpers/credentials"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/display"
)

// CommandTimeout bounds one run of a password_command or a credential
// helper. The ECR helper and the AWS CLI call AWS; anything slower than this
// is stuck.
const CommandTimeout = 30 * time.Second

// maxCommandOutput bounds what is kept of a command's standard output and
// standard error.
const maxCommandOutput = 64 << 10

// commandEnvNames are the variables a password_command or a credential
// helper gets from prepull's environment: what a program needs to run at
// all, to reach the network through a proxy, and what Docker's helpers
// document (pass: GNUPGHOME; secretservice: the session bus; gcloud:
// GOOGLE_APPLICATION_CREDENTIALS). commandEnvPrefixes add whole families:
// pass's PASSWORD_STORE_*, the AWS SDK's AWS_* (the ECR helper, the aws
// CLI), the Google and Azure CLIs'. Nothing else passes: a password_env
// secret meant for another registry must not reach a program that did not
// ask for it.
var (
	commandEnvNames = []string{
		"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
		"SSL_CERT_FILE", "SSL_CERT_DIR",
		"GNUPGHOME", "GPG_AGENT_INFO",
		"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR",
		"GOOGLE_APPLICATION_CREDENTIALS",
		"CREDENTIALS_DIRECTORY",
	}
	commandEnvPrefixes = []string{"PASSWORD_STORE_", "AWS_", "CLOUDSDK_", "AZURE_"}
	// windowsEnvNames are what a Windows program (docker-credential-wincred,
	// -desktop) needs besides: without SystemRoot it cannot even load its
	// DLLs.
	windowsEnvNames = []string{
		"SystemRoot", "SystemDrive", "windir", "ComSpec", "PATHEXT", "USERPROFILE", "USERNAME",
		"APPDATA", "LOCALAPPDATA", "ProgramData", "ProgramFiles", "TEMP", "TMP",
	}
)

// keepEnv tells whether the variable named k passes to a command on goos.
// Windows' names are case-insensitive ("Path" is PATH), and its own
// programs need windowsEnvNames too.
func keepEnv(goos, k string) bool {
	if slices.Contains(commandEnvNames, k) || slices.ContainsFunc(commandEnvPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
		return true
	}
	if goos != "windows" {
		return false
	}
	upper := strings.ToUpper(k)
	same := func(n string) bool { return strings.ToUpper(n) == upper }
	return slices.ContainsFunc(commandEnvNames, same) || slices.ContainsFunc(windowsEnvNames, same) ||
		slices.ContainsFunc(commandEnvPrefixes, func(p string) bool { return strings.HasPrefix(upper, p) })
}

// commandEnv returns the environment a password_command or a credential
// helper runs with: the variables above, never one that a registries entry
// names as its password_env, whatever its name.
func commandEnv(cfg *config.Config) []string {
	secret := map[string]bool{}
	if cfg != nil {
		for _, e := range cfg.Registries {
			if e.PasswordEnv != "" {
				secret[e.PasswordEnv] = true
			}
		}
	}
	// Never nil: an exec.Cmd with a nil Env inherits the whole environment.
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || secret[k] || runtime.GOOS == "windows" && secretFold(secret, k) {
			continue
		}
		if keepEnv(runtime.GOOS, k) {
			env = append(env, kv)
		}
	}
	// systemd gives a service without User= no HOME, and pass, gpg and
	// the AWS tools look there: take the user's home from the passwd entry.
	if _, ok := os.LookupEnv("HOME"); !ok {
		if home, err := lookupHome(); err == nil && home != "" {
			env = append(env, "HOME="+home)
		}
	}
	return env
}

// secretFold tells whether k names a password_env secret in any case, as
// Windows reads names.
func secretFold(secret map[string]bool, k string) bool {
	for n := range secret {
		if strings.EqualFold(n, k) {
			return true
		}
	}
	return false
}

// lookupHome returns the home folder of the passwd entry of this process's
// user; tests replace it.
var lookupHome = currentHome

func currentHome() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", err
	}
	return u.HomeDir, nil
}

// runCommand runs argv without a shell, with commandEnv and stdin (nil: no
// input), for at most timeout and until ctx ends (Ctrl-C, the agent
// stopping), in a process group of its own: a timeout or ctx's end ends
// every process it started, and so does a child left holding its output. It returns the standard output even on failure, for callers
// whose protocol puts error text there (helperProgram filters it); the
// error holds the end of standard error, escaped for a terminal, and never
// the standard output.
func runCommand(ctx context.Context, cfg *config.Config, timeout time.Duration, argv []string, stdin io.Reader) ([]byte, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = commandEnv(cfg)
	cmd.Stdin = stdin
	stdout, stderr := &capped{max: maxCommandOutput}, &capped{max: maxCommandOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A child that keeps the pipes open after the command ended must not
	// hold prepull.
	cmd.WaitDelay = time.Second
	inGroup(cmd)
	// Start's watch of ctx may call Cancel before the group is known.
	var joined atomic.Pointer[processGroup]
	cmd.Cancel = func() error {
		if g := joined.Load(); g != nil {
			return g.kill()
		}
		return cmd.Process.Kill()
	}
	err := cmd.Start()
	if err == nil {
		// Without a group (a job object refused), a timeout ends the
		// command alone.
		group, _ := newGroup(cmd)
		joined.Store(group)
		err = cmd.Wait()
		if group != nil {
			if ctx.Err() != nil || errors.Is(err, exec.ErrWaitDelay) {
				group.kill()
			}
			group.close()
		}
	}
	switch {
	case parent.Err() != nil:
		err = fmt.Errorf("ended early: %w", context.Cause(parent))
	case ctx.Err() != nil:
		err = fmt.Errorf("timed out after %v", timeout)
	case err == nil && stdout.dropped:
		err = fmt.Errorf("printed more than %d bytes", maxCommandOutput)
	}
	if err == nil {
		return stdout.buf, nil
	}
	if msg := lastLines(string(stderr.last), 5); msg != "" {
		err = fmt.Errorf("%w; its stderr: %s", err, display.Text(msg))
	}
	return stdout.buf, err
}

// lastLines returns the last n non-blank lines of s, joined with " | " to
// fit on one line of an error message.
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// capped keeps the first max bytes written to it, and the last tailSize
// for error messages: the last lines of standard error say what went wrong.
type capped struct {
	max     int
	buf     []byte
	last    []byte
	dropped bool
}

const tailSize = 1024

func (c *capped) Write(p []byte) (int, error) {
	if len(c.buf)+len(p) > c.max {
		c.dropped = true
	}
	if room := c.max - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	c.last = append(c.last, p...)
	if len(c.last) > tailSize {
		c.last = c.last[len(c.last)-tailSize:]
	}
	return len(p), nil
}

// fromCommand runs a registries entry's password_command and returns the
// password it prints: one line, its newline dropped.
func fromCommand(ctx context.Context, cfg *config.Config, argv []string) (string, error) {
	out, err := runCommand(ctx, cfg, CommandTimeout, argv, nil)
	if err != nil {
		return "", withNetworkHint(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(out), "\n"), "\r")
	switch {
	case pw == "":
		return "", fmt.Errorf("%w: it printed no password", ErrUnavailable)
	case strings.ContainsAny(pw, "\r\n"):
		return "", fmt.Errorf("%w: it printed more than one line; the password must be its only line", ErrUnavailable)
	}
	return pw, nil
}

// withNetworkHint adds to the failure of a login program, which may have
// needed the network, that this process has none, when it has none.
func withNetworkHint(err error) error {
	if hint := networkHint(); hint != "" {
		return fmt.Errorf("%w; %s", err, hint)
	}
	return err
}

// helperProgram runs a Docker credential helper for Docker's own helper
// client, with commandEnv and a timeout instead of prepull's whole
// environment.
type helperProgram struct {
	ctx   context.Context
	cfg   *config.Config
	argv  []string
	stdin io.Reader
}

func (p *helperProgram) Input(in io.Reader) { p.stdin = in }

// Output runs the helper. On failure it returns only what of standard
// output may be shown (shownOutput): Docker's client quotes it in its error.
func (p *helperProgram) Output() ([]byte, error) {
	out, err := runCommand(p.ctx, p.cfg, CommandTimeout, p.argv, p.stdin)
	if err != nil {
		return []byte(shownOutput(out)), err
	}
	return out, nil
}

// maxShownOutput bounds what of a failed helper's output an error quotes.
const maxShownOutput = 200

// secretField matches a field that may hold a secret, in JSON or not.
var secretField = regexp.MustCompile(`(?i)(secret|password)"?\s*[:=]`)

// shownOutput returns what a failed helper's standard output may show: its
// first line, capped, when that is no JSON object and names no secret
// field. Helpers report failures there by protocol ("credentials not found
// in native keychain", "pass not initialized"); a helper that printed a
// login and then failed (or left a child holding its output) must not put
// the secret into an error, a log or a remote's JSON. The caller escapes.
func shownOutput(out []byte) string {
	const hidden = "the helper's output is not shown: it may hold a secret"
	text := strings.TrimSpace(string(out))
	line, _, _ := strings.Cut(text, "\n")
	line = strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(line, "{"), strings.HasPrefix(text, "{"), secretField.MatchString(text):
		return hidden
	case utf8.RuneCountInString(line) > maxShownOutput:
		return string([]rune(line)[:maxShownOutput]) + "..."
	}
	return line
}

// tokenUsername is the user name a helper answers for an identity token.
const tokenUsername = "<token>"

// errNoLogin says that a helper holds no login for the host.
var errNoLogin = errors.New("no login stored")

// helperFile is the file name goos looks for in PATH to run program: on
// Windows the helpers are .exe files (docker-credential-wincred.exe).
func helperFile(goos, program string) string {
	if goos == "windows" {
		return program + ".exe"
	}
	return program
}

// fromHelper asks the credential helper docker-credential-<name> for the
// login of serverAddress, the way the docker CLI does, until ctx ends.
func fromHelper(ctx context.Context, cfg *config.Config, name, serverAddress string) (Credential, error) {
	program := "docker-credential-" + name
	if _, err := exec.LookPath(program); err != nil {
		return Credential{}, fmt.Errorf("%s is not installed (not found in PATH)", helperFile(runtime.GOOS, program))
	}
	run := func(args ...string) client.Program {
		return &helperProgram{ctx: ctx, cfg: cfg, argv: append([]string{program}, args...)}
	}
	got, err := client.Get(run, serverAddress)
	if err != nil && ctx.Err() != nil {
		return Credential{}, fmt.Errorf("%s ended early: %w", program, context.Cause(ctx))
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case helpercreds.IsErrCredentialsNotFound(err):
		return Credential{}, errNoLogin
	case errors.As(err, &syntax), errors.As(err, &typ):
		return Credential{}, fmt.Errorf("%s answered something other than a login (JSON with Username and Secret): %w", program, err)
	case err != nil:
		// The helper protocol puts error text on standard output, which
		// the client quotes: escape it all.
		return Credential{}, withNetworkHint(errors.New(display.Text(err.Error())))
	case got.Username == "" && got.Secret == "":
		// Older helpers (pass 0.6) answer an empty login for an unknown host.
		return Credential{}, errNoLogin
	case got.Secret == "":
		return Credential{}, fmt.Errorf("%s answered user %s without a secret", program, display.Text(got.Username))
	case got.Username == tokenUsername:
		return Credential{IdentityToken: got.Secret}, nil
	}
	return Credential{Username: got.Username, Password: got.Secret}, nil
}
