package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/retry"
)

// engineWait bounds how long the one-shot waits for an engine that does not
// answer at start, before it gives up with ExitEngine.
const engineWait = 30 * time.Second

// progressEvery is how often a pull logs its phase and bytes when stderr
// is not a terminal; terminalEvery how often it says them on one.
const (
	progressEvery = 30 * time.Second
	terminalEvery = 5 * time.Second
)

// pullFlags are the one-shot's own flags.
type pullFlags struct {
	dryRun          bool
	force           bool
	defaultRegistry string
	registry        string
	username        string
	passwordStdin   bool
	timeout         time.Duration
	name            string
	noLocalName     bool
}

// pakResult is one line of the one-shot's output. Its JSON form is stable.
type pakResult struct {
	File             string      `json:"file"`
	AdapterKind      string      `json:"adapter_kind,omitempty"`
	Reference        string      `json:"reference"`
	Status           pull.Status `json:"status"`
	DurationMS       int64       `json:"duration_ms"`
	Attempts         int         `json:"attempts,omitempty"`
	CredentialSource string      `json:"credential_source,omitempty"`
	ExitCode         ExitCode    `json:"exit_code"`
	// Cause is why it failed in a few words; Error is the whole chain.
	Cause   string `json:"cause,omitempty"`
	Error   string `json:"error,omitempty"`
	Version string `json:"version,omitempty"` // of the prepull that pulled
}

func addPullFlags(root *cobra.Command, g *globals) {
	var f pullFlags
	fl := root.Flags()
	fl.BoolVar(&f.dryRun, "dry-run", false, "check without pulling: the registry has the digest (else exit 5), it has a variant for this engine's platform (else 7), the login is accepted (else 4)")
	fl.BoolVar(&f.force, "force", false, "pull even when the image is present")
	fl.StringVar(&f.defaultRegistry, "default-registry", "", "registry for paks built without REGISTRY (overrides default_registry)")
	fl.StringVar(&f.registry, "registry", "", "the one registry HOST[:PORT] the --username login is for (required with --username); paks naming other registries resolve as usual")
	fl.StringVar(&f.username, "username", "", "registry user name for --registry (with --password-stdin)")
	fl.BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password from standard input")
	if built("name") {
		fl.StringVar(&f.name, "name", "", "the name of the pak read from standard input (-), for the logs (prepull remote sends it)")
	}
	fl.BoolVar(&f.noLocalName, "no-local-name", false, "do not give the images the local name prepull.invalid/REPOSITORY:KIND-DIGEST12 that keeps them from a plain 'docker image prune' (local_name: false in the configuration)")
	fl.DurationVar(&f.timeout, "timeout", 0, "give up on a pak after this long, the wait for the engine and retries included (default timeout in the configuration, 10m)")
	root.RunE = func(cmd *cobra.Command, args []string) error {
		return runPull(cmd.Context(), g, &f, args)
	}
}

// puller is the one-shot's Puller on eng.
func (g *globals) puller(eng dockerEngine, cfg *config.Config, flagCred *credentials.FlagLogin, log *zap.Logger) *pull.Puller {
	p := &pull.Puller{
		Engine:      eng,
		Credentials: credentials.NewResolver(cfg, flagCred),
		Log:         log,
		Backoff:     retry.Default,
		Progress:    g.progress(log, cfg.StallTimeout),
		CertsDir:    cfg.CertsDir,
	}
	if goos := g.system(); goos != "linux" {
		// Docker Desktop: its engine, in a VM, trusts this system's CAs.
		p.CertsDir, p.DesktopOS = "", goos
	}
	if cfg.LocalName {
		p.Namer = eng
	}
	return p
}

// config loads the configuration with the flags that override it.
func (f *pullFlags) config(g *globals) (*config.Config, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	if err := setDefaultRegistry(cfg, f.defaultRegistry); err != nil {
		return nil, err
	}
	if f.timeout > 0 {
		cfg.Timeout = f.timeout
	}
	if f.noLocalName {
		cfg.LocalName = false
	}
	return cfg, nil
}

func runPull(ctx context.Context, g *globals, f *pullFlags, args []string) error {
	if err := checkPakArgs(args, g.stdin); err != nil {
		return err
	}
	flagCred, err := f.credential(g.stdin, args)
	if err != nil {
		return err
	}
	cfg, err := f.config(g)
	if err != nil {
		return err
	}
	log := g.logger(cfg)
	defer log.Sync()

	out := newResultPrinter(g)
	brief := g.briefFailures(cfg)
	worst := ExitOK
	report := func(r pakResult) {
		// After Ctrl-C, what failed failed because of it: say so, not
		// how the engine call was cut. A pak that is no pak stays so.
		if i, ok := interrupted(ctx); ok && r.Status == pull.Failed && r.ExitCode != ExitBadPak {
			r.Status, r.ExitCode, r.Error, r.Cause = pull.Interrupted, i.code(), i.Error(), i.Error()
			log.Warn("pak not finished: interrupted", zap.String("pak", r.File), zap.String("reference", r.Reference))
		}
		out.add(r)
		worst = max(worst, r.ExitCode)
	}
	// fail logs a failure with its whole chain, unless the result line is
	// to say it alone (see globals.briefFailures).
	fail := func(msg string, err error, fields ...zap.Field) {
		if !brief {
			log.Error(msg, append(fields, zap.Error(err))...)
		}
	}

	var eng dockerEngine
	var puller *pull.Puller
	var engineErr error
	done := map[string]pakResult{} // by reference: the same image is pulled once per run
	for _, arg := range args {
		start := time.Now()
		if i, ok := interrupted(ctx); ok {
			report(failed(arg, "", start, i)) // not tried
			continue
		}
		t, err := readTarget(arg, g.stdin, cfg.DefaultRegistry)
		if err != nil {
			fail("cannot use pak", err, zap.String("pak", f.logName(arg)))
			report(failed(arg, "", start, err))
			continue
		}
		t.File = f.logName(arg)
		if prev, ok := done[t.Reference]; ok {
			prev.File, prev.AdapterKind, prev.DurationMS = arg, t.AdapterKind, 0
			report(prev)
			continue
		}
		if eng == nil && engineErr == nil {
			eng, engineErr = connect(ctx, g, g.engineHost(cfg), min(cfg.Timeout, engineWait), log)
			if engineErr == nil {
				defer eng.Close()
				puller = g.puller(eng, cfg, flagCred, log)
			}
		}
		if engineErr != nil {
			report(failed(arg, t.Reference, start, engineErr))
			continue
		}
		// --timeout bounds the pak as a whole: the wait for the engine counts.
		left := max(cfg.Timeout-time.Since(start), time.Millisecond)
		res := puller.Ensure(ctx, t, pull.Options{Force: f.force, DryRun: f.dryRun, Timeout: left, StallTimeout: cfg.StallTimeout})
		r := pakResult{
			File: arg, AdapterKind: t.AdapterKind, Reference: t.Reference, Status: res.Status,
			DurationMS: res.Duration.Milliseconds(), Attempts: res.Attempts, CredentialSource: res.CredentialSource,
			ExitCode: CodeFor(res.Err), Version: shortVersion(),
		}
		if res.Err != nil {
			r.Error, r.Cause = res.Err.Error(), pull.Cause(res.Err)
			if _, ok := interrupted(ctx); !ok { // else report says interrupted
				fail("pull failed", res.Err, zap.String("pak", t.File), zap.String("reference", t.Reference))
			}
		}
		done[t.Reference] = r
		report(r)
	}
	if err := out.flush(); err != nil {
		return err
	}
	if worst != ExitOK {
		return &exitError{code: worst}
	}
	return nil
}

// logName is how the logs name the pak of arg: its path, or --name for
// standard input.
func (f *pullFlags) logName(arg string) string {
	if arg == "-" && f.name != "" {
		return f.name
	}
	return arg
}

// failed is the result of a pak that could not be tried.
func failed(file, ref string, start time.Time, err error) pakResult {
	return pakResult{
		File: file, Reference: ref, Status: pull.Failed, DurationMS: time.Since(start).Milliseconds(),
		ExitCode: CodeFor(err), Cause: pull.Cause(err), Error: err.Error(), Version: shortVersion(),
	}
}

// credential returns the login given with --registry, --username and
// --password-stdin, or nil. The login is for that one registry: a pak naming
// another registry must never receive it.
func (f *pullFlags) credential(stdin io.Reader, args []string) (*credentials.FlagLogin, error) {
	switch {
	case f.username == "" && !f.passwordStdin && f.registry == "":
		return nil, nil
	case f.username == "" && !f.passwordStdin:
		return nil, usageErrorf("--registry names the registry of a command-line login: give --username and --password-stdin too")
	case f.username == "":
		return nil, usageErrorf("--password-stdin needs --username and --registry")
	case !f.passwordStdin:
		return nil, usageErrorf("--username needs --password-stdin (passwords are never taken as arguments)")
	case f.registry == "":
		return nil, usageErrorf("--username needs --registry HOST: a command-line login is for one registry only, never for whatever registry a pak names")
	}
	if err := pak.ValidateRegistry(f.registry); err != nil {
		return nil, usageErrorf("--registry %w", err)
	}
	for _, a := range args {
		if a == "-" {
			return nil, usageErrorf("--password-stdin and a pak on standard input (-) cannot be combined")
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return nil, usageErrorf("--password-stdin: standard input held no password")
	}
	return &credentials.FlagLogin{Host: f.registry, Username: f.username, Password: pw}, nil
}

// connect opens the engine and waits up to wait for it to answer.
func connect(ctx context.Context, g *globals, host string, wait time.Duration, log *zap.Logger) (dockerEngine, error) {
	// A socket that is not there is not an engine still starting (that
	// socket is there from the start): waiting would only delay the answer.
	// Tests' engines (newEngine) have no socket.
	if path := unixSocket(host, g.goos); path != "" && g.newEngine == nil {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: no Docker socket at %s: %s "+
				"Another engine is named with --docker-host, DOCKER_HOST or docker_host in the configuration", engine.ErrUnreachable, path, engineCheck(g.system()))
		}
	}
	eng, err := g.openEngine(host)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var version string
	err = retry.Do(ctx, retry.Default, engine.Transient, func(attempt int, err error, delay time.Duration) {
		log.Warn("docker engine not answering, will retry", zap.Int("attempt", attempt), zap.Duration("retry_in", delay), zap.Error(err))
	}, func(ctx context.Context) error {
		var err error
		version, err = eng.Ping(ctx)
		return err
	})
	if err != nil {
		eng.Close()
		return nil, err
	}
	log.Debug("connected to docker engine", zap.String("api_version", version))
	return eng, nil
}

// progress returns how pulls report progress: Docker's own per-layer display
// on a terminal with prepull's phase line, a line every progressEvery
// otherwise, nothing when quiet. stall is when a pull without progress
// gives up.
func (g *globals) progress(log *zap.Logger, stall time.Duration) func(ref string) (func(engine.Progress), func()) {
	if g.quiet {
		return nil
	}
	if g.terminal {
		return func(string) (func(engine.Progress), func()) { return terminalProgress(g.stderr, terminalEvery, stall) }
	}
	return pull.LogProgress(log, progressEvery, stall)
}

// resultPrinter writes results: a line per pak as it completes, or one JSON
// array at the end.
type resultPrinter struct {
	g       *globals
	results []pakResult
}

func newResultPrinter(g *globals) *resultPrinter { return &resultPrinter{g: g, results: []pakResult{}} }

func (p *resultPrinter) add(r pakResult) {
	p.results = append(p.results, r)
	if p.g.json {
		return
	}
	ref := r.Reference
	if ref == "" {
		ref = "-"
	}
	line := fmt.Sprintf("%-10s %s  %s", r.Status, display.Text(r.File), display.Text(ref))
	if msg := r.Cause; r.Error != "" {
		if p.g.verbose || msg == "" {
			msg = r.Error
		}
		line += "  " + display.Text(strings.TrimPrefix(msg, r.File+": "))
	} else if r.Status == pull.Pulled {
		line += fmt.Sprintf("  (%s)", time.Duration(r.DurationMS)*time.Millisecond)
	}
	fmt.Fprintln(p.g.stdout, line)
}

func (p *resultPrinter) flush() error {
	if !p.g.json {
		return nil
	}
	return printResults(p.g.stdout, p.results)
}

// engineCheck asks whether the Docker Engine of goos runs, and says how to
// see: a service on Linux, Docker Desktop elsewhere.
func engineCheck(goos string) string {
	if goos == "linux" {
		return "is Docker Engine installed and running (systemctl status docker)?"
	}
	return "is Docker Desktop installed and running?"
}

// unixSocket returns the path of the Unix socket host names (the client's
// default, /var/run/docker.sock, when host is empty on Linux or macOS), or
// "" for any other kind of host.
func unixSocket(host, goos string) string {
	if goos == "" {
		goos = runtime.GOOS
	}
	switch {
	case host == "" && goos != "windows":
		return "/var/run/docker.sock"
	case strings.HasPrefix(host, "unix://"):
		return strings.TrimPrefix(host, "unix://")
	}
	return ""
}
