package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/prepull/prepull/agent"
	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
)

// keepPoll is how often prepull keep reads the agent's state while it waits.
const keepPoll = 200 * time.Millisecond

// keepExtraWait is how long past the agent's settle time prepull keep waits
// for the agent by default.
const keepExtraWait = 10 * time.Second

// The statuses of prepull keep.
const (
	keepTaken    = "taken"     // the agent took the file written into watch_dir
	keepKept     = "kept"      // the agent keeps the image already, through the pak in path: nothing written
	keepNotTaken = "not-taken" // written, but the agent did not take it in time (or none runs): it takes it when it runs
	keepFailed   = "failed"    // nothing was written, or the agent refused the file
)

// keepResult is what prepull keep reports. Its JSON form is stable.
type keepResult struct {
	File      string   `json:"file"`                 // the PAK argument
	Name      string   `json:"name,omitempty"`       // the file name in watch_dir
	Path      string   `json:"path,omitempty"`       // the agent's file: where it was written and is now, or the pak that keeps the image already
	Reference string   `json:"reference,omitempty"`  // the image the agent keeps
	Status    string   `json:"status"`               // taken, kept, not-taken or failed
	PakStatus string   `json:"pak_status,omitempty"` // the agent's status of that file: waiting, pulling, present, failed, invalid
	Agent     string   `json:"agent,omitempty"`      // the agent's status: running, degraded, stopped, never-run
	ExitCode  ExitCode `json:"exit_code"`
	Error     string   `json:"error,omitempty"`
}

// keepExitCodesHelp is what prepull keep's exit codes mean.
const keepExitCodesHelp = `Exit codes:
  0  taken or kept: the agent keeps the image present (with
     --until-present: it has the image present)
  1  not-taken (no agent runs, or it did not take the file within --wait:
     it takes it when it runs), or the file could not be written
  2  usage or configuration error
  3  the pak does not name a pullable image, or the agent refused it
     (pak_status invalid)
  4, 5, 7 and the one-shot's other codes: with --until-present, the
     agent failed the pak for that reason (see prepull --help)
A run ended by Ctrl-C exits 130 (143 for SIGTERM); a file written stays in
watch_dir for the agent.`

type keepFlags struct {
	name         string
	wait         time.Duration
	untilPresent bool
}

func newKeepCommand(g *globals) *cobra.Command {
	f := &keepFlags{}
	cmd := &cobra.Command{
		Use:   "keep [flags] PAK|-",
		Short: "Hand a pak to this proxy's agent, atomically, and wait until the agent takes it",
		Long: `prepull keep writes what the agent needs of PAK (a .pak, an adapter.zip or a
.conf, or - for standard input) into the agent's watch_dir, and waits until
the agent has taken it, so that the agent keeps its image present from then
on. prepull remote --keep runs it on each proxy.

What is written is the adapter .conf and the pak's manifest.txt as a small
adapter.zip named NAME (the PAK's file name, or --name, ending in .prepull
instead of .pak, so that done/*.pak only ever holds full paks),
under a hidden temporary name first, synced, then linked to NAME, so the
agent never sees a partial file and nothing in watch_dir is replaced. The file
is this process's own (mode 0600). When the agent's state already lists a pak
in watch_dir or done/ that names the same image, nothing is written.

The agent's watch_dir, state_dir and settle come from the configuration
(--config): run it with the agent's configuration, as the agent's user.

Statuses: taken (the agent lists the file; pak_status says what it made of
it), kept (the agent keeps that image already, through the pak in path),
not-taken (written, but no agent runs or it did not take the file within
--wait: it takes it when it runs; exit 1), failed.

With --until-present it waits on until the agent has the image present
(exit 0) or has failed the pak, and then exits as the one-shot would have:
4 when the registry rejected the credentials, 5 when it has no such image,
7 when the image has no variant for this engine's platform, 3 when the
agent refused the pak; status failed, with the agent's reason in error. A
failure the agent reached before keep started (for a pak it keeps already)
is not taken for its verdict: the agent tries failed images again at once
after systemctl reload prepull, and keep waits for that try. When --wait
runs out first, it exits with the code of the agent's last error (1 when
there is none). Configuration management uses this to fail a host whose
agent cannot pull (the Ansible role in ansible/; prepull remote --keep).

` + keepExitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeep(cmd.Context(), g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "file name in watch_dir; .pak becomes .prepull (default the PAK's file name; needed for -)")
	fl.DurationVar(&f.wait, "wait", 0, "how long to wait for the agent to take the file (default the agent's settle time and 10s; with --until-present, and the configuration's timeout)")
	if built("until-present") {
		fl.BoolVar(&f.untilPresent, "until-present", false, "wait until the agent has the image present or has failed the pak, and exit with the one-shot's code for its failure (4 credentials rejected, 5 not found, 7 wrong platform, ...)")
	}
	return cmd
}

func runKeep(ctx context.Context, g *globals, f *keepFlags, arg string) error {
	if err := checkPakArgs([]string{arg}, g.stdin); err != nil {
		return err
	}
	name, err := keepName(arg, f.name)
	if err != nil {
		return err
	}
	if f.wait < 0 {
		return usageErrorf("--wait must not be negative")
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	wait := f.wait
	if wait == 0 {
		wait = cfg.Settle + keepExtraWait
		if f.untilPresent {
			wait += cfg.Timeout
		}
	}
	r := keepPak(ctx, g, cfg, arg, name, wait, f.untilPresent)
	if err := printKeep(g, r); err != nil {
		return err
	}
	if r.ExitCode != ExitOK {
		return &exitError{code: r.ExitCode}
	}
	return nil
}

// printKeep prints r: a table, or a JSON array of one with --json.
func printKeep(g *globals, r keepResult) error {
	if g.json {
		return printResults(g.stdout, []keepResult{r})
	}
	var tab display.Table
	tab.Row("PAK", "PATH", "STATUS", "AGENT", "ERROR")
	tab.Row(r.File, r.Path, strings.TrimSuffix(r.Status+" "+r.PakStatus, " "), r.Agent, r.Error)
	_, err := tab.WriteTo(g.stdout)
	return err
}

// keepName returns the file name for arg in watch_dir: name when given,
// else the file's own name, with .pak replaced by (or else followed by)
// pak.SlimSuffix: the file holds the .conf and manifest only, and must not
// pass for the full pak in done/.
func keepName(arg, name string) (string, error) {
	if name == "" {
		if arg == "-" {
			return "", usageErrorf("--name is needed for standard input (-): the file name in watch_dir, e.g. --name MyAdapter_1.0.0" + pak.SlimSuffix)
		}
		name = filepath.Base(arg)
	}
	switch {
	case name != filepath.Base(name) || name == "." || name == "..":
		return "", usageErrorf("--name %s: a file name, not a path", display.Text(name))
	case strings.HasPrefix(name, "."):
		return "", usageErrorf("--name %s: the agent ignores dot-files", display.Text(name))
	case display.Text(name) != name:
		return "", usageErrorf("--name %s: control or invisible characters", display.Text(name))
	}
	return slimmed(name), nil
}

// keepPak reads arg, writes what the agent needs of it into watch_dir as
// name unless the agent keeps its image already, and waits at most wait
// for the agent to take it or, with untilPresent, for its verdict.
func keepPak(ctx context.Context, g *globals, cfg *config.Config, arg, name string, wait time.Duration, untilPresent bool) keepResult {
	r := keepResult{File: arg, Name: name, Status: keepFailed}
	fail := func(err error) keepResult { return r.failed(err) }
	start := time.Now()
	img, data, err := readSlim(arg, g.stdin)
	if err != nil {
		return fail(err)
	}
	t, err := img.Resolve(cfg.DefaultRegistry) // as the agent settles it
	if err != nil {
		return fail(err)
	}
	// The agent keeps absolute paths.
	watchDir, err := filepath.Abs(cfg.WatchDir)
	if err != nil {
		return fail(fmt.Errorf("watch_dir: %w", err))
	}
	r.Reference = t.Reference
	report, err := agent.ReadReport(cfg.StateDir)
	if err != nil {
		return fail(fmt.Errorf("the agent's state: %w", err))
	}
	r.Agent = report.Agent.Status
	// find returns the agent's pak to follow: the one that keeps the image
	// already, or the file written.
	var find func(*agent.State) (agent.PakState, bool)
	if p, ok := keptBy(report.State, watchDir, t.Reference); ok {
		r.Status, r.Path, r.PakStatus = keepKept, p.File, p.Status
		if !untilPresent {
			return r
		}
		find = func(s *agent.State) (agent.PakState, bool) { return keptBy(s, watchDir, t.Reference) }
	} else {
		sha := sha256Text(data)
		path, err := dropFile(watchDir, name, data, sha)
		if err != nil {
			return fail(err)
		}
		r.Path = path
		r.Status = keepNotTaken
		find = func(s *agent.State) (agent.PakState, bool) { return takenAs(s, watchDir, sha) }
	}
	return followKeep(ctx, cfg, r, report, find, wait, untilPresent, start, g.keepTick)
}

// keepTick is prepull keep's wait before it reads the agent's state again:
// keepPoll, or, where a test plays the agent's part, the test's next step.
func (g *globals) keepTick() <-chan time.Time {
	if g.keepStep == nil {
		return time.After(keepPoll)
	}
	g.keepStep()
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

// followKeep follows the agent's pak that find finds in its state, read
// again after each tick (keepPoll), until it ends prepull keep, the agent
// stops, wait runs out or ctx ends.
func followKeep(ctx context.Context, cfg *config.Config, r keepResult, report *agent.Report, find func(*agent.State) (agent.PakState, bool), wait time.Duration, untilPresent bool, start time.Time, tick func() <-chan time.Time) keepResult {
	var last agent.PakState // the agent's pak as last seen
	for attempt := 0; ; attempt++ {
		if p, ok := find(report.State); ok {
			last = p
			if r.Status == keepNotTaken {
				r.Status = keepTaken
			}
			r.Path, r.PakStatus = p.File, p.Status
			if keepDone(&r, p, untilPresent, start) {
				return r
			}
		}
		switch r.Agent {
		case agent.AgentStopped, agent.AgentNeverRun:
			switch {
			case r.Status == keepNotTaken:
				r.ExitCode, r.Error = ExitFailure, fmt.Sprintf("no agent is running (%s): it takes %s when it starts", r.Agent, r.Name)
			case untilPresent:
				keepGaveUp(&r, last, fmt.Sprintf("no agent is running (%s) to pull the image", r.Agent))
			}
			return r
		}
		if time.Duration(attempt)*keepPoll >= wait {
			switch {
			case r.Status == keepNotTaken:
				r.ExitCode, r.Error = ExitFailure, fmt.Sprintf("the agent did not take %s within %v; it stays in watch_dir for the agent", r.Name, wait)
				if d := report.Agent.Degraded; len(d) > 0 {
					r.Error += " (the agent is degraded: " + strings.Join(d, "; ") + ")"
				}
			case untilPresent:
				keepGaveUp(&r, last, fmt.Sprintf("the image is not present within %v", wait))
			}
			return r
		}
		select {
		case <-ctx.Done():
			return keepInterrupted(ctx, r, untilPresent)
		case <-tick():
		}
		var err error
		if report, err = agent.ReadReport(cfg.StateDir); err != nil {
			return r.failed(fmt.Errorf("the agent's state: %w", err))
		}
		r.Agent = report.Agent.Status
	}
}

// failed is r ended by err, with err's exit code (never ExitOK).
func (r keepResult) failed(err error) keepResult {
	r.ExitCode, r.Error = CodeFor(err), err.Error()
	if r.ExitCode == ExitOK {
		r.ExitCode = ExitFailure
	}
	return r
}

// keepInterrupted is r when ctx ended before prepull keep did.
func keepInterrupted(ctx context.Context, r keepResult, untilPresent bool) keepResult {
	if r.Status != keepNotTaken && !untilPresent {
		return r
	}
	r.ExitCode = ExitInterrupted
	if i, ok := interrupted(ctx); ok {
		r.ExitCode = i.code()
	}
	if r.Status == keepNotTaken {
		r.Error = fmt.Sprintf("interrupted before the agent took %s; it stays in watch_dir for the agent", r.Name)
	} else {
		r.Status, r.Error = keepFailed, "interrupted before the image was present; the agent goes on with it"
	}
	return r
}

// keepDone tells whether the agent's pak p ends prepull keep, and sets r
// accordingly. A pak the agent refused always ends it. Without
// untilPresent, any verdict (present or failed) does; with it, present
// does, and a failure does when the agent reached it after start: an older
// one (from before a reload that fixed the credentials) is being retried.
func keepDone(r *keepResult, p agent.PakState, untilPresent bool, start time.Time) bool {
	switch p.Status {
	case agent.StatusInvalid:
		r.Status, r.ExitCode, r.Error = keepFailed, ExitBadPak, "the agent refused it: "+p.LastError
		if p.ErrorKind == agent.ErrorPlatform {
			r.ExitCode = ExitPlatform
		}
		return true
	case agent.StatusPresent:
		return true
	case agent.StatusFailed:
		if !untilPresent {
			return true
		}
		if p.Updated.Before(start) {
			return false
		}
		r.Status, r.ExitCode, r.Error = keepFailed, codeForKind(p.ErrorKind), "the agent failed it: "+p.LastError
		return true
	}
	return false
}

// keepGaveUp sets r for a wait, with untilPresent, that ended before the
// agent's verdict: failed, with why and the code of the agent's last error
// for it.
func keepGaveUp(r *keepResult, last agent.PakState, why string) {
	r.Status, r.ExitCode, r.Error = keepFailed, ExitFailure, why
	if last.LastError != "" {
		r.ExitCode = codeForKind(last.ErrorKind)
		r.Error += " (" + last.Status + ": " + last.LastError + ")"
	}
}

// codeForKind is the one-shot's exit code for a failure of the agent's
// kind (agent.ErrorKind).
func codeForKind(kind string) ExitCode {
	switch kind {
	case agent.ErrorCredentials:
		return ExitAuth
	case agent.ErrorNotFound:
		return ExitNotFound
	case agent.ErrorPlatform:
		return ExitPlatform
	case agent.ErrorEngine:
		return ExitEngine
	case agent.ErrorRegistry:
		return ExitRegistry
	case agent.ErrorConfig:
		return ExitUsage
	}
	return ExitFailure
}

// sha256Text is the digest of data as the agent's state writes it.
func sha256Text(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// keptBy returns a pak of the agent's state, still in watch_dir or done/,
// that names reference.
func keptBy(s *agent.State, watchDir, reference string) (agent.PakState, bool) {
	for _, p := range s.Paks {
		dir := filepath.Dir(p.File)
		if p.Reference != reference || p.Status == agent.StatusInvalid || (dir != watchDir && dir != filepath.Join(watchDir, agent.DoneDir)) {
			continue
		}
		if fi, err := os.Lstat(p.File); err == nil && fi.Mode().IsRegular() {
			return p, true
		}
	}
	return agent.PakState{}, false
}

// takenAs returns the pak of the agent's state with these bytes, in
// watch_dir or below it.
func takenAs(s *agent.State, watchDir, sha string) (agent.PakState, bool) {
	for _, p := range s.Paks {
		if p.SHA256 == sha && strings.HasPrefix(p.File, watchDir+string(filepath.Separator)) {
			return p, true
		}
	}
	return agent.PakState{}, false
}

// dropFile writes data into watchDir as name, atomically and never
// replacing a file: under a hidden temporary name (the agent ignores
// dot-files), synced, then linked to name, and the folder synced. A file of
// that name with the same bytes is left as it is; one with other bytes is an
// error. It returns the file's path.
func dropFile(watchDir, name string, data []byte, sha string) (string, error) {
	fi, err := os.Stat(watchDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("watch_dir %s does not exist: is the agent installed here, and is this its configuration (--config)? %w", display.Text(watchDir), config.ErrInvalid)
	case err != nil:
		return "", fmt.Errorf("watch_dir: %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("watch_dir %s is not a directory: %w", display.Text(watchDir), config.ErrInvalid)
	}
	path := filepath.Join(watchDir, name)
	tmp, err := os.CreateTemp(watchDir, "."+name+".keep-*")
	if err != nil {
		return "", fmt.Errorf("write into watch_dir: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", display.Text(tmp.Name()), err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		old, rerr := os.ReadFile(path)
		if rerr != nil || sha256Text(old) != sha {
			return "", fmt.Errorf("watch_dir already holds another %s: not replaced (remove it, or give another --name)", display.Text(path))
		}
		return path, nil
	} else if err != nil {
		return "", fmt.Errorf("write %s: %w", display.Text(path), err)
	}
	d, err := os.Open(watchDir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return "", fmt.Errorf("sync watch_dir: %w", err)
	}
	return path, nil
}
