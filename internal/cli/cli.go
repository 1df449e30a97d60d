// Package cli is prepull's command line: the one-shot pull, inspect, and the
// commands later added beside them. Results go to stdout, diagnostics to
// stderr.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/prepull/prepull/agent"
	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/logging"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/remote"
)

// Version, Commit and CommitDate are set at build time, by
// scripts/release.sh and install.sh, with -ldflags "-X
// github.com/prepull/prepull/internal/cli.Version=...". Empty, each comes
// from the build information Go records, as a plain go build leaves it.
var (
	Version    = ""
	Commit     = ""
	CommitDate = ""
)

// CodeFor maps an error to the exit code that describes it.
func CodeFor(err error) ExitCode {
	var coded *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &coded):
		return coded.code
	case errors.Is(err, config.ErrInvalid), errors.Is(err, credentials.ErrUnavailable):
		return ExitUsage
	case errors.Is(err, pak.ErrInvalid):
		return ExitBadPak
	case errors.Is(err, engine.ErrUnauthorized):
		return ExitAuth
	case errors.Is(err, engine.ErrNotFound):
		return ExitNotFound
	case errors.Is(err, engine.ErrUnreachable):
		return ExitEngine
	case errors.Is(err, engine.ErrRegistryUnreachable):
		return ExitRegistry
	case errors.Is(err, pull.ErrPlatform):
		return ExitPlatform
	}
	return ExitFailure
}

// exitError carries an exit code chosen by a command, and the error it
// reports. A nil err means the command already reported everything.
type exitError struct {
	code ExitCode
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf returns an error that exits with ExitUsage; a %w verb keeps
// the error it formats in the chain.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// noArgs refuses arguments, for commands that take none, with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %s (see '%s --help')", cmd.CommandPath(), display.Text(args[0]), cmd.CommandPath())
	}
	return nil
}

// globals are the flags every command takes.
type globals struct {
	configFile string
	json       bool
	quiet      bool
	verbose    bool
	dockerHost string
	// terminal is whether stderr is a terminal: then a failure is said
	// once, by its result line, unless --verbose. Main sets it; tests
	// choose.
	terminal bool

	stdin          io.Reader
	stdout, stderr io.Writer
	stderrFile     *os.File // for terminal detection and logging

	// newEngine opens the Docker Engine at host; nil means
	// engine.NewDocker. Tests of the commands' logic give a fake.
	newEngine func(host string) (dockerEngine, error)
	// newConnector returns what prepull remote opens its SSH connections
	// with, given the Dialer its flags make; nil means that Dialer. Tests
	// give one that leads every host to an in-process SSH server.
	newConnector func(d *remote.Dialer) remote.Connector
	// goos is the system to behave as; empty means the one prepull runs
	// on. Tests of the choices made for Windows and macOS set it.
	goos string
	// keepStep, when set, stands for prepull keep's wait between two reads
	// of the agent's state: tests play the agent's part there, one step per
	// read, instead of racing keepPoll.
	keepStep func()
}

// dockerEngine is what the commands ask of the engine they open: what the
// agent and a Puller need, and naming images (local_name), which they use
// when the engine offers it.
type dockerEngine interface {
	agent.Engine
	pull.Namer
	io.Closer
}

// openEngine opens the Docker Engine at host. Its errors wrap
// engine.ErrUnreachable.
func (g *globals) openEngine(host string) (dockerEngine, error) {
	open := g.newEngine
	if open == nil {
		open = func(host string) (dockerEngine, error) { return engine.NewDocker(host) }
	}
	eng, err := open(host)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", engine.ErrUnreachable, err)
	}
	return eng, nil
}

// connector returns what prepull remote connects with, given d.
func (g *globals) connector(d *remote.Dialer) remote.Connector {
	if g.newConnector == nil {
		return d
	}
	return g.newConnector(d)
}

// loadConfig reads the configuration named by --config (or the defaults).
func (g *globals) loadConfig() (*config.Config, error) {
	return config.Load(g.configFile)
}

// logger returns the diagnostics logger for cfg.
func (g *globals) logger(cfg *config.Config) *zap.Logger {
	return logging.New(g.stderrFile, cfg.LogFormat, g.quiet)
}

// briefFailures tells whether a failure is said once, by its result line
// with its cause only: on a terminal, without --verbose, unless the logs
// are JSON (which always carry the whole chain).
func (g *globals) briefFailures(cfg *config.Config) bool {
	return g.terminal && !g.verbose && cfg.LogFormat != "json"
}

// engineHost picks the Docker host: the flag, then $DOCKER_HOST, then the
// configuration. Empty means the client's default socket.
func (g *globals) engineHost(cfg *config.Config) string {
	if g.dockerHost != "" {
		return g.dockerHost
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return cfg.DockerHost
}

// Main runs prepull with the process's arguments and returns its exit code.
func Main() int {
	ctx, stop := signalContext()
	defer stop()
	g := &globals{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stderrFile: os.Stderr,
		terminal: term.IsTerminal(int(os.Stderr.Fd()))}
	if err := harden(); err != nil {
		fmt.Fprintf(g.stderr, "prepull: warning: cannot make this process non-dumpable: %v\n", err)
	}
	return int(run(ctx, g, os.Args[1:]))
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, g *globals, args []string) ExitCode {
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := CodeFor(err)
	if err.Error() != "" {
		printError(g.stderr, err)
	}
	return code
}

// printResults writes results as --json prints them: one JSON array, one
// element per result, "[]" when there is none.
func printResults[T any](w io.Writer, results []T) error {
	if results == nil {
		results = []T{}
	}
	return display.JSON(w, results)
}

// printError writes err as a diagnostic line. An error may quote what a
// registry, an engine or a pak said: each of its lines is escaped, so that
// nothing drives the terminal, while a message of several lines (a
// configuration's list of problems) stays readable.
func printError(w io.Writer, err error) {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = display.Text(l)
	}
	fmt.Fprintf(w, "prepull: %s\n", strings.Join(lines, "\n"))
}

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "prepull [flags] PAK...",
		Short: "Pre-pull the container images that VCF Operations management packs reference",
		Long: `prepull reads a management pack (.pak), logs in to its registry with the
credentials configured on this Cloud Proxy, pulls the exact image digest the
pack names, and verifies it, so that the proxy finds the image locally and
never pulls it anonymously. PAK may be a .pak, an adapter.zip, a .conf, or -
for standard input.

--dry-run pulls nothing: exit 0 then means that every image is present or
would be pulled ("would-pull"): the registry has the digest, the image has a
variant for this Docker Engine's platform, and the login is accepted.

` + exitCodesHelp(g.system()),
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.ValidArgsFunction = completeRoot
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%w (see '%s --help')", err, c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", configUsage(g.system(), os.Getenv))
	pf.BoolVar(&g.json, "json", false, "print results as JSON on stdout")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print only warnings and errors on stderr")
	pf.BoolVar(&g.verbose, "verbose", false, "say each failure with its whole chain of causes, and log on stderr too when it is a terminal (--json and JSON logs always have the whole chain)")
	pf.StringVar(&g.dockerHost, "docker-host", "", "Docker Engine address (default $DOCKER_HOST, then docker_host in the configuration)")

	addPullFlags(root, g)
	inspect, version, pull := newInspectCommand(g), newVersionCommand(g), newPullCommand(g)
	remote, mirror, keep, slim := newRemoteCommand(g), newMirrorCommand(g), proxyOnly(g, newKeepCommand(g)), newSlimCommand(g)
	agent, status := proxyOnly(g, newAgentCommand(g)), proxyOnly(g, newStatusCommand(g))
	// Each command lists, and takes, only the global flags that apply to it.
	withoutFlags(inspect, "docker-host")
	withoutFlags(version, "config", "docker-host", "quiet", "verbose")
	withoutFlags(mirror, "docker-host")
	withoutFlags(keep, "docker-host")
	withoutFlags(slim, "docker-host")
	withoutFlags(agent, "json")
	withoutFlags(status, "docker-host", "quiet", "verbose")
	for _, c := range []*cobra.Command{inspect, remote, mirror, keep, slim} {
		c.ValidArgsFunction = completePaks
	}
	root.AddCommand(pull, inspect, version, remote, mirror, keep, slim, agent, status)
	return root
}
