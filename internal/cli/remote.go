package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/remote"
)

// remoteGrace is how long past --timeout a proxy has to report its result
// before its command is ended and its row says it timed out.
const remoteGrace = 5 * time.Second

// remoteFlags are the flags of prepull remote.
type remoteFlags struct {
	hosts          []string
	hostsFile      string
	identities     []string
	knownHosts     []string
	sshConfig      string
	acceptNew      bool
	parallel       int
	connectTimeout time.Duration
	remoteCommand  string
	sudo           bool
	keep           bool
	wide           bool

	// commands makes the command lines sent to the proxies; nil makes them
	// without remembering them (and so without retries).
	commands *proxyCommands

	// Passed on to the one-shot on each proxy.
	force           bool
	dryRun          bool
	timeout         time.Duration
	defaultRegistry string
}

// remoteRow is one line of prepull remote's results: one pak on one host.
// Its JSON form is stable.
type remoteRow struct {
	Host       string      `json:"host"`
	File       string      `json:"file"`
	Reference  string      `json:"reference"`
	Status     pull.Status `json:"status"`
	DurationMS int64       `json:"duration_ms"`
	ExitCode   ExitCode    `json:"exit_code"`
	// Cause is why it failed in a few words; Error is the whole chain.
	Cause string `json:"cause,omitempty"`
	Error string `json:"error,omitempty"`
	// Version is the proxy's prepull version, empty when it is too old to
	// say or did not run; VersionDiffers says it is not this prepull's.
	Version        string `json:"version,omitempty"`
	VersionDiffers bool   `json:"version_differs,omitempty"`
	// Lacks lists what the proxy's older prepull lacks: a flag it refused,
	// and was asked again without.
	Lacks []string `json:"lacks,omitempty"`
	// Keep is whether the proxy's agent took the pak, with --keep after a
	// successful pull.
	Keep *remoteKeep `json:"keep,omitempty"`

	// sshFailed says that SSH did not reach, log in to or trust the host.
	sshFailed bool
}

func newRemoteCommand(g *globals) *cobra.Command {
	f := &remoteFlags{commands: &proxyCommands{}}
	cmd := &cobra.Command{
		Use:   "remote [flags] PAK...",
		Short: "Pre-pull on one Cloud Proxy or a fleet, over SSH, from a workstation",
		Long: `prepull remote runs prepull on each Cloud Proxy named with -H or --hosts-file,
over SSH: each proxy pulls with its own configuration and credentials, so
no registry secret leaves the proxies. For one proxy and one pak it does
what plain OpenSSH does with

    ssh proxy prepull - < foo.pak

except that only what the proxy needs of the pak is sent: its adapter .conf
and manifest.txt, byte for byte, as a small adapter.zip (a few KiB, however
big the pak), which the proxy's prepull reads with the same checks as the
pak. Every pak is checked here first: a bad pak exits 3 before any
connection. Each host gets one SSH connection and, for each pak, runs

    [sudo -n] <remote-command> --json [--quiet] [--force] [--dry-run]
        [--timeout D] [--default-registry HOST] -

With --keep, after each pull that succeeded, it runs on the same connection

    [sudo -n] <remote-command> keep --json --until-present --name NAME.pak -

with the same input: the proxy's agent gets it in its watch_dir (see
'prepull keep --help'), and the KEPT column says whether the agent took it.

The remote standard error is shown live, each line prefixed by the host and
escaped: no proxy can drive this terminal. At the end comes a table (or,
with --json, an array) with one row per host and pak; a proxy's JSON result
is used only when it is one valid result for the pak sent. Each proxy's
prepull gets --timeout (without it, the timeout of this machine's
configuration, 10m unless set), so both sides agree; a remote command that
has no result after it and ` + remoteGrace.String() + ` of grace is ended, and its row says
it timed out, while the other hosts go on.

--docker-host does not apply here, nor --config beyond that default
timeout: the proxy's own configuration decides, or put --config in
--remote-command.

DEST is [user@]host[:port] or an alias of ~/.ssh/config (HostName, User,
Port, IdentityFile, ProxyJump, ServerAliveInterval, ServerAliveCountMax are
honoured). Host keys are checked strictly against known_hosts: an unknown
host is refused unless --accept-new, a changed key always. Keys come from
the ssh-agent ($SSH_AUTH_SOCK) and from identity files; prepull never
prompts for a passphrase.

Exit status: 0 when every pak succeeded on every host; otherwise the highest
code of any row, where a host that cannot be reached, authenticated or
trusted counts 1.

` + exitCodesHelp(g.system()),
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRemote(cmd.Context(), g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.hosts, "host", "H", nil, "proxy to pre-pull on, [user@]host[:port] or an ssh_config alias (repeatable)")
	fl.StringVar(&f.hostsFile, "hosts-file", "", "file with one DEST a line (# starts a comment)")
	fl.StringArrayVarP(&f.identities, "identity", "i", nil, "private key file to log in with (repeatable), besides the ssh-agent's keys")
	fl.StringArrayVar(&f.knownHosts, "known-hosts", nil, "known_hosts file (repeatable; --accept-new writes to the first) (default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts; on Windows known_hosts in the .ssh folder of %USERPROFILE% and %ProgramData%\\ssh\\ssh_known_hosts)")
	fl.StringVar(&f.sshConfig, "ssh-config", "", "ssh_config file, instead of ~/.ssh/config and /etc/ssh/ssh_config (on Windows config in the .ssh folder of %USERPROFILE% and %ProgramData%\\ssh\\ssh_config)")
	fl.BoolVar(&f.acceptNew, "accept-new", false, "trust the key of a host known_hosts does not list, and record it (never a changed key)")
	fl.IntVar(&f.parallel, "parallel", 8, "hosts worked on at once")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", 10*time.Second, "give up on connecting to and logging in to a host after this long")
	fl.StringVar(&f.remoteCommand, "remote-command", "prepull", "command line run on each proxy, as shell text, before the arguments prepull appends (e.g. 'prepull --config /etc/prepull/fleet.yaml')")
	fl.BoolVar(&f.sudo, "sudo", false, "run the remote command with sudo -n; the proxy user must then be allowed prepull as root, which lets it obtain the registry secret (see docs/security.md)")
	fl.BoolVar(&f.wide, "wide", false, "show full digests and whole error texts in the table (--json always has them)")
	fl.BoolVar(&f.keep, "keep", false, "after each successful pull, hand the pak to the proxy's agent with 'prepull keep' (see 'prepull keep --help') so that it keeps the image present; the KEPT column says whether the agent took it")
	fl.BoolVar(&f.force, "force", false, "passed on: pull even when the image is present")
	fl.BoolVar(&f.dryRun, "dry-run", false, "passed on: check the digest, its platform and the login on each proxy; pull nothing")
	fl.DurationVar(&f.timeout, "timeout", 0, fmt.Sprintf("passed on: give up on a pak after this long; here, a remote command without a result after it and %v of grace is ended and reported timed out (default the timeout in this machine's configuration, 10m)", remoteGrace))
	fl.StringVar(&f.defaultRegistry, "default-registry", "", "passed on: registry for paks built without REGISTRY (default the proxy's default_registry)")
	return cmd
}

// readPaks reads every pak before any connection, each error printed. The
// registry is left to each proxy's configuration. A proxy gets only what
// it needs of a pak: the .conf and manifest.txt, as a small adapter
// archive.
func (f *remoteFlags) readPaks(g *globals, args []string) ([]pak.Image, []remote.Input, error) {
	images := make([]pak.Image, len(args))
	inputs := make([]remote.Input, len(args))
	worst := ExitOK
	for i, a := range args {
		img, slim, err := readSlim(a, nil)
		if err != nil {
			printError(g.stderr, err)
			worst = max(worst, CodeFor(err))
			continue
		}
		images[i], inputs[i] = img, remote.Input{Name: a, Data: slim, Command: f.commandLine(g, a)}
	}
	if worst != ExitOK {
		return nil, nil, &exitError{code: worst}
	}
	return images, inputs, nil
}

// sshFiles returns OpenSSH's user and system ssh_config and known_hosts
// files on goos, for the user whose home is home: under ~/.ssh and
// /etc/ssh; on Windows, as its own OpenSSH has them, under
// %USERPROFILE%\.ssh and %ProgramData%\ssh (getenv reads the
// environment).
func sshFiles(goos, home string, getenv func(string) string) (configs, knownHosts []string) {
	if goos != "windows" {
		return []string{filepath.Join(home, ".ssh", "config"), "/etc/ssh/ssh_config"},
			[]string{filepath.Join(home, ".ssh", "known_hosts"), "/etc/ssh/ssh_known_hosts"}
	}
	user := strings.TrimRight(home, `\/`) + `\.ssh\`
	configs, knownHosts = []string{user + "config"}, []string{user + "known_hosts"}
	if data := getenv("ProgramData"); data != "" {
		system := strings.TrimRight(data, `\/`) + `\ssh\`
		configs, knownHosts = append(configs, system+"ssh_config"), append(knownHosts, system+"ssh_known_hosts")
	}
	return configs, knownHosts
}

// loadSSH reads the ssh_config and known_hosts files of the flags, or
// OpenSSH's user and system ones on goos under home.
func (f *remoteFlags) loadSSH(goos, home string) (*remote.SSHConfig, *remote.KnownHosts, error) {
	sshConfigs, knownHostsFiles := sshFiles(goos, home, os.Getenv)
	if f.sshConfig != "" {
		sshConfigs = []string{f.sshConfig}
	}
	sshConfig, err := remote.LoadSSHConfig(sshConfigs...)
	if err != nil {
		return nil, nil, usageErrorf("%w", err)
	}
	if len(f.knownHosts) > 0 {
		knownHostsFiles = f.knownHosts
	}
	knownHosts, err := remote.LoadKnownHosts(knownHostsFiles, f.acceptNew)
	if err != nil {
		return nil, nil, usageErrorf("%w", err)
	}
	return sshConfig, knownHosts, nil
}

// rows are the rows of the fleet's outputs, a row per host and pak (the
// paks' images in order), and the worst exit code among them.
func (f *remoteFlags) rows(ctx context.Context, outputs [][]remote.Output, images []pak.Image) ([]remoteRow, ExitCode) {
	worst := ExitOK
	var rows []remoteRow
	for _, host := range outputs {
		for i, o := range host {
			r := f.rowFor(o, images[i])
			// Ctrl-C ended it, or kept it from starting: say so, as the
			// one-shot does. A row done before keeps its status.
			in, ok := errors.AsType[interruption](o.Err)
			if !ok && errors.Is(o.Err, context.Canceled) {
				in, ok = interrupted(ctx)
			}
			if ok {
				r.Status, r.ExitCode, r.Error = pull.Interrupted, in.code(), in.Error()
			}
			worst = max(worst, r.ExitCode)
			if r.Keep = f.keepFor(o.Then); r.Keep != nil {
				worst = max(worst, r.Keep.ExitCode)
			}
			r.Lacks = append(f.commands.lacks(&o), f.commands.lacks(o.Then)...)
			rows = append(rows, r)
		}
	}
	return rows, worst
}

func runRemote(ctx context.Context, g *globals, f *remoteFlags, args []string) error {
	if err := checkPakArgs(args, nil); err != nil {
		return err
	}
	for _, a := range args {
		if a == "-" {
			return usageErrorf("prepull remote sends pak files; standard input (-) cannot be sent to several hosts")
		}
	}
	dests, err := f.destinations()
	if err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if f.timeout == 0 {
		// Without --timeout, both sides use the one-shot's default
		// bound (the configuration's timeout, 10m unless set): the
		// proxy is told it, and a proxy that hangs is ended here after
		// it and the grace.
		cfg, err := g.loadConfig()
		if err != nil {
			return err
		}
		f.timeout = cfg.Timeout
	}
	images, inputs, err := f.readPaks(g, args)
	if err != nil {
		return err
	}
	home, _ := os.UserHomeDir()
	sshConfig, knownHosts, err := f.loadSSH(g.system(), home)
	if err != nil {
		return err
	}
	auth := remote.NewAuth(remote.AgentAddress(g.system(), os.Getenv("SSH_AUTH_SOCK")), f.identities, home)
	defer auth.Close()

	hosts := make([]remote.Host, len(dests))
	for i, d := range dests {
		hosts[i].Name = d.Raw
		hosts[i].Route, hosts[i].Err = sshConfig.Route(d)
	}
	fleet := &remote.Fleet{
		Dialer:   g.connector(&remote.Dialer{KnownHosts: knownHosts, Auth: auth, Timeout: f.connectTimeout}),
		Retry:    f.commands.retry,
		Sudo:     f.sudo,
		Parallel: f.parallel,
		Stderr:   g.stderr,
	}
	if f.timeout > 0 {
		fleet.Timeout = f.timeout + remoteGrace
	}
	if f.keep {
		byFile := map[string]pak.Image{}
		for i, a := range args {
			byFile[a] = images[i]
		}
		fleet.Then = f.keepThen(byFile)
	}
	rows, worst := f.rows(ctx, fleet.Run(ctx, hosts, inputs), images)
	if err := printRemoteRows(g, rows, f.keep, f.wide); err != nil {
		return err
	}
	summary := fleetSummary(rows)
	if g.json {
		fmt.Fprintln(g.stderr, summary)
	} else {
		fmt.Fprintln(g.stdout, summary)
	}
	if worst != ExitOK {
		return &exitError{code: worst}
	}
	return nil
}

// destinations returns the hosts of -H and --hosts-file, each once, in order.
func (f *remoteFlags) destinations() ([]remote.Dest, error) {
	var dests []remote.Dest
	for _, h := range f.hosts {
		d, err := remote.ParseDest(h)
		if err != nil {
			return nil, usageErrorf("-H: %w", err)
		}
		dests = append(dests, d)
	}
	if f.hostsFile != "" {
		file, err := os.Open(f.hostsFile)
		if err != nil {
			return nil, usageErrorf("--hosts-file: %w", err)
		}
		defer file.Close()
		more, err := remote.ReadHostsFile(file, f.hostsFile)
		if err != nil {
			return nil, usageErrorf("--hosts-file: %w", err)
		}
		dests = append(dests, more...)
	}
	if len(dests) == 0 {
		return nil, usageErrorf("no host given: use -H DEST or --hosts-file FILE (see 'prepull remote --help')")
	}
	seen := map[string]bool{}
	unique := dests[:0]
	for _, d := range dests {
		if !seen[d.Raw] {
			seen[d.Raw] = true
			unique = append(unique, d)
		}
	}
	return unique, nil
}

// check rejects flag values that cannot work, before anything is read.
func (f *remoteFlags) check() error {
	switch {
	case f.parallel < 1:
		return usageErrorf("--parallel must be at least 1")
	case f.connectTimeout <= 0:
		return usageErrorf("--connect-timeout must be positive")
	case strings.TrimSpace(f.remoteCommand) == "":
		return usageErrorf("--remote-command is empty")
	case f.timeout < 0:
		return usageErrorf("--timeout must not be negative")
	case f.keep && f.dryRun:
		return usageErrorf("--keep hands the pak to the agent, which pulls: it cannot go with --dry-run")
	}
	for _, id := range f.identities {
		if _, err := os.Stat(id); err != nil {
			return usageErrorf("-i: %w", err)
		}
	}
	if f.sshConfig != "" {
		if _, err := os.Stat(f.sshConfig); err != nil {
			return usageErrorf("--ssh-config: %w", err)
		}
	}
	return nil
}

// commandLine is the shell command line run on each proxy for the pak
// file: the user's --remote-command as given, then the one-shot's
// arguments, each quoted.
func (f *remoteFlags) commandLine(g *globals, file string) string {
	args := []string{"--json", "--name", filepath.Base(file)}
	if g.quiet {
		args = append(args, "--quiet")
	}
	if f.force {
		args = append(args, "--force")
	}
	if f.dryRun {
		args = append(args, "--dry-run")
	}
	if f.timeout > 0 {
		args = append(args, "--timeout", f.timeout.String())
	}
	if f.defaultRegistry != "" {
		args = append(args, "--default-registry", f.defaultRegistry)
	}
	return f.commands.line(f.remoteCommand, append(args, "-"), nil)
}

// rowFor turns one remote run into a result row: the one-shot's own JSON
// result when it printed a valid one, otherwise why there is none.
func (f *remoteFlags) rowFor(o remote.Output, img pak.Image) remoteRow {
	r := remoteRow{Host: o.Host, File: o.File, Status: pull.Failed, DurationMS: o.Duration.Milliseconds(), ExitCode: ExitFailure}
	if t, err := img.Resolve(""); err == nil {
		r.Reference = t.Reference // as the pak states it; the proxy may settle another
	}
	switch {
	case errors.Is(o.Err, remote.ErrTimedOut):
		r.Error = fmt.Sprintf("timed out: no result within --timeout %v and %v of grace; the remote command was ended", f.timeout, remoteGrace)
		return r
	case o.Err != nil:
		r.Error = o.Err.Error()
		r.sshFailed = !errors.Is(o.Err, context.Canceled) && !strings.HasPrefix(r.Error, "not started")
		return r
	}
	if len(bytes.TrimSpace(o.Stdout)) > 0 {
		res, err := decodeRemote(o.Stdout, func(results []pakResult) error { return checkRemoteResult(results, o.ExitStatus, img) })
		if err != nil {
			r.Error = "the proxy's result is invalid: " + err.Error()
			return r
		}
		if res.Reference != "" {
			r.Reference = res.Reference
		}
		r.Status, r.ExitCode, r.Cause, r.Error = res.Status, res.ExitCode, res.Cause, res.Error
		r.Version, r.VersionDiffers = res.Version, res.Version != shortVersion()
		if r.ExitCode > exitMax && r.Status == pull.Failed {
			// A newer prepull's code: this one cannot tell what it means,
			// but the proxy's own words can.
			newer := fmt.Sprintf("exit %d (newer prepull on the proxy): ", r.ExitCode)
			r.Cause, r.Error = newer+cmp.Or(r.Cause, r.Error), newer+r.Error
		}
		return r
	}
	switch {
	case o.Signal != "":
		r.Error = fmt.Sprintf("the remote command was killed by signal %s", o.Signal)
	case o.ExitStatus == 127 && f.sudo && strings.Contains(o.LastStderr, "sudo"):
		r.Error = "sudo is not installed on the proxy (--sudo runs the remote command with sudo -n)"
	case o.ExitStatus == 127:
		r.Error = "the remote command was not found (is prepull installed on the proxy? see --remote-command)"
	case f.sudo && strings.Contains(o.LastStderr, "sudo: a password is required"):
		r.Error = "sudo asks for a password on the proxy; --sudo needs the remote command allowed without one (NOPASSWD in sudoers)"
	default:
		r.Error = fmt.Sprintf("the remote command exited with status %d and printed no result", o.ExitStatus)
		// prepull's own documented codes keep their meaning, e.g. 2 for a
		// broken configuration on the proxy.
		if c := ExitCode(o.ExitStatus); c >= ExitUsage && c <= exitMax {
			r.ExitCode = c
		}
	}
	if o.LastStderr != "" {
		r.Error += ": " + o.LastStderr
	}
	return r
}

// decodeRemote decodes what a proxy's prepull printed, a JSON array of
// results, and has check look at them before anything of them is used: a
// proxy may be hostile or broken. It returns the first result.
func decodeRemote[T any](stdout []byte, check func([]T) error) (T, error) {
	var results []T
	var zero T
	if err := json.Unmarshal(stdout, &results); err != nil {
		return zero, fmt.Errorf("not a JSON array of results: %w", err)
	}
	if err := check(results); err != nil {
		return zero, err
	}
	return results[0], nil
}

// checkRemoteResult checks a proxy's JSON result before anything of it is
// used: a proxy may be hostile or broken. It must be one result for the one
// pak sent on standard input, with a known status, an exit code that agrees
// with the status and with the command's exit status, and the reference of
// that pak (with the proxy's own registry only when the pak names none).
func checkRemoteResult(results []pakResult, exitStatus int, img pak.Image) error {
	if len(results) != 1 {
		return fmt.Errorf("%d results for the one pak sent", len(results))
	}
	res := results[0]
	if res.File != "-" {
		return fmt.Errorf("a result for file %s, not for the pak sent on standard input", display.Text(res.File))
	}
	switch res.Status {
	case pull.Pulled, pull.Present, pull.WouldPull:
		if res.ExitCode != ExitOK {
			return fmt.Errorf("status %s with exit_code %d", res.Status, res.ExitCode)
		}
	case pull.Failed:
		// A code above exitMax is a newer prepull's: shown, not refused.
		if res.ExitCode < ExitFailure || res.ExitCode >= 126 {
			return fmt.Errorf("status failed with exit_code %d", res.ExitCode)
		}
	case pull.Interrupted:
		if res.ExitCode != ExitInterrupted && res.ExitCode != ExitTerminated {
			return fmt.Errorf("status interrupted with exit_code %d", res.ExitCode)
		}
	default:
		return fmt.Errorf("status %s is not one of %s, %s, %s, %s or %s", display.Text(string(res.Status)), pull.Pulled, pull.Present, pull.WouldPull, pull.Failed, pull.Interrupted)
	}
	if exitStatus != int(res.ExitCode) {
		return fmt.Errorf("exit_code %d, but the remote command exited with status %d", res.ExitCode, exitStatus)
	}
	if res.Reference == "" && res.Status == pull.Failed {
		return nil // the proxy could not settle one, e.g. no default_registry there
	}
	registry, _, _ := strings.Cut(res.Reference, "/")
	t, err := img.Resolve(registry)
	if err != nil || t.Reference != res.Reference {
		want := img.Repository + "@" + img.Digest
		if img.Registry != "" {
			want = img.Registry + "/" + want
		}
		return fmt.Errorf("reference %s is not the pak's %s", display.Text(res.Reference), want)
	}
	return nil
}

// remoteTableWidth is the width prepull remote's table fits in: the last
// column is cut to it, unless --wide.
const remoteTableWidth = 120

// printRemoteRows prints the results: a table, or a JSON array with --json.
// With keep the table has a KEPT column, and the ERROR column says why the
// agent did not take a pak. The table shows digests in short and each
// failure's cause, and fits remoteTableWidth columns; wide shows them whole.
func printRemoteRows(g *globals, rows []remoteRow, keep, wide bool) error {
	if g.json {
		return printResults(g.stdout, rows)
	}
	tab := display.Table{}
	if !wide {
		tab.Fit = remoteTableWidth
	}
	header := []string{"HOST", "PAK", "REFERENCE", "STATUS", "DURATION", "VERSION", "ERROR"}
	if keep {
		header = slices.Insert(header, 4, "KEPT")
	}
	tab.Row(header...)
	differs := false
	for _, r := range rows {
		d := (time.Duration(r.DurationMS) * time.Millisecond).Round(100 * time.Millisecond)
		file, ref, msg := r.File, r.Reference, r.Error
		if !wide {
			file, ref, msg = filepath.Base(file), display.ShortDigest(withoutRegistry(ref)), cmp.Or(r.Cause, r.Error)
		}
		if r.Keep != nil && r.Keep.Error != "" {
			msg = "keep: " + r.Keep.Error
		}
		if len(r.Lacks) > 0 {
			msg = strings.TrimPrefix(msg+"; ", "; ") + "the proxy's prepull lacks " + strings.Join(r.Lacks, ", ")
		}
		version := "-"
		if !r.sshFailed {
			version = versionColumn(r.Version)
			differs = differs || r.VersionDiffers
		}
		cells := []string{r.Host, file, ref, string(r.Status), d.String(), version, msg}
		if keep {
			cells = slices.Insert(cells, 4, keptColumn(r.Keep))
		}
		tab.Row(cells...)
	}
	if _, err := tab.WriteTo(g.stdout); err != nil {
		return err
	}
	if differs {
		_, err := fmt.Fprintf(g.stdout, "* not this workstation's prepull, %s\n", versionColumn(shortVersion()))
		return err
	}
	return nil
}

// withoutRegistry drops the registry host from ref, for a table that must
// fit: the pak names it, and --wide and --json show it.
func withoutRegistry(ref string) string {
	host, rest, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(host, ".:") || host == "localhost") {
		return rest
	}
	return ref
}

// fleetSummary is the line prepull remote ends with: how many hosts are
// ok, and why the others failed, counted by reason, e.g. "38/40 hosts ok;
// 2 failed: 1 credentials rejected (exit 4), 1 ssh unreachable". A host's
// reason is its worst row's; a host SSH could not reach, log in to or
// trust counts apart from any exit code.
func fleetSummary(rows []remoteRow) string {
	var order []string
	worst := map[string]ExitCode{}
	sshFailed := map[string]bool{}
	for _, r := range rows {
		if _, seen := worst[r.Host]; !seen {
			order = append(order, r.Host)
		}
		code := r.ExitCode
		if r.Keep != nil {
			code = max(code, r.Keep.ExitCode)
		}
		worst[r.Host] = max(worst[r.Host], code)
		sshFailed[r.Host] = sshFailed[r.Host] || r.sshFailed
	}
	counts := map[string]int{}
	var reasons []string
	ok := 0
	for _, h := range order {
		reason := exitReason(worst[h])
		switch {
		case sshFailed[h]:
			reason = "ssh unreachable"
		case worst[h] == ExitOK:
			ok++
			continue
		}
		if counts[reason] == 0 {
			reasons = append(reasons, reason)
		}
		counts[reason]++
	}
	line := fmt.Sprintf("%d/%d hosts ok", ok, len(order))
	if len(reasons) == 0 {
		return line
	}
	slices.SortStableFunc(reasons, func(a, b string) int { return counts[b] - counts[a] })
	for i, r := range reasons {
		reasons[i] = fmt.Sprintf("%d %s", counts[r], r)
	}
	return fmt.Sprintf("%s; %d failed: %s", line, len(order)-ok, strings.Join(reasons, ", "))
}

// exitReason names an exit code in a few words, with the code.
func exitReason(c ExitCode) string {
	short := map[ExitCode]string{
		ExitFailure:     "failed",
		ExitUsage:       "usage or configuration error",
		ExitBadPak:      "pak not pullable",
		ExitAuth:        "credentials rejected",
		ExitNotFound:    "image not found",
		ExitEngine:      "docker engine unreachable",
		ExitPlatform:    "no variant for the platform",
		ExitRegistry:    "registry unreachable",
		ExitInterrupted: "interrupted",
		ExitTerminated:  "terminated",
	}
	if s, ok := short[c]; ok {
		return fmt.Sprintf("%s (exit %d)", s, c)
	}
	for _, e := range exitCodes {
		if e.code == c {
			return fmt.Sprintf("%s (exit %d)", e.means, c)
		}
	}
	return fmt.Sprintf("exit %d (newer prepull on the proxy)", c)
}
